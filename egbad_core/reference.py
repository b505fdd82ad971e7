"""What a trained model's scores measure against: the training images as its networks see them.

Computed once when a checkpoint is written and stored in it (``Reference.to_payload``): the mean
and spread of the smoothed residual at each pixel, up to MEMORY_IMAGES training images' D stage
features for the nearest-neighbour term, and the spread of each term over the training images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .config import Normalisation, ScoreConfig, autocast
from .inference import folded
from .models import Networks
from .scoring import batches, combine, nearest_distance, network_pass, residual_terms, score_images

MEMORY_IMAGES = 2000  # training images a reference is made of (and kept for the nearest-neighbour term), at most
SPREAD_FLOOR = 0.025  # in units of the pixel range: quiet pixels do not turn noise into alarms


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


def spread_of(values: torch.Tensor) -> float:
    """The standard deviation, or 1 where there is none, so dividing by it is always safe."""
    spread = float(values.std(unbiased=False))
    return spread if spread > 0 else 1.0
