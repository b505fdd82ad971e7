"""What a scoring run leaves behind: a result grid PNG, a scores CSV and a summary JSON.

Writes are atomic, like checkpoints: an export is either complete or absent.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from .checkpoints import atomic_write, ensure_writable_folder
from .data import IMAGE_SUFFIXES, decode_image
from .errors import EgbadError
from .detection import Detection
from .pictures import RED, TILE, overlay, to_rgb8, triptych

GRID_IMAGES = 500  # the result grid shows the most anomalous images, this many at most


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def render_grid(detection: Detection, only_flagged: bool = False, max_images: int = GRID_IMAGES) -> Image.Image:
    """The result grid: per image real | reconstruction | heatmap and its score; flagged in red.

    Images come most anomalous first, so a cut at ``max_images`` drops the least interesting.
    """
    scores = detection.scores
    order = np.argsort(-scores.score, kind="stable")
    if only_flagged:
        order = order[detection.flagged[order]]
    order = order[:max_images]
    pictures = detection.pictures(order)
    if pictures is None and len(order):
        raise ValueError("the scores were computed without keeping reconstructions")
    size = detection.images.image_size
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
    low, top = detection.map_range()
    low = low if scores.local else None  # a local model's map: overlaid on the image
    relative = detection.relative()
    if not len(order):
        draw.text((pad, pad), "no image is flagged", fill=(0, 0, 0), font=font)
    for cell, index in enumerate(order):
        x0, y0 = (cell % columns) * cell_w, (cell // columns) * cell_h
        tile = triptych(detection.images.unit(index), pictures[0][cell], pictures[1][cell], top, low)
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
    """The result grid PNG, written atomically; raises EgbadError for a folder path."""
    path = _checked(path)
    image = render_grid(detection, only_flagged)
    atomic_write(path, lambda stream: image.save(stream, format="PNG"))
    return path


def scores_frame(detection: Detection) -> pd.DataFrame:
    """One row per image: id, label, the terms, the score, its flag and its worst place."""
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
    places = detection.worst_places()
    if places is not None:  # where to look: the worst place, in the image file's own pixels
        frame["worst_row"], frame["worst_col"] = places[:, 0], places[:, 1]
    return frame


def write_scores_csv(path: str | Path, detection: Detection) -> Path:
    """``scores_frame`` as CSV, written atomically."""
    path = _checked(path)
    frame = scores_frame(detection)
    atomic_write(path, lambda stream: stream.write(frame.to_csv(index=False).encode("utf-8")))
    return path


def write_maps(folder: str | Path, detection: Detection) -> Path:
    """One ``<name>.png`` overlay and one ``<name>.npy`` raw map per image, at the image's own size."""
    folder = ensure_writable_folder(folder)
    scores, images = detection.scores, detection.images
    if scores.residual_maps is None:
        raise ValueError("the scores were computed without keeping maps")
    low, high = detection.map_range()
    root = Path(images.source)
    for index, image_id in enumerate(images.ids):
        anomaly_map = scores.residual_maps[index].astype(np.float32)
        if images.sizes is not None:
            height, width = images.sizes[index]
            picture = decode_image(root / image_id, 0, (height, width))[0].transpose(1, 2, 0) if (root / image_id).is_file() else None
            anomaly_map = np.asarray(Image.fromarray(anomaly_map, mode="F").resize((width, height), Image.Resampling.BILINEAR))
        else:
            picture = None
        if picture is None:
            picture = to_rgb8(images.unit(index))
            picture = np.asarray(Image.fromarray(picture).resize(anomaly_map.shape[::-1], Image.Resampling.BILINEAR))
        name = _safe_name(image_id)
        drawn = overlay(picture, anomaly_map, low, high)
        atomic_write(folder / f"{name}.png", lambda stream: Image.fromarray(drawn).save(stream, format="PNG"))
        atomic_write(folder / f"{name}.npy", lambda stream: np.save(stream, anomaly_map))
    return folder


def _safe_name(image_id: str) -> str:
    """``test/crack/003.png`` → ``test_crack_003``, ``digits.csv#row7`` → ``digits.csv_row7``: one
    flat folder of maps, names still unique."""
    path = Path(image_id)
    stem = str(path.with_suffix("")) if path.suffix.lower() in IMAGE_SUFFIXES else image_id
    return "".join(c if c.isalnum() or c in "-." else "_" for c in stem.replace("#", "_"))


def write_summary(path: str | Path, summary: dict[str, Any]) -> Path:
    """The summary dict as indented JSON, written atomically."""
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
