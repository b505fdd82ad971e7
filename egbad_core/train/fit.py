"""How well the model in training reconstructs what it trains on: R² of G(E(x)) on its own inputs.

Measured each epoch (the preview shows it, the collapse watch judges it) and stored in every
checkpoint, over a fixed seeded sample so that the figure moves only when the networks do. It draws
from a generator of its own: the training's random stream is not touched, so a run with the
measurement crops, shuffles and learns as one without it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..config import Preset
from ..model.networks import Networks
from ..model.references import PatchReference
from ..score.explained import explained, variation_sums
from ..score.tiling import photo_worst, window_starts

FIT_INPUTS = 256  # training inputs (a patch model's: one crop of each image) the figure is taken over
REFERENCE_WINDOWS = 64  # photos at their own resolution: windows of held-out photos the reference's units come from
COVERINGS = 2  # photos at their own resolution: how often the reference's windows cover every place of the frame
HELD_PHOTOS = 0.25  # share of the photos whose windows measure the units, never in the banks
PHOTOS_SCORED = 16  # of those, the photos scored whole for the good-image scores (thresholds, false alarms)


def fit_inputs(images: torch.Tensor, side: int, crops: bool, seed: int, count: int = FIT_INPUTS) -> torch.Tensor:
    """Up to ``count`` training images as loaded, a seeded sample; for a patch model one seeded
    ``side``-px crop of each (of some twice or more, where there are fewer images than ``count``
    and crops are asked for)."""
    generator = torch.Generator().manual_seed(seed + 2)
    rows = torch.randperm(len(images), generator=generator)[:count]
    if crops and len(rows) < count:
        rows = torch.cat([rows, torch.randint(0, len(images), (count - len(rows),), generator=generator)])
    rows = rows.sort().values
    pixels = images[rows.to(images.device)]
    if not crops:
        return pixels
    height, width = pixels.shape[-2:]
    tops = torch.randint(0, height - side + 1, (len(rows),), generator=generator).tolist()
    lefts = torch.randint(0, width - side + 1, (len(rows),), generator=generator).tolist()
    return torch.stack([pixels[i, :, t : t + side, l : l + side] for i, (t, l) in enumerate(zip(tops, lefts))])


@torch.no_grad()
def reconstruction_fit(networks: Networks, pixels: torch.Tensor, prepare: Callable[[torch.Tensor], torch.Tensor],
                       batch_size: int) -> float | None:
    """R² of G(E(x)) over ``pixels`` (``prepare`` turns them into the networks' inputs), in eval
    mode; the networks are left in training mode, as the trainer keeps them."""
    networks.eval()
    sums = [0.0, 0.0]
    try:
        for batch in pixels.split(batch_size):
            x = prepare(batch)
            for i, value in enumerate(variation_sums(x, networks.generator(networks.encoder(x)))):
                sums[i] += value
    finally:
        networks.train()
    return explained(*sums)


def reference_inputs(images: torch.Tensor, settings: Preset) -> tuple[torch.Tensor, int]:
    """What the score's reference is built from, and how many of them (the last) its units are
    measured on instead of its banks (0: the builder draws them at random, as for whole images).

    Photos at their own resolution give windows of the working size, as scoring cuts them: from
    three quarters of the photos, windows side by side over the whole frame, COVERINGS times over
    (each from a seeded photo), so that the banks see every place of the part at least that often
    (64 random windows of 256 px had left a third of a 2,048-px frame unseen, and a rare but normal
    place there flagged in every good photo of an aligned part: yellowflower's good photos scored 20
    against the held-out ones' 0.3); then REFERENCE_WINDOWS seeded windows from the other photos, never
    in the banks, for the units and the good-image scores."""
    if not settings.model.full_resolution:
        return images, 0
    side, seed = settings.model.working_size, settings.train.seed + 1
    generator = torch.Generator().manual_seed(seed)
    held_photos = held_photo_rows(len(images), settings)
    in_bank = torch.ones(len(images), dtype=torch.bool)
    in_bank[held_photos] = len(images) == 1  # one photo serves both
    bank_photos = in_bank.nonzero()[:, 0]
    rows, columns = (window_starts(length, side, overlap=0) for length in images.shape[-2:])
    cells = [(top, left) for top in rows for left in columns]
    picks = bank_photos[torch.randint(0, len(bank_photos), (COVERINGS * len(cells),), generator=generator)].tolist()
    covering = torch.stack([images[i, :, t : t + side, l : l + side] for i, (t, l) in zip(picks, cells * COVERINGS)])
    windows = fit_inputs(images[held_photos.to(images.device)], side, True, seed, REFERENCE_WINDOWS)
    return torch.cat([covering, windows]), len(windows)


def held_photo_rows(count: int, settings: Preset) -> torch.Tensor:
    """Which of ``count`` photos are held out of a photo model's banks (all of one photo), sorted."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(settings.train.seed + 3))
    held = max(1, round(count * HELD_PHOTOS))
    return (order[:held] if count > 1 else order).sort().values


def held_photo_scores(networks: Networks, images: torch.Tensor, settings: Preset,
                      reference: PatchReference) -> np.ndarray | None:
    """A photo model's good-image scores: its held-out photos scored whole, as scoring scores a
    photo (the worst of all its windows' places: one window's worst is lower, and thresholds taken
    from windows flagged most good photos); None for any other model."""
    if not settings.model.full_resolution:
        return None
    rows = held_photo_rows(len(images), settings)[:PHOTOS_SCORED].tolist()
    return np.array([photo_worst(networks, images[row].cpu(), settings.normalisation, settings.score, reference)
                     for row in rows])
