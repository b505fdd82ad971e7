"""EGBAD's anomaly score: one forward pass of E, G and D per image.

For an image x with z = E(x) and x' = G(z), the seed's score is
    residual        R(x)   = Σ |x − x'| over pixels (in normalised units)
    discrimination  Dis(x) = Σ |f_D(x, z) − f_D(x', z)| over D's image features
    score           A(x)   = (1 − λ)·R(x) + λ·Dis(x)
ScoreConfig can make each term measure against the training images instead (a Reference,
``reference.py``): R from the blurred residual in units of the training images' spread at each
pixel, Dis as the distance from D's stage features of x to the nearest training image's, and
both terms divided by their spread over the training images before λ mixes them. Networks are
scored as a frozen eval-mode copy with no autograd, so an image's score never depends on the
other images in its batch (the seed's first defect). AnoGAN's slow search is in ``anogan.py``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import Normalisation, ScoreConfig, autocast
from .errors import EgbadError
from .events import ProgressEvent, Task, run_to_end, stopped
from .inference import folded
from .models import Networks

if TYPE_CHECKING:
    from .reference import Reference


@dataclass
class Scores:
    """Per-image results of one scoring run, in the order the images came."""

    method: str
    residual: np.ndarray  # (N,)
    discrimination: np.ndarray  # (N,)
    score: np.ndarray  # (N,) the combined A(x)
    reconstructions: np.ndarray | None  # (N, C, S, S) in [0, 1], for drawing
    residual_maps: np.ndarray | None  # (N, S, S) per-pixel |x − x'| summed over channels
    seconds: float
    lam: float
    worst_places: np.ndarray | None = None  # (N, 2) row, column of each image's worst place at the model's size
    local: bool = False  # a local (patch) model's: the maps are anomaly maps in score units, the score their maximum

    def __len__(self) -> int:
        return self.score.shape[0]

    def places(self) -> np.ndarray | None:
        """(N, 2) row and column of each image's worst place at the model's size: a local model's
        own, else the residual map's largest pixel; None where neither was kept."""
        if self.worst_places is not None or self.residual_maps is None:
            return self.worst_places
        maps = self.residual_maps
        flat = maps.reshape(len(self), -1).argmax(axis=1)
        return np.stack([flat // maps.shape[-1], flat % maps.shape[-1]], axis=1)

    @property
    def images_per_s(self) -> float:
        return len(self) / self.seconds if self.seconds > 0 else float("inf")


def combine(residual: torch.Tensor, discrimination: torch.Tensor, lam: float) -> torch.Tensor:
    """A = (1 − λ)·R + λ·Dis."""
    return (1.0 - lam) * residual + lam * discrimination


def smooth(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of each channel with zero padding; σ = 0 returns the images unchanged.

    Not torchvision's ``gaussian_blur``: that pads by reflection, which would move every stored
    reference's border pixels and so the scores of every checkpoint written so far."""
    if sigma <= 0:
        return images
    radius = max(1, int(round(2.5 * sigma)))
    steps = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(steps**2) / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    weight = (kernel[:, None] * kernel[None, :]).expand(channels, 1, -1, -1)
    return F.conv2d(images, weight, padding=radius, groups=channels)


def stage_features(networks: Networks, x: torch.Tensor, stage: int, side: int) -> torch.Tensor:
    """D's activations after its ``stage``-th conv stage (or its last), average-pooled to at most
    side × side cells: coarser cells forgive a stroke drawn a little aside."""
    found, activation = 0, x
    for layer in networks.discriminator.features:
        if isinstance(layer, nn.Flatten):
            break
        activation = layer(activation)
        if isinstance(layer, nn.LeakyReLU):
            found += 1
            if found == stage:
                break
    if activation.shape[-1] > side:
        activation = F.adaptive_avg_pool2d(activation, side)
    return activation.flatten(1).float()


def nearest_distance(queries: torch.Tensor, memory: torch.Tensor, own_row: torch.Tensor | None = None) -> torch.Tensor:
    """Euclidean distance from each query to its nearest memory row, in chunks that bound memory.

    ``own_row[i]`` is the memory row that is query i itself (−1 if none): that one is skipped.
    Computed directly, not by cdist's matrix-product shortcut, whose rounding near zero depends on
    how many queries come together (a near-duplicate of a training image scored 0.02 in one batch
    and 0 in another)."""
    out = []
    for start in range(0, queries.shape[0], 512):
        distances = torch.cdist(queries[start : start + 512], memory, compute_mode="donot_use_mm_for_euclid_dist")
        if own_row is not None:
            own = own_row[start : start + distances.shape[0]].to(distances.device)
            rows = torch.nonzero(own >= 0).flatten()
            distances[rows, own[rows]] = float("inf")
        out.append(distances.min(dim=1).values)
    return torch.cat(out)


def residual_terms(
    difference: torch.Tensor, config: ScoreConfig, reference: "Reference | None"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(residual map (N, S, S), R (N,)) from the smoothed difference x − x', as the config defines them."""
    if config.residual_standardised:
        maps = ((difference - reference.residual_mean) / reference.residual_spread).abs().sum(dim=1)
    else:
        maps = difference.abs().sum(dim=1)
    return maps, maps.flatten(1).sum(dim=1)


def pair_discrimination(networks: Networks, real_features: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """The seed's Dis: Σ|f_D(x) − f_D(x')|. D's image features do not depend on z, so only its image
    branch runs (its z branch and its logit would be thrown away)."""
    return (real_features - networks.discriminator.features(reconstruction)).abs().sum(dim=1)


def network_pass(networks: Networks, x: torch.Tensor, config: ScoreConfig):
    """One pass of E, G and D over a batch: (reconstruction, smoothed x − x', and Dis for "pair" or
    D's stage features for "nearest"), in float32 whatever precision the networks ran in."""
    z = networks.encoder(x)
    reconstruction = networks.generator(z)
    if config.discrimination == "nearest":
        discriminated = stage_features(networks, x, config.feature_stage, config.feature_side)
    else:
        discriminated = pair_discrimination(networks, networks.discriminator.features(x), reconstruction).float()
    with autocast(x.device.type, False):
        reconstruction = reconstruction.float()
        difference = smooth(x - reconstruction, config.residual_smoothing)
    return reconstruction, difference, discriminated


def _forward(networks: Networks, x: torch.Tensor, config: ScoreConfig, reference: "Reference | None"):
    """(reconstruction, residual map, R, Dis) of a batch."""
    reconstruction, difference, discriminated = network_pass(networks, x, config)
    with autocast(x.device.type, False):  # the terms in float32
        maps, residual = residual_terms(difference, config, reference)
        if config.discrimination == "nearest":
            discriminated = nearest_distance(discriminated, reference.features)
    return reconstruction, maps, residual, discriminated


def scoring_task(
    networks: Networks,
    images: torch.Tensor,
    normalisation: Normalisation,
    config: ScoreConfig = ScoreConfig(),
    reference: "Reference | None" = None,
    keep_images: bool = True,
    stop: threading.Event | None = None,
) -> Task[Scores | None]:
    """EGBAD scores of images (N, C, S, S) as loaded (uint8 or [0, 1]) in large batches, one pass each, as a task:
    a ProgressEvent after each batch; the Scores at the end, or None if ``stop`` was set.

    Raises EgbadError where the score needs a reference the caller does not have."""
    start = time.perf_counter()
    device = networks.device
    if config.needs_reference and reference is None:
        raise EgbadError("this checkpoint's score needs the training images' reference, which it does not hold; "
                         "train it again or score with a preset that does not standardise.")
    reference = reference.to(device) if reference is not None else None
    images = pinned(images, device)
    networks = folded(networks)
    parts = new_parts()
    for done, batch in batches(images, config.batch_size):
        if stopped(stop):
            return None
        with torch.inference_mode(), autocast(device.type, config.mixed_precision):
            x = networks.layout(normalisation.apply(batch.to(device, non_blocking=True)))
            reconstruction, maps, residual, discrimination = _forward(networks, x, config, reference)
            add_parts(parts, residual, discrimination, reconstruction if keep_images else None, maps)
        yield ProgressEvent("scoring", done, images.shape[0])
    scales = (reference.residual_scale, reference.discrimination_scale) if reference is not None else (1.0, 1.0)
    return collect("egbad", parts, normalisation, config.lam, time.perf_counter() - start, keep_images, scales)


def score_images(
    networks: Networks,
    images: torch.Tensor,
    normalisation: Normalisation,
    config: ScoreConfig = ScoreConfig(),
    keep_images: bool = True,
    reference: "Reference | None" = None,
) -> Scores:
    """``scoring_task`` run to its end on this thread (no stop, no progress)."""
    return run_to_end(scoring_task(networks, images, normalisation, config, reference, keep_images))


def pinned(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Page-locked host memory for images bound for a GPU, so each batch's copy runs asynchronously."""
    if device.type == "cuda" and images.device.type == "cpu" and not images.is_pinned():
        return images.pin_memory()
    return images


def batches(images: torch.Tensor, size: int) -> Iterator[tuple[int, torch.Tensor]]:
    """(images done after this batch, the batch) in order."""
    for start in range(0, images.shape[0], size):
        batch = images[start : start + size]
        yield start + batch.shape[0], batch


def new_parts() -> dict[str, list[torch.Tensor]]:
    """Empty lists for the per-batch results ``collect`` joins."""
    return {"residual": [], "discrimination": [], "recon": [], "maps": []}


def add_parts(parts: dict[str, list[torch.Tensor]], residual: torch.Tensor, discrimination: torch.Tensor,
              reconstruction: torch.Tensor | None, maps: torch.Tensor) -> None:
    """One batch's results onto the host; reconstructions and maps only where they are kept."""
    parts["residual"].append(residual.float().cpu())
    parts["discrimination"].append(discrimination.float().cpu())
    if reconstruction is not None:
        parts["recon"].append(reconstruction.float().cpu())
        parts["maps"].append(maps.float().cpu())


def collect(
    method: str,
    parts: dict[str, list[torch.Tensor]],
    normalisation: Normalisation,
    lam: float,
    seconds: float,
    keep_images: bool,
    scales: tuple[float, float] = (1.0, 1.0),
) -> Scores:
    """One Scores from the batches' parts; R and Dis divided by ``scales`` (their training spreads)."""
    residual = torch.cat(parts["residual"]).double() / scales[0]
    discrimination = torch.cat(parts["discrimination"]).double() / scales[1]
    reconstructions = maps = None
    if keep_images:
        reconstructions = (torch.cat(parts["recon"]) * normalisation.std + normalisation.mean).clamp_(0, 1).numpy()
        maps = torch.cat(parts["maps"]).numpy()
    return Scores(
        method=method,
        residual=residual.numpy(),
        discrimination=discrimination.numpy(),
        score=combine(residual, discrimination, lam).numpy(),
        reconstructions=reconstructions,
        residual_maps=maps,
        seconds=seconds,
        lam=lam,
    )
