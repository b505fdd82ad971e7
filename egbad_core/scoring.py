"""Anomaly scores: EGBAD's one forward pass, and AnoGAN's latent search as the slow baseline.

For an image x with z = E(x) and x' = G(z), the seed's score is
    residual        R(x)   = Σ |x − x'| over pixels (in normalised units)
    discrimination  Dis(x) = Σ |f_D(x, z) − f_D(x', z)| over D's image features
    score           A(x)   = (1 − λ)·R(x) + λ·Dis(x)
ScoreConfig can make each term measure against the training images instead (a Reference,
computed once when a checkpoint is written): R from the blurred residual in units of the
training images' spread at each pixel, Dis as the distance from D's stage features of x to
the nearest training image's, and both terms divided by their spread over the training images
before λ mixes them. Networks are scored in eval mode with no autograd, so an image's score
never depends on the other images in its batch (the seed's first defect).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .adam import Adam
from .config import Normalisation, ScoreConfig, autocast
from .errors import EgbadError
from .inference import folded
from .models import Networks

Progress = Callable[[int, int], None]

ANOGAN_LAMBDA = 0.1  # the AnoGAN paper's λ: its latent search minimises the seed's A(x)
MEMORY_IMAGES = 2000  # training images kept for the nearest-neighbour term, at most
SPREAD_FLOOR = 0.025  # in units of the pixel range: quiet pixels do not turn noise into alarms


class ScoringStopped(Exception):
    """Raised when a stop was requested during scoring; nothing partial is returned."""


@dataclass(frozen=True)
class ScoreStats:
    """The training images' score distribution: the yardstick for readable scores."""

    mean: float
    std: float
    p99: float
    count: int

    @classmethod
    def of(cls, scores: np.ndarray) -> "ScoreStats":
        return cls(float(scores.mean()), float(scores.std()), float(np.percentile(scores, 99)), int(scores.size))

    @property
    def mean_plus_3_sigma(self) -> float:
        return self.mean + 3.0 * self.std

    def relative(self, scores: np.ndarray | float) -> np.ndarray | float:
        """Scores on a scale where 1.0 is the training images' 99th percentile."""
        return scores / self.p99 if self.p99 > 0 else scores


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

    def __len__(self) -> int:
        return self.score.shape[0]

    @property
    def images_per_s(self) -> float:
        return len(self) / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class Reference:
    """The training images as a trained model sees them: what the score's terms measure against."""

    residual_mean: torch.Tensor  # (C, S, S) mean of the smoothed residual x − x'
    residual_spread: torch.Tensor  # (C, S, S) its standard deviation, floored
    features: torch.Tensor | None  # (M, F) D's pooled stage features of up to MEMORY_IMAGES training images
    residual_scale: float  # spread of R over the training images (1 where terms are not standardised)
    discrimination_scale: float

    def to_payload(self) -> dict[str, torch.Tensor]:
        payload = {
            "residual_mean": self.residual_mean, "residual_spread": self.residual_spread,
            "scales": torch.tensor([self.residual_scale, self.discrimination_scale], dtype=torch.float64),
        }
        if self.features is not None:
            payload["features"] = self.features
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, torch.Tensor]) -> "Reference":
        scales = payload["scales"].tolist()
        return cls(payload["residual_mean"].float(), payload["residual_spread"].float(), payload.get("features"),
                   float(scales[0]), float(scales[1]))

    def to(self, device: torch.device) -> "Reference":
        features = self.features.to(device) if self.features is not None else None
        return Reference(self.residual_mean.to(device), self.residual_spread.to(device), features,
                         self.residual_scale, self.discrimination_scale)


def combine(residual: torch.Tensor, discrimination: torch.Tensor, lam: float) -> torch.Tensor:
    return (1.0 - lam) * residual + lam * discrimination


def _score_terms(
    networks: Networks, x: torch.Tensor, z: torch.Tensor, real_features: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The seed's (reconstruction, residual map, R, Dis) of a batch for a given z: AnoGAN's terms.
    ``real_features`` are D's image features of x, which the search does not change."""
    reconstruction = networks.generator(z)
    residual_map = (x - reconstruction).abs().sum(dim=1)
    discrimination = _pair_discrimination(networks, real_features, reconstruction)
    return reconstruction, residual_map, residual_map.flatten(1).sum(dim=1), discrimination


def smooth(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of each channel; σ = 0 returns the images unchanged."""
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

    ``own_row[i]`` is the memory row that is query i itself (−1 if none): that one is skipped."""
    out = []
    for start in range(0, queries.shape[0], 512):
        distances = torch.cdist(queries[start : start + 512], memory)
        if own_row is not None:
            own = own_row[start : start + distances.shape[0]].to(distances.device)
            rows = torch.nonzero(own >= 0).flatten()
            distances[rows, own[rows]] = float("inf")
        out.append(distances.min(dim=1).values)
    return torch.cat(out)


def _residual_terms(
    difference: torch.Tensor, config: ScoreConfig, reference: Reference | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(residual map (N, S, S), R (N,)) from the smoothed difference x − x', as the config defines them."""
    if config.residual_standardised:
        maps = ((difference - reference.residual_mean) / reference.residual_spread).abs().sum(dim=1)
    else:
        maps = difference.abs().sum(dim=1)
    return maps, maps.flatten(1).sum(dim=1)


def _pair_discrimination(networks: Networks, real_features: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """The seed's Dis: Σ|f_D(x) − f_D(x')|. D's image features do not depend on z, so only its image
    branch runs (its z branch and its logit would be thrown away)."""
    return (real_features - networks.discriminator.features(reconstruction)).abs().sum(dim=1)


def _network_pass(networks: Networks, x: torch.Tensor, config: ScoreConfig):
    """One pass of E, G and D over a batch: (reconstruction, smoothed x − x', and Dis for "pair" or
    D's stage features for "nearest"), in float32 whatever precision the networks ran in."""
    z = networks.encoder(x)
    reconstruction = networks.generator(z)
    if config.discrimination == "nearest":
        discriminated = stage_features(networks, x, config.feature_stage, config.feature_side)
    else:
        discriminated = _pair_discrimination(networks, networks.discriminator.features(x), reconstruction).float()
    with autocast(x.device.type, False):
        reconstruction = reconstruction.float()
        difference = smooth(x - reconstruction, config.residual_smoothing)
    return reconstruction, difference, discriminated


def _forward(networks: Networks, x: torch.Tensor, config: ScoreConfig, reference: Reference | None):
    """(reconstruction, residual map, R, Dis) of a batch."""
    reconstruction, difference, discriminated = _network_pass(networks, x, config)
    with autocast(x.device.type, False):  # the terms in float32
        maps, residual = _residual_terms(difference, config, reference)
        if config.discrimination == "nearest":
            discriminated = nearest_distance(discriminated, reference.features)
    return reconstruction, maps, residual, discriminated


def score_images(
    networks: Networks,
    images: torch.Tensor,
    normalisation: Normalisation,
    config: ScoreConfig = ScoreConfig(),
    keep_images: bool = True,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    reference: Reference | None = None,
) -> Scores:
    """EGBAD scores of normalised images (N, C, S, S), in large batches, one pass each."""
    start = time.perf_counter()
    device = networks.device
    if config.needs_reference and reference is None:
        raise EgbadError("this checkpoint's score needs the training images' reference, which it does not hold; "
                         "train it again or score with a preset that does not standardise.")
    reference = reference.to(device) if reference is not None else None
    images = _pinned(images, device)
    networks = folded(networks)
    parts: dict[str, list[torch.Tensor]] = {"residual": [], "discrimination": [], "recon": [], "maps": []}
    with torch.inference_mode(), autocast(device.type, config.mixed_precision):
        for done, batch in _batches(images, config.batch_size):
            if stop is not None and stop.is_set():
                raise ScoringStopped()
            x = networks.layout(batch.to(device, non_blocking=True))
            reconstruction, maps, residual, discrimination = _forward(networks, x, config, reference)
            parts["residual"].append(residual.float().cpu())
            parts["discrimination"].append(discrimination.float().cpu())
            if keep_images:
                parts["recon"].append(reconstruction.float().cpu())
                parts["maps"].append(maps.float().cpu())
            if progress is not None:
                progress(done, images.shape[0])
    scales = (reference.residual_scale, reference.discrimination_scale) if reference is not None else (1.0, 1.0)
    return _collect("egbad", parts, normalisation, config.lam, time.perf_counter() - start, keep_images, scales)


def build_reference(
    networks: Networks, images: torch.Tensor, normalisation: Normalisation, config: ScoreConfig, seed: int = 0
) -> tuple[Reference | None, np.ndarray]:
    """The training images' Reference (None where the config needs none) and their own scores.

    The nearest-neighbour term of a training image leaves the image itself out, so training
    scores are what a new normal image would get, and thresholds taken from them are fair."""
    if not config.needs_reference:
        return None, score_images(networks, images, normalisation, config, keep_images=False).score
    device = networks.device
    nearest = config.discrimination == "nearest"
    differences, discriminated = [], []  # D's stage features for "nearest", else Dis itself
    networks = folded(networks)
    with torch.inference_mode(), autocast(device.type, config.mixed_precision):
        for _, batch in _batches(images, config.batch_size):
            _, difference, d_part = _network_pass(networks, networks.layout(batch.to(device)), config)
            differences.append(difference)
            discriminated.append(d_part)
    with torch.inference_mode():
        difference = torch.cat(differences)
        spread = difference.std(dim=0, unbiased=False).clamp_min(SPREAD_FLOOR / normalisation.std)
        reference = Reference(difference.mean(dim=0), spread, None, 1.0, 1.0)
        _, residual = _residual_terms(difference, config, reference)
        if nearest:
            every = torch.cat(discriminated)
            count = every.shape[0]
            keep = torch.arange(count)
            if count > MEMORY_IMAGES:
                keep = torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:MEMORY_IMAGES]
            own_row = torch.full((count,), -1, dtype=torch.long)
            own_row[keep] = torch.arange(keep.numel())
            reference.features = every[keep.to(every.device)]
            discrimination = nearest_distance(every, reference.features, own_row)
        else:
            discrimination = torch.cat(discriminated)
    residual, discrimination = residual.double().cpu(), discrimination.double().cpu()
    if config.standardise_terms:
        reference.residual_scale, reference.discrimination_scale = _spread(residual), _spread(discrimination)
    scores = combine(residual / reference.residual_scale, discrimination / reference.discrimination_scale, config.lam)
    return reference.to(torch.device("cpu")), scores.numpy()


def _spread(values: torch.Tensor) -> float:
    spread = float(values.std(unbiased=False))
    return spread if spread > 0 else 1.0


def score_anogan(
    networks: Networks,
    images: torch.Tensor,
    normalisation: Normalisation,
    config: ScoreConfig = ScoreConfig(),
    keep_images: bool = True,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    seed: int = 0,
) -> Scores:
    """AnoGAN: search z for each image by Adam on the seed's A(x) (λ = 0.1) with G and D frozen,
    then score with those terms.

    The search runs a whole batch at once; each image's loss term depends only on its own z,
    and Adam is element-wise, so batching changes no image's result.
    """
    start = time.perf_counter()
    device = networks.device
    generator = torch.Generator().manual_seed(seed)
    parts: dict[str, list[torch.Tensor]] = {"residual": [], "discrimination": [], "recon": [], "maps": []}
    total = images.shape[0]
    networks = folded(networks)  # frozen: gradients reach z only
    for done, batch in _batches(images, config.batch_size):
        x = networks.layout(batch.to(device))
        z = torch.randn(x.shape[0], networks.config.latent_size, generator=generator).to(device)
        with torch.no_grad():
            real_features = networks.discriminator.features(x)
        z.requires_grad_(True)
        optimiser = Adam([z], lr=config.anogan_lr)
        for step in range(config.anogan_steps):
            if stop is not None and stop.is_set():
                raise ScoringStopped()
            _, _, residual, discrimination = _score_terms(networks, x, z, real_features)
            loss = combine(residual, discrimination, ANOGAN_LAMBDA).sum()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            if progress is not None and step % 10 == 9:
                fraction = (step + 1) / config.anogan_steps
                progress(int(done - x.shape[0] + fraction * x.shape[0]), total)
        with torch.no_grad():
            reconstruction, maps, residual, discrimination = _score_terms(networks, x, z, real_features)
        parts["residual"].append(residual.cpu())
        parts["discrimination"].append(discrimination.cpu())
        if keep_images:
            parts["recon"].append(reconstruction.cpu())
            parts["maps"].append(maps.cpu())
        if progress is not None:
            progress(done, total)
    return _collect("anogan", parts, normalisation, ANOGAN_LAMBDA, time.perf_counter() - start, keep_images)


def score(
    method: str,
    networks: Networks,
    images: torch.Tensor,
    normalisation: Normalisation,
    config: ScoreConfig = ScoreConfig(),
    **kwargs,
) -> Scores:
    """Score with the named method (``egbad`` or ``anogan``)."""
    scorer = {"egbad": score_images, "anogan": score_anogan}[method]
    return scorer(networks, images, normalisation, config, **kwargs)


def _pinned(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Page-locked host memory for images bound for a GPU, so each batch's copy runs asynchronously."""
    if device.type == "cuda" and images.device.type == "cpu" and not images.is_pinned():
        return images.pin_memory()
    return images


def _batches(images: torch.Tensor, size: int) -> Iterator[tuple[int, torch.Tensor]]:
    for start in range(0, images.shape[0], size):
        batch = images[start : start + size]
        yield start + batch.shape[0], batch


def _collect(
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
