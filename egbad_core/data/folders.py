"""Image folders in the MVTec AD layout (``train/good/``, ``test/<label>/``, ``ground_truth/``): what
they list, read whole or a chunk at a time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import EgbadError, first_line
from ..events import ProgressEvent, Task, stopped
from ..system.memory import available_bytes
from .decoding import DECODE_BATCH, IMAGE_SUFFIXES, decoded, to_gray
from .images import ImageSet, SkippedFile
from .masks import GROUND_TRUTH, read_masks
from .photos import common_shape, photo_block
from .region import ROI_NAME
from .sources import DataSource

NORMAL_FOLDER = "good"  # MVTec AD's name for defect-free images


CORRECTIONS_NAME = "corrections.csv"  # an inspector's marks, kept at the top of a data folder (run.corrections)
KEPT_BESIDE = (ROI_NAME, CORRECTIONS_NAME)  # files at the top of a folder that are not images to score
EXAMPLE_SIDE = 2048  # px: the longest side of the example a region is drawn over (a larger photo is shown reduced)


def training_folder(root: Path) -> Path:
    """``root/train/good``; raises EgbadError naming what is missing."""
    if not root.is_dir():
        raise EgbadError(f"{root} is not a folder.")
    if not any(root.iterdir()):
        raise EgbadError(f"{root} is empty; it needs train/good/ with images of good parts (MVTec AD layout).")
    good = root / "train" / NORMAL_FOLDER
    if not good.is_dir():
        raise EgbadError(f"{root} has no train/good folder; put images of good parts in {good}.")
    return good


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


@dataclass
class Listing:
    """The image files of a folder as listed when reading began (label, path), and the files left
    out already; what is read later is this list, whatever the folder holds by then."""

    files: list[tuple[str, Path]]
    root: Path
    folders: dict[str, Path]
    normal_labels: frozenset[str] | None
    skipped: list[SkippedFile]

    def changes(self) -> str | None:
        """A sentence naming files added to or removed from the folders since they were listed."""
        listed = {path for _, path in self.files}
        now = set()
        for label, folder in self.folders.items():
            try:
                now |= {path for _, path in list_folder({label: folder}, self.root, self.normal_labels).files}
            except OSError:  # a folder that went away: its files are gone
                pass
        added, removed = sorted(now - listed), sorted(listed - now)
        parts = []
        if added:
            parts.append(f"{len(added)} added (not scored; first {relative_path(added[0], self.root)})")
        if removed:
            parts.append(f"{len(removed)} removed (first {relative_path(removed[0], self.root)})")
        return f"The folder changed while it was read: {'; '.join(parts)}." if parts else None


def list_folder(folders: dict[str, Path], root: Path, normal_labels: frozenset[str] | None) -> Listing:
    """The image files under ``folders`` (label → folder); other files are named as skipped."""
    files: list[tuple[str, Path]] = []
    skipped: list[SkippedFile] = []
    for label, folder in folders.items():
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or path.is_dir() or (folder == root and path.name.lower() in KEPT_BESIDE):
                continue  # hidden files (.DS_Store), nested folders and the region of interest are not images
            if _is_image_name(path):
                files.append((label, path))
            else:
                skipped.append(SkippedFile(relative_path(path, root), "not an image file"))
    return Listing(files, root, dict(folders), normal_labels, skipped)


def scoring_listing(source: DataSource) -> Listing | None:
    """The files ``scoring_images_task`` would read from a folder source; None for CSV and demo
    sources (those are read whole). Raises EgbadError as that task does."""
    if source.kind != "folder":
        return None
    root = Path(source.path)
    test = root / "test"
    if test.is_dir():
        folders = {p.name: p for p in sorted(test.iterdir()) if p.is_dir() and not p.name.startswith(".")}
        if not folders:
            raise EgbadError(f"{test} has no label folders; put images in test/good/ and test/<defect>/.")
        return list_folder(folders, root, frozenset({NORMAL_FOLDER}))
    if any(_is_image_name(p) for p in root.iterdir() if p.is_file()):
        # A plain folder of images to inspect: nothing is known about their labels.
        return list_folder({"": root}, root, None)
    raise EgbadError(f"{root} has no test folder and no images to score (MVTec layout: test/<label>/*.png).")


MEMORY_HEADROOM = 2  # the images' bytes, twice over: a channel-reduced copy, and what the work holds beside them


def read_folder(listing: Listing, image_size: int, channels: int | None,
                 stop: threading.Event | None = None, scale: float = 0.0) -> Task[ImageSet | None]:
    """The listing's images in one block, resized to ``image_size`` square, or with ``scale`` at
    that share of their median own size (``photos``: in memory or a mapped cache file)."""
    root, normal_labels = listing.root, listing.normal_labels
    pixels: torch.Tensor | None = None
    kept: list[int] = []
    sizes: list[tuple[int, int]] = []
    skipped = list(listing.skipped)
    colour = False
    total = len(listing.files)
    shape, resized = common_shape([path for _, path in listing.files], scale) if scale else ((image_size, image_size), "")
    if not scale:
        check_fits(total, image_size, ", ".join(str(f) for f in listing.folders.values()))
    held = ""
    done = 0
    for index, array, original, problem in decoded(listing.files, image_size, shape=shape):
        if stopped(stop):
            return None
        done += 1
        if problem is not None:
            skipped.append(SkippedFile(relative_path(listing.files[index][1], root), problem))
        else:
            if pixels is None:  # one uint8 block for all: no list of arrays to stack (twice the memory)
                pixels, held = photo_block(total, 3, shape) if scale else (torch.empty((total, 3, *shape), dtype=torch.uint8), "")
            pixels[len(kept)] = torch.from_numpy(array)
            colour = colour or not (np.array_equal(array[0], array[1]) and np.array_equal(array[1], array[2]))
            kept.append(index)
            sizes.append(original)
        if done % DECODE_BATCH == 0 or done == total:
            yield ProgressEvent("loading", done, total)
    if pixels is None:
        where = ", ".join(str(f) for f in listing.folders.values())
        detail = f" ({len(skipped)} files skipped, first: {skipped[0]})" if skipped else ""
        raise EgbadError(f"{where} holds no readable image{detail}.")
    pixels = pixels[: len(kept)]
    wanted = channels if channels is not None else (3 if colour else 1)
    if wanted == 1:
        pixels, held = _gray(pixels, held) if scale else (to_gray(pixels), held)
    labels = [listing.files[i][0] for i in kept]
    ids = [relative_path(listing.files[i][1], root) for i in kept]
    images = ImageSet(pixels, labels, ids, normal_labels, str(root), skipped, sizes, held=held + resized, scale=scale)
    add_masks(images, root, shape)
    return images


def _gray(pixels: torch.Tensor, held: str) -> tuple[torch.Tensor, str]:
    """Photos turned gray into a block of their own (in memory or mapped, as it fits), a few at a time."""
    gray, held = photo_block(pixels.shape[0], 1, tuple(pixels.shape[-2:]))
    for start in range(0, pixels.shape[0], DECODE_BATCH):
        gray[start : start + DECODE_BATCH] = to_gray(pixels[start : start + DECODE_BATCH])
    return gray, held


def check_fits(count: int, image_size: int, where: str, free: int | None = None) -> None:
    """Raises EgbadError, with the working size that would fit, where keeping ``count`` images at
    ``image_size`` (and what training and scoring hold beside them) would not fit in free memory."""
    free = available_bytes() if free is None else free
    if free is None or not count:
        return
    need = lambda side: count * 3 * side * side * MEMORY_HEADROOM  # noqa: E731
    if need(image_size) <= free:
        return
    fits = image_size
    while fits > 16 and need(fits) > free:
        fits //= 2
    size = lambda b: f"{b / 2**30:.1f} GB"  # noqa: E731
    advice = (f"a working size of {fits} px fits, or fewer images"
              if need(fits) <= free else "fewer images would")
    raise EgbadError(f"Keeping the {count:,} images of {where} at {image_size}×{image_size} px needs about "
                     f"{size(need(image_size))} of memory and {size(free)} is free; {advice}.")


def add_masks(images: ImageSet, root: Path, image_size: int | tuple[int, int]) -> None:
    if images.normal_labels is not None and (root / GROUND_TRUTH).is_dir():
        images.masks, images.mask_known, images.mask_notes = read_masks(
            root, images.labels, images.ids, image_size, images.sizes, NORMAL_FOLDER)


def image_chunks(listing: Listing, image_size: int, channels: int, chunk: int,
                 stop: threading.Event | None = None, scale: float = 0.0) -> Iterator[ImageSet]:
    """The listing's images ``chunk`` at a time, decoded ahead by workers while the caller works
    on the last chunk: the memory of one chunk, whatever the folder's size. Files that cannot be
    read are in each chunk's ``skipped``. With ``scale`` each photo is kept at that share of its own
    size, a chunk of one photo (photos differ in size)."""
    labels, ids, sizes, arrays, skipped = [], [], [], [], []
    chunk = 1 if scale else chunk

    def emit() -> ImageSet:
        stacked = torch.from_numpy(np.stack(arrays)) if arrays else torch.empty((0, 3, image_size, image_size), dtype=torch.uint8)
        pixels = to_gray(stacked) if channels == 1 else stacked
        images = ImageSet(pixels, list(labels), list(ids), listing.normal_labels, str(listing.root), list(skipped),
                          list(sizes), scale=scale)
        add_masks(images, listing.root, tuple(stacked.shape[-2:]) if scale else image_size)
        for part in (labels, ids, sizes, arrays, skipped):
            part.clear()
        return images

    for index, array, original, problem in decoded(listing.files, image_size, shape=scale or None):
        if stopped(stop):
            return
        label, path = listing.files[index]
        if problem is not None:
            skipped.append(SkippedFile(relative_path(path, listing.root), problem))
        else:
            labels.append(label)
            ids.append(relative_path(path, listing.root))
            sizes.append(original)
            arrays.append(array)
        if len(arrays) + len(skipped) >= chunk:
            yield emit()
    if arrays or skipped:
        yield emit()


def example_picture(source: DataSource) -> tuple[np.ndarray, Path]:
    """(H, W, 3) uint8 RGB of the folder's first training image to draw a region over, its longer
    side at most EXAMPLE_SIDE, and its path. Raises EgbadError where there is none to show."""
    if source.kind != "folder":
        raise EgbadError("a region of interest is drawn over a folder's photos; this data is not a folder.")
    folder = training_folder(Path(source.path))
    files = sorted(p for p in folder.rglob("*") if _is_image_name(p))
    if not files:
        raise EgbadError(f"{folder} holds no image to draw a region of interest over.")
    try:
        with Image.open(files[0]) as image:
            image.draft("RGB", (EXAMPLE_SIDE, EXAMPLE_SIDE))
            picture = image.convert("RGB")
            if max(picture.size) > EXAMPLE_SIDE:
                picture.thumbnail((EXAMPLE_SIDE, EXAMPLE_SIDE), Image.Resampling.BILINEAR)
            return np.asarray(picture, dtype=np.uint8), files[0]
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise EgbadError(f"{files[0]} cannot be shown to draw a region over ({first_line(error)}).") from None


def relative_path(path: Path, root: Path) -> str:
    """``path`` as an image id: relative to ``root`` where it lies under it."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
