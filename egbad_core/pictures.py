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


def triptych(original: np.ndarray, reconstruction: np.ndarray, residual_map: np.ndarray, top: float,
             low: float | None = None) -> np.ndarray:
    """real | reconstruction | map side by side, uint8 (S, 3S + 4, 3). The map is a heatmap from 0
    to ``top``, or with ``low`` given (a local model's anomaly map) overlaid on the image from
    ``low`` (clear) to ``top`` (full colour)."""
    gap = np.full((original.shape[-1], 2, 3), 40, np.uint8)
    real = to_rgb8(original)
    drawn = heatmap(residual_map, top) if low is None else overlay(real, residual_map, low, top)
    parts = [real, gap, to_rgb8(reconstruction), gap, drawn]
    return np.concatenate(parts, axis=1)




def overlay(image: np.ndarray, anomaly_map: np.ndarray, low: float, high: float, opacity: float = 0.6) -> np.ndarray:
    """The heat map laid over an image, uint8 (H, W, 3): clear where the map is at or below ``low``
    (what normal places reach), fully coloured from ``high`` up. Both in the score's units.

    ``image`` is uint8 (H, W, 3) and ``anomaly_map`` (H, W) at the same resolution."""
    span = max(high - low, 1e-9)
    weight = np.clip((anomaly_map - low) / span, 0.0, 1.0)
    colours = heatmap(weight, 1.0).astype(np.float32)
    alpha = (opacity * np.sqrt(weight))[..., None]
    return (image.astype(np.float32) * (1 - alpha) + colours * alpha).round().astype(np.uint8)


def overlay_rgba(anomaly_map: np.ndarray, low: float, high: float, opacity: float = 0.6) -> np.ndarray:
    """The heat map alone as uint8 RGBA (h, w, 4), to lay over a photo of another resolution: clear
    at or below ``low``, as ``overlay`` draws it."""
    weight = np.clip((anomaly_map.astype(np.float32) - low) / max(high - low, 1e-9), 0.0, 1.0)
    alpha = (255 * opacity * np.sqrt(weight)).round().astype(np.uint8)
    return np.concatenate([heatmap(weight, 1.0), alpha[..., None]], axis=-1)


def outside_shade(inside: np.ndarray, opacity: float = 0.55) -> np.ndarray:
    """uint8 RGBA (H, W, 4): grey over what a region of interest leaves out, clear over the part."""
    shade = np.zeros((*inside.shape, 4), np.uint8)
    shade[..., :3] = 30
    shade[..., 3] = np.where(inside, 0, round(255 * opacity))
    return shade


def colour_bar(height: int = 200, width: int = 14) -> np.ndarray:
    """A vertical bar of the heat map's colours, the brightest at the top, uint8 (height, width, 3);
    the values at its ends are the caller's to write beside it."""
    ramp = np.linspace(1.0, 0.0, height)[:, None].repeat(width, axis=1)
    return heatmap(ramp, 1.0)
