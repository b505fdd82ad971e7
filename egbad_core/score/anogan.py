"""AnoGAN, the slow baseline the seed times EGBAD against: a latent search per image.

For each image, z is searched by Adam on the seed's A(x) (λ = 0.1) with G and D frozen, a few
hundred steps, then the image is scored with those terms. Kept as a selectable method so the app
shows the speed gap on the user's own data.
"""

from __future__ import annotations

import threading
import time

import torch

from ..config import Normalisation, ScoreConfig
from ..events import ProgressEvent, Task, run_to_end, stopped
from ..model.inference import folded
from ..model.networks import Networks
from .scores import Scores, add_parts, collect, combine, new_parts
from .tensors import batches
from .whole import pair_discrimination

ANOGAN_LAMBDA = 0.1  # the AnoGAN paper's λ: its latent search minimises the seed's A(x)
REPORT_EVERY = 10  # search steps between progress events


def _terms(networks: Networks, x: torch.Tensor, z: torch.Tensor, real_features: torch.Tensor):
    """The seed's (reconstruction, residual map, R, Dis) of a batch for a given z. ``real_features``
    are D's image features of x, which the search does not change."""
    reconstruction = networks.generator(z)
    residual_map = (x - reconstruction).abs().sum(dim=1)
    discrimination = pair_discrimination(networks, real_features, reconstruction)
    return reconstruction, residual_map, residual_map.flatten(1).sum(dim=1), discrimination


def anogan_task(
    networks: Networks,
    images: torch.Tensor,
    normalisation: Normalisation,
    config: ScoreConfig = ScoreConfig(),
    keep_images: bool = True,
    stop: threading.Event | None = None,
    seed: int = 0,
) -> Task[Scores | None]:
    """AnoGAN scores of images as loaded as a task: progress every few search steps; the Scores,
    or None if ``stop`` was set.

    The search runs a whole batch at once; each image's loss term depends only on its own z,
    and Adam is element-wise, so batching changes no image's result.
    """
    start = time.perf_counter()
    device = networks.device
    generator = torch.Generator().manual_seed(seed)
    parts = new_parts()
    total = images.shape[0]
    networks = folded(networks)  # frozen: gradients reach z only
    for done, batch in batches(images, config.batch_size):
        x = networks.layout(normalisation.apply(batch.to(device)))
        z = torch.randn(x.shape[0], networks.config.code_size, generator=generator).to(device)
        with torch.no_grad():
            real_features = networks.discriminator.features(x)
        z.requires_grad_(True)
        optimiser = torch.optim.Adam([z], lr=config.anogan_lr)
        for step in range(config.anogan_steps):
            if stopped(stop):
                return None
            _, _, residual, discrimination = _terms(networks, x, z, real_features)
            loss = combine(residual, discrimination, ANOGAN_LAMBDA).sum()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            if step % REPORT_EVERY == REPORT_EVERY - 1:
                fraction = (step + 1) / config.anogan_steps
                yield ProgressEvent("scoring", int(done - x.shape[0] + fraction * x.shape[0]), total)
        with torch.no_grad():
            reconstruction, maps, residual, discrimination = _terms(networks, x, z, real_features)
            add_parts(parts, residual, discrimination, reconstruction if keep_images else None, maps)
        yield ProgressEvent("scoring", done, total)
    return collect("anogan", parts, normalisation, ANOGAN_LAMBDA, time.perf_counter() - start, keep_images)


def score_anogan(networks: Networks, images: torch.Tensor, normalisation: Normalisation,
                 config: ScoreConfig = ScoreConfig(), keep_images: bool = True, seed: int = 0) -> Scores:
    """``anogan_task`` run to its end on this thread."""
    return run_to_end(anogan_task(networks, images, normalisation, config, keep_images, seed=seed))
