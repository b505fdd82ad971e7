"""Adam, written out, because ``torch.optim`` imports ``torch._dynamo`` on first use.

That import costs 146 MB of resident memory and two seconds holding the GIL (the window felt it
as a stall when Train was clicked). This is torch.optim.Adam's single-tensor algorithm with no
weight decay and no AMSGrad, the same operations in the same order, so the numbers match it
(tests/test_training.py checks them against torch.optim.Adam). Its state_dict has torch's layout,
so checkpoints written with either load into the other.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch


class Adam:
    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = list(params)
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.state: dict[int, dict[str, torch.Tensor]] = {}

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        for index, param in enumerate(self.params):
            grad = param.grad
            if grad is None:
                continue
            state = self.state.get(index)
            if state is None:
                state = self.state[index] = {
                    "step": torch.tensor(0.0),
                    "exp_avg": torch.zeros_like(param, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(param, memory_format=torch.preserve_format),
                }
            state["step"] += 1
            step = state["step"].item()
            state["exp_avg"].lerp_(grad, 1 - beta1)
            state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad.conj(), value=1 - beta2)
            step_size = self.lr / (1 - beta1**step)
            bias_correction2_sqrt = math.sqrt(1 - beta2**step)
            denominator = (state["exp_avg_sq"].sqrt() / bias_correction2_sqrt).add_(self.eps)
            param.addcdiv_(state["exp_avg"], denominator, value=-step_size)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.params:
            if set_to_none:
                param.grad = None
            elif param.grad is not None:
                param.grad.zero_()

    def state_dict(self) -> dict[str, Any]:
        """torch.optim's layout: per-parameter state by position, one parameter group. Like torch's,
        it holds the live tensors, not copies: a checkpoint is written from it at once."""
        group = {"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": 0, "amsgrad": False,
                 "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
                 "fused": None, "params": list(range(len(self.params)))}
        return {"state": {i: dict(entry) for i, entry in self.state.items()}, "param_groups": [group]}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        groups = saved.get("param_groups") or [{}]
        if len(groups[0].get("params", self.params)) != len(self.params):
            raise ValueError("the saved optimiser state belongs to another network")
        self.state = {}
        for key, entry in saved.get("state", {}).items():
            index = int(key)
            param = self.params[index]
            step = entry["step"]
            self.state[index] = {
                "step": torch.tensor(float(step.item() if torch.is_tensor(step) else step)),
                "exp_avg": entry["exp_avg"].to(param.device, param.dtype).clone(memory_format=torch.preserve_format),
                "exp_avg_sq": entry["exp_avg_sq"].to(param.device, param.dtype).clone(memory_format=torch.preserve_format),
            }
