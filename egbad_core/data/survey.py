"""A first look at a folder of images: how large they are and whether they line up, for the
automatic preset choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import EgbadError
from .decoding import IMAGE_SUFFIXES, decode_image
from .folders import training_folder

SURVEY_SIZE = 64  # the side images are looked at when the preset is chosen


def survey_folder(root: str | Path, count: int = 64) -> tuple[int, float]:
    """(median side in pixels, alignment) of up to ``count`` training images. Alignment is the share
    of the images' pixel variation that their mean image keeps: near 1/count for random crops of a
    texture, a large share for aligned parts."""
    files = sorted(p for p in training_folder(Path(root)).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    arrays, sides = [], []
    for path in files[:count]:
        try:
            array, (height, width) = decode_image(path, SURVEY_SIZE)
        except EgbadError:
            continue
        arrays.append(array.mean(axis=0) / 255.0)
        sides.append(min(height, width))
    if len(arrays) < 2:
        return (int(np.median(sides)) if sides else 0), 1.0
    stack = np.stack(arrays)
    spread = float(stack.var(axis=(1, 2)).mean())
    kept = float(stack.mean(axis=0).var())
    return int(np.median(sides)), (kept / spread if spread > 0 else 1.0)
