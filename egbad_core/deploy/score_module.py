"""A checkpoint's whole score as one torch module: pixels in, image scores and anomaly maps out.

Exported models that score differently from the app are the field's most reported export bug:
each step written again for the export drifts from the app's. So this module holds no scoring
code of its own: its forward pass is the scorers' own functions (``score.local``, ``score.whole``)
on the checkpoint's networks, folded as the app folds them, and its reference as constants; the
nearest-row searches are exact, as the app's are for images of the working size. A photo model
is exported for one photo size (a line's camera takes one): the graph cuts the photo into the
windows the app would (``run.photos.photo_windows``), scores each and stitches their maps as the
app does; the app searches a photo's windows in groups, so its own check runs them exact.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import Normalisation, ScoreConfig
from ..model.checkpoints import Checkpoint
from ..model.inference import folded
from ..model.networks import Networks
from ..model.references import PatchReference, Reference
from ..score.frame_place import PhotoTerms, frame_moments
from ..score.local import Overlays, image_scores, local_maps, raw_maps
from ..score.same_place import lay_out
from ..score.tiling import Windows, overlays
from ..score.whole import network_pass, residual_terms


class ScoreModule(nn.Module):
    """forward(pixels (N, C, S, S) float32 in [0, 1]) → (score (N,), anomaly map (N, S, S)), the
    score in the checkpoint's units (``Detection.threshold`` compares with it). A photo model's
    takes one photo (1, C, H, W) at the model's scale and scores it in ``windows``, each with
    ``window_config`` (the settings ``photo_windows`` gives for that window side)."""

    def __init__(self, checkpoint: Checkpoint, windows: Windows | None = None,
                 window_config: ScoreConfig | None = None) -> None:
        super().__init__()
        networks = checkpoint.networks
        # A copy (the checkpoint's own networks are left as they are), on the CPU in the plain layout.
        self.networks: Networks = folded(networks).place(torch.device("cpu"), channels_last=False)
        self.config: ScoreConfig = window_config or checkpoint.settings.score
        self.windows = windows
        self.normalisation: Normalisation = checkpoint.settings.normalisation
        self.patch = networks.config.patch_model
        self.reference: Reference | PatchReference = checkpoint.reference.to(torch.device("cpu"))
        self.place_bank = lay_out(self.reference.places) if self.patch and self.reference.places is not None else None

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.normalisation.apply(pixels)
        if self.windows is not None:
            return self._photo(x)
        if self.patch:
            maps = self._patch_maps(x)
            return image_scores(maps, self.config), maps
        return self._whole(x)

    def _patch_maps(self, x: torch.Tensor, over: Overlays | None = None) -> torch.Tensor:
        raw = raw_maps(self.networks, x, self.config, self.reference, self.place_bank, over)
        return local_maps(raw, self.reference, self.config)[2]

    def _photo(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One photo's windows scored one by one and their kept parts stitched (``Windows.stitch``'s
        rule), the score its map's worst place, as ``photo_scoring_task`` gives them: the photo's
        moments taken whole first, each window given its cut. (An aligned photo model's same-place
        term finds the photo's pose first, which the graph cannot: such an export is refused.)"""
        windows, config = self.windows, self.config
        terms = PhotoTerms(frame_moments(x, config), None) if config.moment_window else None
        parts = [self._patch_maps(windows.cut(x[0], [index]), overlays(windows, [index], None, terms))[0]
                 for index in range(len(windows))]
        stitched = windows.stitch(torch.stack(parts))[None]
        return stitched.flatten(1).amax(dim=1), stitched

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
