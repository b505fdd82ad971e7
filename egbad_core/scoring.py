"""Anomaly scores: EGBAD's one forward pass, and AnoGAN's latent search as the slow baseline.

For an image x with z = E(x) and x' = G(z):
    residual        R(x)   = Σ |x − x'| over pixels (in normalised units, as the seed)
    discrimination  Dis(x) = Σ |f_D(x, z) − f_D(x', z)| over D's image features
    score           A(x)   = (1 − λ)·R(x) + λ·Dis(x)
Networks are scored in eval mode with no autograd, so an image's score never depends on the
other images in its batch (the seed's first defect).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from .config import Normalisation, ScoreConfig
from .models import Networks

Progress = Callable[[int, int], None]


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


@contextlib.contextmanager
def evaluating(networks: Networks) -> Iterator[None]:
    """Eval mode for the duration, then each network back to the mode it had."""
    modes = {name: module.training for name, module in networks.modules().items()}
    networks.eval()
    try:
        yield
    finally:
        for name, module in networks.modules().items():
            module.train(modes[name])


def combine(residual: torch.Tensor, discrimination: torch.Tensor, lam: float) -> torch.Tensor:
    return (1.0 - lam) * residual + lam * discrimination


def _score_terms(
    networks: Networks, x: torch.Tensor, z: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(reconstruction, residual map, residual, discrimination) of a batch for a given z."""
    reconstruction = networks.generator(z)
    residual_map = (x - reconstruction).abs().sum(dim=1)
    _, real_features = networks.discriminator(x, z)
    _, fake_features = networks.discriminator(reconstruction, z)
    discrimination = (real_features - fake_features).abs().sum(dim=1)
    return reconstruction, residual_map, residual_map.flatten(1).sum(dim=1), discrimination


def score_images(
    networks: Networks,
    images: torch.Tensor,
    normalisation: Normalisation,
    config: ScoreConfig = ScoreConfig(),
    keep_images: bool = True,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> Scores:
    """EGBAD scores of normalised images (N, C, S, S), in large batches, one pass each."""
    start = time.perf_counter()
    device = networks.device
    parts: dict[str, list[torch.Tensor]] = {"residual": [], "discrimination": [], "recon": [], "maps": []}
    with evaluating(networks), torch.inference_mode():
        for done, batch in _batches(images, config.batch_size):
            if stop is not None and stop.is_set():
                raise ScoringStopped()
            x = networks.layout(batch.to(device, non_blocking=True))
            z = networks.encoder(x)
            reconstruction, maps, residual, discrimination = _score_terms(networks, x, z)
            parts["residual"].append(residual.float().cpu())
            parts["discrimination"].append(discrimination.float().cpu())
            if keep_images:
                parts["recon"].append(reconstruction.float().cpu())
                parts["maps"].append(maps.float().cpu())
            if progress is not None:
                progress(done, images.shape[0])
    return _collect("egbad", parts, normalisation, config.lam, time.perf_counter() - start, keep_images)


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
    """AnoGAN: search z for each image by Adam on A(x) with G and D frozen, then score.

    The search runs a whole batch at once; each image's loss term depends only on its own z,
    and Adam is element-wise, so batching changes no image's result.
    """
    start = time.perf_counter()
    device = networks.device
    generator = torch.Generator().manual_seed(seed)
    parts: dict[str, list[torch.Tensor]] = {"residual": [], "discrimination": [], "recon": [], "maps": []}
    total = images.shape[0]
    with evaluating(networks):
        frozen = [p for m in (networks.generator, networks.discriminator) for p in m.parameters()]
        flags = [p.requires_grad for p in frozen]
        for p in frozen:
            p.requires_grad_(False)
        try:
            for done, batch in _batches(images, config.batch_size):
                x = networks.layout(batch.to(device))
                z = torch.randn(x.shape[0], networks.config.latent_size, generator=generator).to(device)
                z.requires_grad_(True)
                optimiser = torch.optim.Adam([z], lr=config.anogan_lr)
                for step in range(config.anogan_steps):
                    if stop is not None and stop.is_set():
                        raise ScoringStopped()
                    _, _, residual, discrimination = _score_terms(networks, x, z)
                    loss = combine(residual, discrimination, config.lam).sum()
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    optimiser.step()
                    if progress is not None and step % 10 == 9:
                        fraction = (step + 1) / config.anogan_steps
                        progress(int(done - x.shape[0] + fraction * x.shape[0]), total)
                with torch.no_grad():
                    reconstruction, maps, residual, discrimination = _score_terms(networks, x, z)
                parts["residual"].append(residual.cpu())
                parts["discrimination"].append(discrimination.cpu())
                if keep_images:
                    parts["recon"].append(reconstruction.cpu())
                    parts["maps"].append(maps.cpu())
                if progress is not None:
                    progress(done, total)
        finally:
            for p, flag in zip(frozen, flags):
                p.requires_grad_(flag)
    return _collect("anogan", parts, normalisation, config.lam, time.perf_counter() - start, keep_images)


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
) -> Scores:
    residual = torch.cat(parts["residual"]).double()
    discrimination = torch.cat(parts["discrimination"]).double()
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
