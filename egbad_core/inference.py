"""Scoring copies of the networks: eval mode for good, batch norm folded into the layer before it.

In eval mode a batch norm is a fixed scale and shift per channel, so it can be multiplied into the
weights of the convolution or linear layer in front of it: one pass over each activation instead
of two and one large allocation fewer per layer, and spectral normalisation's division is done once
instead of at every batch (benchmarks/RESULTS.md). Results differ from the plain networks by float
rounding only (tests/test_scoring.py).
"""

from __future__ import annotations

import copy
from dataclasses import replace

import torch
from torch import nn
from torch.nn.utils import fuse_conv_bn_eval, fuse_linear_bn_eval

from .models import Networks

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def folded(networks: Networks) -> Networks:
    """A frozen eval-mode copy of ``networks`` for scoring; the originals are left as they are."""
    # On the networks' device from the start, so a GPU's weights never make a trip through the host.
    plain = Networks.build(replace(networks.config, spectral_norm=False)).to(networks.device, networks.channels_last)
    for name, module in plain.modules().items():
        module.load_state_dict(_plain_state(networks.modules()[name]))
        module.eval().requires_grad_(False)
        for part in list(module.modules()):
            if isinstance(part, nn.Sequential):
                _fold(part)
    return plain.to(networks.device, channels_last=networks.channels_last)  # the folded weights' layout


def _plain_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s state with each parametrised weight (spectral norm) as the value it has in eval
    mode. Read from a copy: in training mode reading it would step the original's power iteration."""
    module = copy.deepcopy(module).eval()
    state = {}
    with torch.no_grad():
        for key, value in module.state_dict().items():
            owner, marker, rest = key.partition(".parametrizations.")
            if not marker:
                state[key] = value
            elif rest.endswith(".original"):  # the other entries are the parametrisation's own state
                tensor = rest.split(".")[0]
                state[f"{owner}.{tensor}"] = getattr(module.get_submodule(owner), tensor).clone()
    return state


def _fold(sequence: nn.Sequential) -> None:
    """Each batch norm that follows a weight layer goes into that layer, an identity in its place
    so that layers keep their positions (``scoring.stage_features`` counts them)."""
    for index in range(1, len(sequence)):
        norm, layer = sequence[index], sequence[index - 1]
        if not isinstance(norm, _NORMS):
            continue
        if isinstance(layer, nn.Linear):
            sequence[index - 1] = fuse_linear_bn_eval(layer, norm)
        elif isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            sequence[index - 1] = fuse_conv_bn_eval(layer, norm, transpose=isinstance(layer, nn.ConvTranspose2d))
        else:
            continue
        sequence[index] = nn.Identity()

