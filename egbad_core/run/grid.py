"""The result grid: the most anomalous images, each as real | reconstruction | map with its score."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..pictures import RED, TILE, triptych
from ..system.files import atomic_write
from .detection import Detection
from .results import checked_file

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
        shown = f"{relative[index]:.2f}x p99" if relative is not None else f"{scores.score[index]:.1f}"
        text = f"{label + '  ' if label else ''}score {shown}"
        detail = f"R {scores.residual[index]:.0f}  Dis {scores.discrimination[index]:.0f}"
        colour = RED if flagged else (0, 0, 0)
        draw.text((x0 + pad, y0 + pad + tile_h + 2), text, fill=colour, font=font)
        draw.text((x0 + pad, y0 + pad + tile_h + 15), detail, fill=(90, 90, 90), font=font)
    return grid


def write_grid(path: str | Path, detection: Detection, only_flagged: bool = False) -> Path:
    """The result grid PNG, written atomically; raises EgbadError for a folder path."""
    path = checked_file(path)
    image = render_grid(detection, only_flagged)
    # zlib's fastest level: a grid of 500 images took 0.7 s to encode at the default, 0.15 s at 1, and
    # a picture of flat-coloured tiles compresses nearly as well either way.
    atomic_write(path, lambda stream: image.save(stream, format="PNG", compress_level=1))
    return path
