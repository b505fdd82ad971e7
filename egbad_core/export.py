"""What a scoring run leaves behind: a result grid PNG, a scores CSV and a summary JSON.

Also the pictures both faces share: the residual heatmap colouring and image tiles as
uint8 arrays, so the GUI draws exactly what the export writes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from .checkpoints import atomic_write
from .errors import EgbadError
from .detection import Detection

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


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def render_grid(detection: Detection, only_flagged: bool = False, max_images: int = 2000) -> Image.Image:
    """The result grid: per image real | reconstruction | heatmap and its score; flagged in red.

    Images come most anomalous first, so a cut at ``max_images`` drops the least interesting.
    """
    scores = detection.scores
    if scores.reconstructions is None or scores.residual_maps is None:
        raise ValueError("the scores were computed without keeping reconstructions")
    order = np.argsort(-scores.score, kind="stable")
    if only_flagged:
        order = order[detection.flagged[order]]
    order = order[:max_images]
    pixels = detection.images.pixels.numpy()
    size = pixels.shape[-1]
    scale = max(1, math.ceil(TILE / size))
    tile_w, tile_h = (3 * size + 4) * scale, size * scale
    caption = 30
    pad = 6
    cell_w, cell_h = tile_w + 2 * pad, tile_h + caption + 2 * pad
    count = max(len(order), 1)
    columns = max(1, min(count, round(math.sqrt(count * cell_h / cell_w * 1.6))))
    rows = math.ceil(count / columns)
    grid = Image.new("RGB", (columns * cell_w, rows * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    font = _font(11)
    top = float(np.percentile(scores.residual_maps, 99.9)) if len(order) else 1.0
    relative = detection.relative()
    if not len(order):
        draw.text((pad, pad), "no image is flagged", fill=(0, 0, 0), font=font)
    for cell, index in enumerate(order):
        x0, y0 = (cell % columns) * cell_w, (cell // columns) * cell_h
        tile = triptych(pixels[index], scores.reconstructions[index], scores.residual_maps[index], top)
        picture = Image.fromarray(tile).resize((tile_w, tile_h), Image.Resampling.NEAREST)
        grid.paste(picture, (x0 + pad, y0 + pad))
        flagged = bool(detection.flagged[index])
        if flagged:
            draw.rectangle([x0 + 2, y0 + 2, x0 + cell_w - 3, y0 + cell_h - 3], outline=RED, width=3)
        label = detection.images.labels[index]
        shown = f"{relative[index]:.2f}×p99" if relative is not None else f"{scores.score[index]:.1f}"
        text = f"{label + '  ' if label else ''}score {shown}"
        detail = f"R {scores.residual[index]:.0f}  Dis {scores.discrimination[index]:.0f}"
        colour = RED if flagged else (0, 0, 0)
        draw.text((x0 + pad, y0 + pad + tile_h + 2), text, fill=colour, font=font)
        draw.text((x0 + pad, y0 + pad + tile_h + 15), detail, fill=(90, 90, 90), font=font)
    return grid


def write_grid(path: str | Path, detection: Detection, only_flagged: bool = False) -> Path:
    path = _checked(path)
    image = render_grid(detection, only_flagged)
    atomic_write(path, lambda stream: image.save(stream, format="PNG"))
    return path


def scores_frame(detection: Detection) -> pd.DataFrame:
    scores = detection.scores
    frame = pd.DataFrame(
        {
            "id": detection.images.ids,
            "label": detection.images.labels,
            "residual": scores.residual,
            "discrimination": scores.discrimination,
            "score": scores.score,
            "relative_score": detection.relative() if detection.train_stats else np.nan,
            "flagged": detection.flagged,
        }
    )
    truth = detection.images.is_defect
    if truth is not None:
        frame.insert(2, "is_defect", truth)
    return frame


def write_scores_csv(path: str | Path, detection: Detection) -> Path:
    path = _checked(path)
    frame = scores_frame(detection)
    atomic_write(path, lambda stream: stream.write(frame.to_csv(index=False).encode("utf-8")))
    return path


def write_summary(path: str | Path, summary: dict[str, Any]) -> Path:
    path = _checked(path)
    text = json.dumps(summary, indent=2, default=_json_default)
    atomic_write(path, lambda stream: stream.write(text.encode("utf-8")))
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _checked(path: str | Path) -> Path:
    path = Path(path)
    if path.exists() and path.is_dir():
        raise EgbadError(f"{path} is a folder; give a file name to write.")
    return path
