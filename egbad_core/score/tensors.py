"""Small tensor helpers every scorer uses: blurs, batches, pinned memory, nearest distances."""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F


def smooth(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of each channel with zero padding; σ = 0 returns the images unchanged.

    Not torchvision's ``gaussian_blur``: that pads by reflection, which would move every stored
    reference's border pixels and so the scores of every checkpoint written so far."""
    if sigma <= 0:
        return images
    radius = max(1, int(round(2.5 * sigma)))
    steps = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(steps**2) / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    # Two passes of the 1-D kernel, the same blur as the 2-D one (with zero padding too) at a tenth
    # of the work for σ = 4: the dense 21×21 kernel had been a fifth of scoring time at 256 px.
    rows = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    columns = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    across = F.conv2d(images, rows, padding=(0, radius), groups=channels)
    return F.conv2d(across, columns, padding=(radius, 0), groups=channels)


def pinned(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Page-locked host memory for images bound for a GPU, so each batch's copy runs asynchronously."""
    if device.type == "cuda" and images.device.type == "cpu" and not images.is_pinned():
        return images.pin_memory()
    return images


def batches(images: torch.Tensor, size: int) -> Iterator[tuple[int, torch.Tensor]]:
    """(images done after this batch, the batch) in order."""
    for start in range(0, images.shape[0], size):
        batch = images[start : start + size]
        yield start + batch.shape[0], batch


def nearest_distance(queries: torch.Tensor, memory: torch.Tensor, own_row: torch.Tensor | None = None) -> torch.Tensor:
    """Euclidean distance from each query to its nearest memory row, in chunks that bound memory.

    ``own_row[i]`` is the memory row that is query i itself (−1 if none): that one is skipped.
    Computed directly, not by cdist's matrix-product shortcut, whose rounding near zero depends on
    how many queries come together (a near-duplicate of a training image scored 0.02 in one batch
    and 0 in another)."""
    out = []
    for start in range(0, queries.shape[0], 512):
        distances = torch.cdist(queries[start : start + 512], memory, compute_mode="donot_use_mm_for_euclid_dist")
        if own_row is not None:
            own = own_row[start : start + distances.shape[0]].to(distances.device)
            rows = torch.nonzero(own >= 0).flatten()
            distances[rows, own[rows]] = float("inf")
        out.append(distances.min(dim=1).values)
    return torch.cat(out)


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, h, w) maps → (N, H, W), bilinear."""
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def spread_of(values: torch.Tensor) -> float:
    """The standard deviation, or 1 where there is none, so dividing by it is always safe."""
    spread = float(values.std(unbiased=False))
    return spread if spread > 0 else 1.0
