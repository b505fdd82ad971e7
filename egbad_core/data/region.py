"""A region of interest: the part of every image that is inspected.

A photo of a part in a fixture shows the fixture, the bench and the background too; a scratch on
the bench is no defect of the part. A mask image (white: inspected, black: not), ``roi.png`` at
the top of a data folder or one named by the user, limits the anomaly map and the image score to
the white pixels: a place outside never flags. It is drawn once over one example photo (in the
window: ``folders.example_picture``, then ``polygon_region`` and ``save_region``), so it is resized
(nearest neighbour) to each image it is laid over, and that is said.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from ..errors import EgbadError, first_line
from ..system.files import atomic_write
from .sources import DataSource

ROI_NAME = "roi.png"  # a folder's own region of interest, beside train/ and test/
EMPTY_DRAWING = "the region drawn encloses no part of the image: draw around the part to inspect."


@dataclass(frozen=True)
class Region:
    """A region of interest as drawn: which pixels are inspected, at the mask file's own size."""

    path: Path
    inside: np.ndarray  # (H, W) bool
    _sized: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def share(self) -> float:
        return float(self.inside.mean())

    def at(self, shape: tuple[int, int]) -> np.ndarray:
        """The region laid over an image of ``shape`` (height, width), resized where it differs."""
        shape = (int(shape[0]), int(shape[1]))
        if shape == self.inside.shape:
            return self.inside
        if shape not in self._sized:
            resized = Image.fromarray(self.inside).resize(shape[::-1], Image.Resampling.NEAREST)
            self._sized.clear()  # one size at a time is what a run lays it over, mostly
            self._sized[shape] = np.array(resized, dtype=bool)
        return self._sized[shape]

    def describe(self, shapes: list[tuple[int, int]] = ()) -> str:
        """A sentence for the user: which file, how much of the image, and whether it was resized to
        the images' ``shapes`` (height, width)."""
        height, width = self.inside.shape
        said = f"{self.path.name} ({width}×{height}) marks {self.share:.0%} of each image as the part inspected"
        other = next((tuple(shape) for shape in shapes if tuple(shape) != self.inside.shape), None)
        if other is not None:
            said += f"; resized to the images' own size ({other[1]}×{other[0]}) as it was laid over them"
        return said


def read_region(path: str | Path) -> Region:
    """The region of interest in a mask image (white, or any pixel above half its range: inspected).
    Raises EgbadError naming the file where it cannot be read or marks nothing."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            values = np.asarray(image.convert("L"), dtype=np.float32)
    except FileNotFoundError:
        raise EgbadError(f"{path} does not exist: a region of interest is a black-and-white image of the part.") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise EgbadError(f"{path} cannot be read as a region of interest ({first_line(error)}).") from None
    low, high = float(values.min()), float(values.max())
    inside = values > ((low + high) / 2 if high > low else 127.5)
    if not inside.any():
        raise EgbadError(f"{path} marks no pixel as the part: a region of interest is white where the part is "
                         "inspected and black elsewhere, and an empty one would inspect nothing.")
    return Region(path, inside)


def folder_region(source: DataSource) -> Region | None:
    """A folder's own ``roi.png`` (beside train/ and test/), or None where it has none."""
    if source.kind != "folder":
        return None
    path = Path(source.path) / ROI_NAME
    return read_region(path) if path.is_file() else None


def polygon_region(points: list[tuple[float, float]], shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the pixels inside a polygon of (x, y) points drawn over an image of ``shape``
    (height, width), its edge included. Raises EgbadError for one that encloses no pixel."""
    mask = Image.new("L", (int(shape[1]), int(shape[0])), 0)
    if len(points) >= 3:
        ImageDraw.Draw(mask).polygon([(float(x), float(y)) for x, y in points], fill=255, outline=255)
    inside = np.asarray(mask) > 0
    if len(points) < 3 or not inside.any():
        raise EgbadError(EMPTY_DRAWING)
    return inside


def save_region(source: DataSource, inside: np.ndarray) -> Region:
    """Write ``inside`` as the folder's own ``roi.png`` (atomically: a region half written is never
    read), which every later scoring of the folder keeps to; the region as read back."""
    if source.kind != "folder":
        raise EgbadError("a region of interest is kept beside a folder's photos; this data is not a folder.")
    if not inside.any():
        raise EgbadError(EMPTY_DRAWING)
    path = Path(source.path) / ROI_NAME
    picture = Image.fromarray(np.where(inside, 255, 0).astype(np.uint8))
    atomic_write(path, lambda stream: picture.save(stream, format="PNG"))
    return read_region(path)


def remove_region(source: DataSource) -> bool:
    """Remove the folder's own ``roi.png``, so that whole images are inspected again; whether there was one."""
    path = Path(source.path) / ROI_NAME if source.kind == "folder" else None
    if path is None or not path.is_file():
        return False
    path.unlink()
    return True
