"""EGBAD's anomaly score of whole images: one forward pass of E, G and D per image.

For an image x with z = E(x) and x' = G(z), the seed's score is
    residual        R(x)   = Σ |x − x'| over pixels (in normalised units)
    discrimination  Dis(x) = Σ |f_D(x, z) − f_D(x', z)| over D's image features
    score           A(x)   = (1 − λ)·R(x) + λ·Dis(x)
ScoreConfig can make each term measure against the training images instead (a Reference, built by
``whole_reference``): R from the blurred residual in units of the training images' spread at each
pixel, Dis as the distance from D's stage features of x to the nearest training image's, and
both terms divided by their spread over the training images before λ mixes them. Networks are
scored as a frozen eval-mode copy with no autograd, so an image's score never depends on the
other images in its batch (the seed's first defect). AnoGAN's slow search is in ``anogan``.
"""

from __future__ import annotations

import threading
import time

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Normalisation, ScoreConfig, autocast
from ..errors import EgbadError
from ..events import ProgressEvent, Task, run_to_end, stopped
from ..model.inference import folded
from ..model.networks import Networks
from ..model.references import Reference
from .scores import Scores, add_parts, collect, new_parts
from .tensors import batches, nearest_distance, pinned, smooth


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


def residual_terms(
    difference: torch.Tensor, config: ScoreConfig, reference: Reference | None
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


def _forward(networks: Networks, x: torch.Tensor, config: ScoreConfig, reference: Reference | None):
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
    reference: Reference | None = None,
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
    reference: Reference | None = None,
) -> Scores:
    """``scoring_task`` run to its end on this thread (no stop, no progress)."""
    return run_to_end(scoring_task(networks, images, normalisation, config, reference, keep_images))
