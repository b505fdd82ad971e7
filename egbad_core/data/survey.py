"""A first look at a folder of images: how large they are and whether they line up, for the
automatic preset choice."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EgbadError
from .decoding import IMAGE_SUFFIXES, decode_image, header_size
from .folders import training_folder

SURVEY_SIZE = 64  # the side images are looked at when the preset is chosen
DETAIL_SIGMA = 4.0  # σ, at SURVEY_SIZE, of the blur taken away before alignment is measured


@dataclass(frozen=True)
class Survey:
    """What the automatic choice knows of a training folder."""

    side: int  # the median shorter side, in pixels
    alignment: float  # share of the images' detail their mean image keeps (see ``alignment``)
    sides: dict[str, int]  # each readable training image's shorter side, by file name

    @property
    def smallest(self) -> int:
        return min(self.sides.values(), default=self.side)

    @property
    def largest(self) -> int:
        return max(self.sides.values(), default=self.side)

    def smaller_than(self, side: int) -> list[str]:
        """The training images whose shorter side is under ``side``, smallest first."""
        return sorted((name for name, s in self.sides.items() if s < side), key=lambda name: self.sides[name])


def _blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """A separable Gaussian blur of (N, H, W) images, edges repeated."""
    radius = int(3 * sigma)
    steps = np.arange(-radius, radius + 1)
    kernel = np.exp(-steps**2 / (2 * sigma * sigma))
    kernel /= kernel.sum()
    for axis in (1, 2):
        padded = np.pad(images, [(radius, radius) if a == axis else (0, 0) for a in range(3)], mode="edge")
        images = sum(w * np.take(padded, np.arange(i, i + images.shape[axis]), axis=axis) for i, w in enumerate(kernel))
    return images


def alignment(images: np.ndarray) -> float:
    """The share of (N, H, W) images' detail that their mean image keeps: near 1/N for random crops
    of a texture, most of it for one part photographed in a fixture. Measured on the detail, each
    image less its blur, so that a photograph's shading (a gradient the crops of one photo share)
    does not pass for alignment: one surface's crops kept 16% of their plain variation, 2% of their
    detail; the tuning half's aligned parts keep 60–77% of it, its textures 1.5–2%."""
    detail = images - _blur(images, DETAIL_SIGMA)
    spread = float(detail.var(axis=(1, 2)).mean())
    return float(detail.mean(axis=0).var()) / spread if spread > 0 else 1.0


def survey_folder(root: str | Path, count: int = 64) -> Survey:
    """The sides of every training image (their headers) and the alignment of up to ``count`` of them."""
    files = sorted(p for p in training_folder(Path(root)).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    sides = {p.name: min(size) for p in files if (size := header_size(p)) is not None}
    arrays = []
    for path in files[:count]:
        try:
            array, _ = decode_image(path, SURVEY_SIZE)
        except EgbadError:
            continue
        arrays.append(array.mean(axis=0) / 255.0)
    side = int(np.median(list(sides.values()))) if sides else 0
    return Survey(side, alignment(np.stack(arrays)) if len(arrays) >= 2 else 1.0, sides)
