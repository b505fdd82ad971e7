"""A checkpoint's whole score as one torch module: pixels in, image scores and anomaly maps out.

Exported models that score differently from the app are the field's most reported export bug:
each step written again for the export drifts from the app's. So this module holds no scoring
code of its own: its forward pass is the scorers' own functions (``score.local``, ``score.whole``)
on the checkpoint's networks, folded as the app folds them, and its reference as constants; the
nearest-row searches are exact, as the app's are for images of the working size (its groups are
for photos' windows only, which are not exported).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import Normalisation, ScoreConfig
from ..model.checkpoints import Checkpoint
from ..model.inference import folded
from ..model.networks import Networks
from ..model.references import PatchReference, Reference
from ..score.local import image_scores, local_maps, raw_maps
from ..score.same_place import lay_out
from ..score.whole import network_pass, residual_terms


class ScoreModule(nn.Module):
    """forward(pixels (N, C, S, S) float32 in [0, 1]) → (score (N,), anomaly map (N, S, S)), the
    score in the checkpoint's units (``Detection.threshold`` compares with it)."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        super().__init__()
        networks = checkpoint.networks
        # A copy (the checkpoint's own networks are left as they are), on the CPU in the plain layout.
        self.networks: Networks = folded(networks).place(torch.device("cpu"), channels_last=False)
        self.config: ScoreConfig = checkpoint.settings.score
        self.normalisation: Normalisation = checkpoint.settings.normalisation
        self.patch = networks.config.patch_model
        self.reference: Reference | PatchReference = checkpoint.reference.to(torch.device("cpu"))
        self.place_bank = lay_out(self.reference.places) if self.patch and self.reference.places is not None else None

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.normalisation.apply(pixels)
        if self.patch:
            reference = self.reference
            raw = raw_maps(self.networks, x, self.config, reference.features, reference.moments, self.place_bank,
                           reference.lines)
            _, _, maps = local_maps(raw, reference, self.config)
            return image_scores(maps, self.config), maps
        return self._whole(x)

    def _whole(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole-image score: R and Dis over the training images' spreads, mixed by λ."""
        config, reference = self.config, self.reference
        _, difference, discriminated = network_pass(self.networks, x, config)
        maps, residual = residual_terms(difference, config, reference)
        if config.discrimination == "nearest":
            # Each image's nearest training row, by direct differences as the app's search measures them.
            gaps = discriminated[:, None, :] - reference.features[None, :, :]
            discriminated = gaps.square().sum(dim=2).amin(dim=1).sqrt()
        lam = config.lam
        return (1.0 - lam) * residual / reference.residual_scale + lam * discriminated / reference.discrimination_scale, maps
