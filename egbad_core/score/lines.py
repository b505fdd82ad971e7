"""Thin straight lines on a busy surface: the patch scorer's third description of a place.

A 2–3 px scratch of a mid tone on a surface whose own grain is as fine and as contrasted (rock's
ridges, paper's fibres) changes no 8-px window's moments more than the grain does, and D sees 4×4
px at a time. What tells it apart is that it runs straight and even: along a line of ``length`` px
its tone barely changes, where a ridge of the surface, as bright, varies along its run. So each
pixel and each of ``ORIENTATIONS`` directions gets the mean along the line less the mean of the
two lines ``FLANK`` px beside it, over the spread of the pixels along the line (plus ``FLOOR``):
a contrast held evenly along the line. Each direction is measured in its own units over the
training images, a place every 2 px described by its 12 directions, and a place's value is its
distance to the nearest training place's (a coreset bank, as the other terms'): a grain whose even
lines run one way (bark's grooves) is normal where it is, a line across it is not. The filters run
as one convolution of the gray and its square.

Issue 19, on the tuning half's textures with the second painter's mid-tone scratches (rock's 0.84,
the weakest): the contrast alone (the line less its flanks, any length 9–31) found them no better
(0.81); over the spread along a 7-px line, each place at its most unusual direction, 0.92, but on
the report half bark's grooves made its cracks 0.85 → 0.73; against the bank of places, rock's
scratches 1.00, the tuning half's textures 0.961 → 0.981, and then on the report half bark's
scratches 0.76 → 0.93, paper's 0.71 → 1.00 (benchmarks/RESULTS.md, fifteenth session).
Checkpoints written before it have no line bank and score without it.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from .nearest import nearest_map

ORIENTATIONS = 12  # directions, 15° apart: a 7-px line off by 7.5° strays under half a pixel at its ends
FLANK = 3  # px between the line and each flank it is compared with (2 px let a 2-px line into both)
# Added to the spread along a line before the contrast is divided by it, in the networks' units
# (the patch preset's: 2% of the pixel range): an even line's spread is near 0, and a flat part of
# the surface's contrast is as near; 1–4% did alike on the tuning half, 6% found fewer scratches.
FLOOR = 0.04
BANK_SIZE = 4096  # training places a reference keeps (greedy coreset), as many as the moments' bank
BAND_PIXELS = 16_384  # pixels of an image whose responses are computed at once (rows of it, whole)


def line_kernels(length: int) -> torch.Tensor:
    """(2, ORIENTATIONS, S, S): each direction's mean along a 1-px line of ``length`` px through the
    centre, and that line less the mean of its two flanks (zero-sum); S = 2·(length // 2) + 1. Each
    line is drawn with bilinear weights, so a slanted line weighs the pixels it crosses as an
    axis-aligned one does."""
    return torch.from_numpy(_kernel_values(length).copy())


@functools.lru_cache(maxsize=8)
def _kernel_values(length: int) -> np.ndarray:
    """``line_kernels`` drawn with NumPy: a graph traced for an export takes them as one constant,
    where drawn with torch each window's graph had held the drawing (15,785 nodes against 2,452)."""
    reach = length // 2
    side = 2 * reach + 1
    kernels = np.zeros((2, ORIENTATIONS, side, side))
    steps = np.linspace(-reach, reach, 4 * length)
    for k in range(ORIENTATIONS):
        angle = math.pi * k / ORIENTATIONS
        along, across = (math.cos(angle), math.sin(angle)), (-math.sin(angle), math.cos(angle))
        for offset, weight in ((0.0, 1.0), (FLANK, -0.5), (-FLANK, -0.5)):
            line = _drawn(reach + steps * along[0] + offset * across[0], reach + steps * along[1] + offset * across[1], side)
            kernels[1, k] += weight * line / line.sum()
            if not offset:
                kernels[0, k] = line / line.sum()
    kernels = kernels.astype(np.float32)
    kernels.flags.writeable = False  # shared by every call
    return kernels


def _drawn(xs: np.ndarray, ys: np.ndarray, side: int) -> np.ndarray:
    """A (side, side) image of points at (xs, ys), each spread over its four pixels bilinearly."""
    image = np.zeros(side * side)
    x0, y0 = np.floor(xs), np.floor(ys)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        px, py = x0 + dx, y0 + dy
        weight = (1 - np.abs(xs - px)) * (1 - np.abs(ys - py))
        keep = (px >= 0) & (px < side) & (py >= 0) & (py < side) & (weight > 0)
        np.add.at(image, (py[keep] * side + px[keep]).astype(np.int64), weight[keep])
    return image.reshape(side, side)


def _weights(length: int, device: str) -> torch.Tensor:
    """(3·ORIENTATIONS, 1, S, S) one convolution's weights, in three groups over the gray, its square
    and the gray again: the means along the lines, of the gray and of its square, and the lines less
    their flanks. In groups, each map takes only the channel it reads (over both channels, half the
    products had been with zeros: at 256 px 6.1 → 4.4 ms an image). Made on each call from the
    kernels NumPy keeps (on the CPU without a copy): no tensor is kept, so none made while a graph is
    traced for an export outlives the trace (a kept one had broken every later scoring in the
    process, ".numpy() is not supported for tensor subclasses", where an export came first)."""
    along, ridge = _kernel_values(length)
    return torch.from_numpy(np.concatenate([along, along, ridge])[:, None]).to(device)


def line_responses(x: torch.Tensor, length: int) -> torch.Tensor:
    """(N, ORIENTATIONS, H, W) each direction's even contrast at every pixel of the image's gray (the
    channels' mean): the line less its flanks over the spread along the line plus ``FLOOR``; the
    frame mirrored at its edges."""
    gray = x.float().mean(dim=1, keepdim=True)
    reach = length // 2
    if min(gray.shape[-2:]) <= reach:  # too small to mirror: lines that long do not fit it
        return torch.zeros(gray.shape[0], ORIENTATIONS, *gray.shape[-2:], device=x.device)
    padded = F.pad(gray, (reach, reach, reach, reach), mode="reflect")
    weights = _weights(length, str(x.device))
    # One convolution of the gray and its square (in groups), channels last, a band of rows of an image at a
    # time (its 36 maps stay in the cache), the rest in place: at 256 px a quarter of the time that
    # products of FFTs took (7 ms an image against 29), a photo's 1,120-px window 113 ms against 196
    # whole, the kernels being 7 px.
    height, rows = gray.shape[-2], max(1, BAND_PIXELS // gray.shape[-1])
    return torch.cat([torch.cat([_even_contrast(image[..., top : min(height, top + rows) + 2 * reach, :], weights)
                                 for top in range(0, height, rows)], dim=-2) for image in padded.split(1)])


def _even_contrast(padded: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    both = torch.cat([padded, padded.square(), padded], dim=1).contiguous(memory_format=torch.channels_last)
    mean, mean_square, contrast = F.conv2d(both, weights, groups=3).chunk(3, dim=1)
    return contrast / torch.addcmul(mean_square, mean, mean, value=-1.0).clamp_min_(0.0).sqrt_().add_(FLOOR)


def line_sums(responses: torch.Tensor) -> torch.Tensor:
    """(3, ORIENTATIONS) count, sum and sum of squares of each direction's responses: added up batch by
    batch, so the training images' responses are never all held (a photo's windows' would be GBs)."""
    flat = responses.transpose(0, 1).reshape(ORIENTATIONS, -1).double()
    return torch.stack([torch.full((ORIENTATIONS,), float(flat.shape[1]), dtype=torch.float64, device=flat.device),
                        flat.sum(dim=1), flat.square().sum(dim=1)])


def line_statistics(sums: torch.Tensor) -> torch.Tensor:
    """(2, ORIENTATIONS) each direction's mean and spread from ``line_sums`` added up."""
    count, total, squares = sums
    mean = total / count
    spread = (squares / count - mean.square()).clamp_min(0.0).sqrt().clamp_min(1e-6)
    return torch.stack([mean, spread]).float()


def line_step(height: int, width: int, grid: int) -> int:
    """Pixels between the places of an image of this size: at most ``grid`` a side, as D's features
    (2 px at 128 px, 4 at 256, the same in a photo's windows, whose grid grows with them); 0: every pixel."""
    return max(1, -(-max(height, width) // grid)) if grid else 1


def line_places(responses: torch.Tensor, statistics: torch.Tensor, step: int) -> torch.Tensor:
    """(N, ORIENTATIONS, ⌈H/step⌉, ⌈W/step⌉) each direction's response in its units
    (``line_statistics``), a place every ``step`` px holding its step×step pixels' value furthest
    from 0: a 2-px line falls whole into one place whichever way it lies (every second pixel alone
    found fewer on the tuning half: rock's scratches 0.96 against 0.99)."""
    mean, spread = (s.to(responses.device).view(1, -1, 1, 1) for s in statistics)
    if step > 1:  # pooled before they are measured, which keeps each block's order: a third less time
        high, low = F.max_pool2d(responses, step, ceil_mode=True), -F.max_pool2d(-responses, step, ceil_mode=True)
        high, low = (high - mean) / spread, (low - mean) / spread
        return torch.where(high.abs() >= low.abs(), high, low)
    return (responses - mean) / spread


def line_map(x: torch.Tensor, length: int, bank: tuple[torch.Tensor, torch.Tensor], grid: int) -> torch.Tensor:
    """(N, h, w) how far each place's lines lie from the nearest training place's, a place every
    ``line_step`` px: ``bank`` is the directions' units and the training places (``line_places``),
    as a reference keeps them."""
    statistics, memory = bank
    return nearest_map(line_places(line_responses(x, length), statistics, line_step(*x.shape[-2:], grid)), memory)
