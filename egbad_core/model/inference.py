"""Scoring copies of the networks: eval mode for good, spectral norm baked in, batch norm folded
into the layer before it.

In eval mode a batch norm is a fixed scale and shift per channel, so it can be multiplied into the
weights of the convolution or linear layer in front of it: one pass over each activation instead
of two and one large allocation fewer per layer; and spectral normalisation's division is done once,
by torch's ``remove_parametrizations``, instead of at every batch (benchmarks/RESULTS.md). Results
differ from the plain networks by float rounding only (tests/test_models.py).
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import fuse_conv_bn_eval, fuse_linear_bn_eval, parametrize

from .networks import Networks

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def folded(networks: Networks) -> Networks:
    """A frozen eval-mode copy of ``networks`` for scoring; the originals are left as they are.

    The copy is new networks given the originals' state, not a ``copy.deepcopy``: a deep copy of a
    parametrised layer shares its class with the original (torch makes one class per parametrised
    layer and copies keep it), and ``remove_parametrizations`` deletes the weight's property from
    that class, which breaks the original. Built fresh, each layer has a class of its own; and in
    eval mode reading the spectrally normalised weight steps no power iteration. A scoring copy
    given again is returned as it is, so that a run of many chunks folds once."""
    if getattr(networks, "scoring_copy", False):
        return networks
    # Built on the CPU, not on the meta device: spectral norm's setup runs 15 power iterations, and
    # on meta tensors each step goes through Python's reference ops (0.6 s a copy, against 0.04 s;
    # a tenth of a 64-image scoring run at 256 px).
    plain = Networks(networks.config)
    plain.load_state_dict(networks.state_dict(), assign=True)
    plain.place(networks.device, networks.channels_last)
    plain.eval().requires_grad_(False)
    for part in list(plain.modules()):
        if parametrize.is_parametrized(part):
            for name in list(part.parametrizations.keys()):
                parametrize.remove_parametrizations(part, name, leave_parametrized=True)
    for part in list(plain.modules()):
        if isinstance(part, nn.Sequential):
            _fold(part)
    plain.scoring_copy = True
    return plain.place(networks.device, channels_last=networks.channels_last)  # the folded weights' layout


def _fold(sequence: nn.Sequential) -> None:
    """Each batch norm that follows a weight layer goes into that layer, an identity in its place
    so that layers keep their positions (``score.whole.stage_features`` counts them)."""
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

