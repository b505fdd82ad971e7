"""What a whole-image model's scores measure against: the training images as its networks see them.

Computed once when a checkpoint is written and stored in it (``model.references.Reference``): the
mean and spread of the smoothed residual at each pixel, up to MEMORY_IMAGES training images' D stage
features for the nearest-neighbour term, and the spread of each term over the training images.
"""

from __future__ import annotations

import numpy as np
import torch

from ..config import Normalisation, ScoreConfig, autocast
from ..model.inference import folded
from ..model.networks import Networks
from ..model.references import Reference
from .scores import combine
from .tensors import batches, nearest_distance, spread_of
from .whole import network_pass, residual_terms, score_images

MEMORY_IMAGES = 2000  # training images a reference is made of (and kept for the nearest-neighbour term), at most
SPREAD_FLOOR = 0.025  # in units of the pixel range: quiet pixels do not turn noise into alarms


def build_reference(
    networks: Networks, images: torch.Tensor, normalisation: Normalisation, config: ScoreConfig, seed: int = 0
) -> tuple[Reference | None, np.ndarray]:
    """The training images' Reference (None where the config needs none) and their own scores.

    The nearest-neighbour term of a training image leaves the image itself out, so training
    scores are what a new normal image would get, and thresholds taken from them are fair. At most
    MEMORY_IMAGES images (a seeded sample) are used, so a checkpoint's cost does not grow with the data."""
    if images.shape[0] > MEMORY_IMAGES:
        sample = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))[:MEMORY_IMAGES]
        images = images[sample.sort().values.to(images.device)]
    if not config.needs_reference:
        return None, score_images(networks, images, normalisation, config, keep_images=False).score
    device = networks.device
    nearest = config.discrimination == "nearest"
    differences, discriminated = [], []  # D's stage features for "nearest", else Dis itself
    networks = folded(networks)
    with torch.inference_mode(), autocast(device.type, config.mixed_precision):
        for _, batch in batches(images, config.batch_size):
            _, difference, d_part = network_pass(networks, networks.layout(normalisation.apply(batch.to(device))), config)
            differences.append(difference)
            discriminated.append(d_part)
    with torch.inference_mode():
        difference = torch.cat(differences)
        spread = difference.std(dim=0, unbiased=False).clamp_min(SPREAD_FLOOR / normalisation.std)
        reference = Reference(difference.mean(dim=0), spread, None, 1.0, 1.0)
        _, residual = residual_terms(difference, config, reference)
        if nearest:
            reference.features = torch.cat(discriminated)
            discrimination = nearest_distance(reference.features, reference.features, torch.arange(reference.features.shape[0]))
        else:
            discrimination = torch.cat(discriminated)
    residual, discrimination = residual.double().cpu(), discrimination.double().cpu()
    if config.standardise_terms:
        reference.residual_scale, reference.discrimination_scale = spread_of(residual), spread_of(discrimination)
    scores = combine(residual / reference.residual_scale, discrimination / reference.discrimination_scale, config.lam)
    return reference.to(torch.device("cpu")), scores.numpy()
