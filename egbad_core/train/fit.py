"""How well the model in training reconstructs what it trains on: R² of G(E(x)) on its own inputs.

Measured each epoch (the preview shows it, the collapse watch judges it) and stored in every
checkpoint, over a fixed seeded sample so that the figure moves only when the networks do. It draws
from a generator of its own: the training's random stream is not touched, so a run with the
measurement crops, shuffles and learns as one without it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..model.networks import Networks
from ..score.explained import explained, variation_sums

FIT_INPUTS = 256  # training inputs (a patch model's: one crop of each image) the figure is taken over


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
