"""Which device the networks run on, and how to tell the user."""

from __future__ import annotations

import torch

from ..errors import EgbadError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else the CPU; ``cuda`` without CUDA is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise EgbadError("CUDA was asked for, but this machine has no CUDA device; choose Auto or CPU.")
        return torch.device("cuda")
    if name == "cpu":
        return torch.device("cpu")
    raise EgbadError(f"unknown device {name!r}; choose auto, cpu or cuda.")


def describe_device(device: torch.device) -> str:
    """A short name for the status bar: ``CUDA (NVIDIA H200)`` or ``CPU (2 threads)``."""
    if device.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(device)})"
    return f"CPU ({torch.get_num_threads()} threads)"
