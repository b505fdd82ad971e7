"""Small tensor helpers every scorer uses: blurs, batches, pinned memory, nearest distances."""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F


def exporting() -> bool:
    """Whether a graph is being traced for an export (``torch.onnx.export``), where each step of a
    Python loop becomes nodes of the graph."""
    check = getattr(torch.compiler, "is_exporting", None)  # not in every torch the pins admit
    return bool(check and check())


def smooth(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of each channel with zero padding; σ = 0 returns the images unchanged.

    Not torchvision's ``gaussian_blur``: that pads by reflection, which would move every stored
    reference's border pixels and so the scores of every checkpoint written so far."""
    if sigma <= 0:
        return images
    radius = kernel_reach(sigma)
    steps = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(steps**2) / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    return _blur_rows(_blur_columns(images, kernel), kernel)


def kernel_reach(sigma: float) -> int:
    """Pixels either side of the centre that ``smooth``'s kernel of ``sigma`` spans (0 for no blur)."""
    return max(1, int(round(2.5 * sigma))) if sigma > 0 else 0


def smooth_within(images: torch.Tensor, sigma: float, frame: torch.Tensor | None = None) -> torch.Tensor:
    """Gaussian blur of each channel over the frame only (each pixel's weights summed to 1 inside
    it): a wide blur that zero padding would dim at the frame's edge. ``frame`` (N, 1, H, W) bool:
    the part of each image that is the frame (all of it where None)."""
    if sigma <= 0:
        return images
    weight = images.new_ones((1, 1) + tuple(images.shape[-2:])) if frame is None else frame.to(images.dtype)
    return smooth(images * weight, sigma) / smooth(weight, sigma).clamp_min(1e-6)


BLUR_BLOCK = 32  # output pixels a band of the blur's matrix product makes at once, along a long side
# A side up to this long is blurred by one matrix product. Longer ones in blocks: the whole band
# matrix of a 256-px side is 92% zeros at σ 4 (a map of 256 px 0.50 → 0.26 ms, of 128 0.08 → 0.05).
WHOLE_SIDE = 64


def _band(kernel: torch.Tensor, block: int) -> torch.Tensor:
    """(block + taps − 1, block): column j holds the kernel over inputs j … j + taps − 1."""
    taps = kernel.numel()
    offset = torch.arange(block + taps - 1, device=kernel.device)[:, None] - torch.arange(block, device=kernel.device)[None, :]
    inside = (offset >= 0) & (offset < taps)
    return torch.where(inside, kernel[offset.clamp(0, taps - 1)], kernel.new_zeros(()))


# The 1-D passes are matrix products: the same sums as a convolution with zero padding, at a third
# to a fifth of the time of PyTorch's depthwise convolution on the CPU (which had been a fifth of
# a photo's scoring time, and is slowest on the large windows photos are scored in: 150 against
# 28 ms at 1,088 px, 60 against 11 for 16 maps of 256). A short side is one product with the whole
# band matrix; a long one, blocks of 32 outputs, each with the kernel's reach either side.
def _blur_columns(images: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The blur along the last axis."""
    length, reach = images.shape[-1], (kernel.numel() - 1) // 2
    block = length if length <= WHOLE_SIDE else BLUR_BLOCK
    count = -(-length // block)
    padded = F.pad(images, (reach, count * block - length + reach))
    band = _band(kernel, block)
    if count == 1:
        return (padded.reshape(-1, padded.shape[-1]) @ band).view(*images.shape)
    # The blocks copied out whole, then one flat product: a product over the unfolded view went
    # through a batched path 20 times slower in a worker thread (where the window scores).
    blocks = padded.unfold(-1, block + 2 * reach, block).contiguous()
    return (blocks.view(-1, block + 2 * reach) @ band).view(*images.shape[:-1], count * block)[..., :length]


def _blur_rows(images: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The blur along the axis before the last."""
    length, reach = images.shape[-2], (kernel.numel() - 1) // 2
    block = length if length <= WHOLE_SIDE else BLUR_BLOCK
    count = -(-length // block)
    padded = F.pad(images, (0, 0, reach, count * block - length + reach))
    band = _band(kernel, block)
    if count == 1:
        return band.T @ padded
    blocks = padded.unfold(-2, block + 2 * reach, block).contiguous()  # (…, count, W, block + taps − 1)
    blurred = (blocks.view(-1, block + 2 * reach) @ band).view(*blocks.shape[:-1], block)
    return blurred.transpose(-1, -2).flatten(-3, -2)[..., :length, :]


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
