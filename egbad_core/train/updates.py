"""The tools of one update: an optimiser with the fastest kernel, and a network held still."""

from __future__ import annotations

import torch


class frozen:
    """Turns off a module's weight gradients for a block: gradients still flow through it."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.parameters = list(module.parameters())

    def __enter__(self) -> None:
        for p in self.parameters:
            p.requires_grad_(False)

    def __exit__(self, *exc: object) -> None:
        for p in self.parameters:
            p.requires_grad_(True)


def adam(parameters, lr: float, betas: tuple[float, float], device: torch.device) -> torch.optim.Optimizer:
    """torch's Adam with its fastest kernel for the device: fused on CUDA, foreach elsewhere."""
    fused = device.type == "cuda"
    return torch.optim.Adam(parameters, lr=lr, betas=betas, fused=fused or None, foreach=None if fused else True)
