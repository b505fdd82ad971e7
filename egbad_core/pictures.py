"""Pictures both faces draw: residual heatmaps and real | reconstruction | heatmap tiles.

Pure numpy, so the window can use them without loading torch first.
"""

from __future__ import annotations

import numpy as np

# A perceptually ordered dark-to-bright map (black, purple, red, orange, pale yellow).
_HEAT_ANCHORS = np.array(
    [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float32
)
RED = (230, 30, 30)
TILE = 64  # smallest side an image is drawn at in the grid


def heatmap(maps: np.ndarray, top: float | None = None) -> np.ndarray:
    """Residual maps (..., H, W) → uint8 RGB (..., H, W, 3); ``top`` is the value drawn brightest.

    A shared ``top`` (for instance the largest residual of the whole set) keeps heatmaps of
    different images comparable.
    """
    top = float(np.max(maps)) if top is None else float(top)
    scaled = np.clip(maps / top, 0.0, 1.0) if top > 0 else np.zeros_like(maps)
    position = scaled * (len(_HEAT_ANCHORS) - 1)
    low = np.floor(position).astype(np.int64).clip(0, len(_HEAT_ANCHORS) - 2)
    weight = (position - low)[..., None]
    colours = _HEAT_ANCHORS[low] * (1 - weight) + _HEAT_ANCHORS[low + 1] * weight
    return colours.round().astype(np.uint8)


def to_rgb8(images: np.ndarray) -> np.ndarray:
    """Images (..., C, H, W) in [0, 1], C 1 or 3 → uint8 RGB (..., H, W, 3)."""
    channels_last = np.moveaxis(images, -3, -1)
    if channels_last.shape[-1] == 1:
        channels_last = np.repeat(channels_last, 3, axis=-1)
    return (np.clip(channels_last, 0, 1) * 255).round().astype(np.uint8)


def triptych(original: np.ndarray, reconstruction: np.ndarray, residual_map: np.ndarray, top: float) -> np.ndarray:
    """real | reconstruction | residual heatmap side by side, uint8 (S, 3S + 4, 3)."""
    gap = np.full((original.shape[-1], 2, 3), 40, np.uint8)
    parts = [to_rgb8(original), gap, to_rgb8(reconstruction), gap, heatmap(residual_map, top)]
    return np.concatenate(parts, axis=1)


