"""Thin straight lines on a fine grain: the patch scorer's third description of a place.

A 1–3 px scratch on a surface whose own grain is as fine and as dark (paper's fibres) changes no
8-px window's moments more than the grain does, and D sees 4×4 px at a time. What tells it apart
is that it runs straight for tens of pixels, where the grain does not: the mean of the pixels
along a line of ``length`` px, less the mean of the two lines ``FLANK`` px beside it, averages the
grain away (its noise falls as the square root of the length) and keeps the scratch whole. Each
of ``ORIENTATIONS`` directions is measured in its own spread over the training images, so a grain
that runs one way (wood, fibres) is as normal as it is there; a place's value is its most unusual
direction. The filters run as products in the frequency domain: 12 filters of 31×31 px cost two
FFTs an image, where a convolution took 190 million multiplications at 128 px.

Opt-in (``ScoreConfig.line_length``): on the report half it found more of paper's 1-px scratches
(0.61 → 0.73) and cost raindrops' soft stains (0.86 → 0.79), one more term in the maximum.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

ORIENTATIONS = 12  # directions, 15° apart: a 31-px line off by 7.5° strays 2 px at its ends
FLANK = 3  # px between the line and each flank it is compared with (2 px let a 2-px line into both)


@functools.lru_cache(maxsize=8)
def ridge_kernels(length: int) -> torch.Tensor:
    """(ORIENTATIONS, S, S) zero-sum filters: a 1-px line of ``length`` px through the centre, less
    the mean of its two flanks; S = 2·(length // 2) + 1. Each line is drawn with bilinear weights, so a
    slanted line weighs the pixels it crosses as an axis-aligned one does."""
    reach = length // 2
    side = 2 * reach + 1
    kernels = torch.zeros(ORIENTATIONS, side, side, dtype=torch.float64)
    steps = torch.linspace(-reach, reach, 4 * length, dtype=torch.float64)
    for k in range(ORIENTATIONS):
        angle = math.pi * k / ORIENTATIONS
        along, across = (math.cos(angle), math.sin(angle)), (-math.sin(angle), math.cos(angle))
        for offset, weight in ((0.0, 1.0), (FLANK, -0.5), (-FLANK, -0.5)):
            line = _drawn(reach + steps * along[0] + offset * across[0], reach + steps * along[1] + offset * across[1], side)
            kernels[k] += weight * line / line.sum()
    return kernels.float()


def _drawn(xs: torch.Tensor, ys: torch.Tensor, side: int) -> torch.Tensor:
    """A (side, side) image of points at (xs, ys), each spread over its four pixels bilinearly."""
    image = torch.zeros(side * side, dtype=torch.float64)
    x0, y0 = xs.floor(), ys.floor()
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        px, py = x0 + dx, y0 + dy
        weight = (1 - (xs - px).abs()) * (1 - (ys - py).abs())
        keep = (px >= 0) & (px < side) & (py >= 0) & (py < side) & (weight > 0)
        image.index_add_(0, (py[keep] * side + px[keep]).long(), weight[keep])
    return image.view(side, side)


@functools.lru_cache(maxsize=16)
def _spectra(length: int, height: int, width: int, device: str) -> torch.Tensor:
    """The kernels' spectra for a frame of height × width, each kernel's centre at the origin."""
    kernels = ridge_kernels(length)
    reach = kernels.shape[-1] // 2
    placed = torch.zeros(ORIENTATIONS, height, width)
    placed[:, : kernels.shape[-2], : kernels.shape[-1]] = kernels
    placed = placed.roll((-reach, -reach), dims=(-2, -1))
    return torch.fft.rfft2(placed).to(device)


def line_responses(x: torch.Tensor, length: int) -> torch.Tensor:
    """(N, ORIENTATIONS, H, W) each direction's line-less-flanks mean of the image's gray (the
    channels' mean) at every pixel; the frame mirrored at its edges."""
    gray = x.float().mean(dim=1, keepdim=True)
    reach = length // 2
    if min(gray.shape[-2:]) <= reach:  # too small to mirror: lines that long do not fit it
        return torch.zeros(gray.shape[0], ORIENTATIONS, *gray.shape[-2:], device=x.device)
    height, width = gray.shape[-2:]
    padded = F.pad(gray, (reach, reach, reach, reach), mode="reflect")
    # The mirrored frame is the kernel's reach wider on each side, so the circular product wraps
    # nothing into the pixels kept; zeros beyond it make a size the FFT is quick at (158 px, twice a
    # prime, took three times as long as 160).
    frame = (_quick_size(padded.shape[-2]), _quick_size(padded.shape[-1]))
    padded = F.pad(padded, (0, frame[1] - padded.shape[-1], 0, frame[0] - padded.shape[-2]))
    spectrum = torch.fft.rfft2(padded) * _spectra(length, *frame, str(x.device))
    return torch.fft.irfft2(spectrum, s=frame)[..., reach : reach + height, reach : reach + width]


def _quick_size(length: int) -> int:
    """The least size from ``length`` up with no prime factor above 5."""
    while True:
        rest = length
        for p in (2, 3, 5):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return length
        length += 1


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


def line_map(x: torch.Tensor, length: int, statistics: torch.Tensor) -> torch.Tensor:
    """(N, H, W) each pixel's most unusual direction: the largest |response − mean| / spread."""
    responses = line_responses(x, length)
    mean, spread = (s.to(responses.device).view(1, -1, 1, 1) for s in statistics)
    return ((responses - mean) / spread).abs().amax(dim=1)
