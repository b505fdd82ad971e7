"""Training and test images from three sources behind one interface.

Every source is decoded and resized to the model's size once, when it is loaded; training and
scoring then only slice tensors. Folder images are held as uint8 (a quarter of float32's memory)
and decoded by ``torch.utils.data.DataLoader`` workers when there are many; a folder can also be
read in chunks (``image_chunks``) so that scoring a large one holds one chunk at a time. Loading
is a task in the sense of ``events`` (ProgressEvents, a stop honoured between batches). Sources:

* ``demo``: the seed's MNIST task shipped in ``resources/`` (7s and 8s normal, 2s defects);
* an MNIST-style CSV (a ``label`` column and 28×28 pixel columns, values 0–255);
* an image folder in the MVTec AD layout (``train/good/``, ``test/<label>/``).
"""

from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
import threading
from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from PIL import Image, UnidentifiedImageError
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from .errors import EgbadError
from .events import ProgressEvent, Task, run_to_end, stopped
from .masks import GROUND_TRUTH, read_masks

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
NORMAL_FOLDER = "good"  # MVTec AD's name for defect-free images

DEMO_NORMAL_LABELS = ("7", "8")
DEMO_TEST_LABELS = ("2", "7", "8")
WORKERS_FROM = 64  # files; fewer decode sooner on this thread than worker processes start
MAX_WORKERS = 8
DECODE_BATCH = 8  # files per worker batch: a dead worker's files are retried one by one


@dataclass(frozen=True)
class SkippedFile:
    """An input file that was left out, and why, so the user is told rather than surprised."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class ImageSet:
    """Images ready for the networks, with what is known about each."""

    pixels: torch.Tensor  # (N, C, S, S): uint8 0–255 (image folders) or float32 in [0, 1] (CSV)
    labels: list[str]  # per image: the CSV label or the folder name; "" where unknown
    ids: list[str]  # per image: file path or "file#row"
    normal_labels: frozenset[str] | None  # labels that count as normal; None where unknown
    source: str  # what was loaded, for messages and the status bar
    skipped: list[SkippedFile] = field(default_factory=list)
    sizes: list[tuple[int, int]] | None = None  # per image: its file's own (height, width); None for CSVs
    masks: np.ndarray | None = None  # (N, S, S) bool defect masks (MVTec ground_truth/); None where there are none
    mask_known: np.ndarray | None = None  # (N,) bool: the image's mask is known (a good image's is empty)
    mask_notes: list[str] = field(default_factory=list)  # what was done to the masks, in sentences

    def __len__(self) -> int:
        return self.pixels.shape[0]

    @property
    def channels(self) -> int:
        return self.pixels.shape[1]

    @property
    def image_size(self) -> int:
        return self.pixels.shape[-1]

    @property
    def is_defect(self) -> np.ndarray | None:
        """Boolean per image (True = defect), or None when the labels say nothing."""
        if self.normal_labels is None or not all(self.labels):
            return None
        return np.array([label not in self.normal_labels for label in self.labels], dtype=bool)

    def label_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.labels).items()))

    def unit(self, index: int | slice) -> np.ndarray:
        """Image(s) as float32 in [0, 1], for drawing."""
        return as_unit(self.pixels[index]).numpy()

    def subset(self, rows: np.ndarray | list[int] | slice) -> "ImageSet":
        """The images at ``rows``, with what is known about each."""
        index = np.arange(len(self))[rows] if isinstance(rows, slice) else np.asarray(rows, dtype=np.int64)
        chosen = torch.from_numpy(index)
        pick = lambda values: None if values is None else [values[i] for i in index]  # noqa: E731
        return ImageSet(
            self.pixels[chosen], pick(self.labels), pick(self.ids), self.normal_labels, self.source,
            list(self.skipped), pick(self.sizes),
            None if self.masks is None else self.masks[index],
            None if self.mask_known is None else self.mask_known[index], list(self.mask_notes),
        )

    def describe(self) -> str:
        counts = ", ".join(f"{label or '?'}: {n}" for label, n in self.label_counts().items())
        return f"{len(self)} images {self.image_size}×{self.image_size}×{self.channels} ({counts})"


@dataclass(frozen=True)
class DataSource:
    """Where the images come from and which labels matter; cheap to make, loaded on demand."""

    kind: str  # "demo", "csv" or "folder"
    path: str | None = None
    test_path: str | None = None  # CSV only: a separate test file
    normal_labels: tuple[str, ...] | None = None  # CSV: labels of the good images
    test_labels: tuple[str, ...] | None = None  # CSV: labels to score; None = all

    @classmethod
    def parse(
        cls,
        data: str,
        test_data: str | None = None,
        normal_labels: str | tuple[str, ...] | None = None,
        test_labels: str | tuple[str, ...] | None = None,
    ) -> "DataSource":
        """Make a source from what a user typed: ``demo``, a CSV file or a folder."""
        normal = parse_labels(normal_labels)
        tests = parse_labels(test_labels)
        if data == "demo":
            return cls("demo", normal_labels=normal or DEMO_NORMAL_LABELS, test_labels=tests or DEMO_TEST_LABELS)
        path = Path(data)
        if not path.exists():
            raise EgbadError(f"{data} does not exist.")
        if test_data is not None and not Path(test_data).is_file():
            raise EgbadError(f"{test_data} does not exist or is not a file.")
        if path.is_dir():
            return cls("folder", str(path), test_data, normal, tests)
        return cls("csv", str(path), test_data, normal, tests)

    def describe(self) -> str:
        if self.kind == "demo":
            return "demo (MNIST 7s and 8s normal, 2s defects)"
        return f"{self.kind} {self.path}"

    def with_normal_labels(self, labels: tuple[str, ...] | None) -> "DataSource":
        """The same source with the normal labels filled in, if it had none (from a checkpoint)."""
        if self.normal_labels or not labels:
            return self
        return replace(self, normal_labels=tuple(labels))


def as_unit(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 0–255 or float [0, 1] pixels → float32 in [0, 1]."""
    return pixels.float().div_(255.0) if pixels.dtype == torch.uint8 else pixels.float()


def parse_labels(labels: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...] | None:
    """``"7, 8"`` → ``("7", "8")``; labels are compared as text, ``7.0`` being ``7``."""
    if labels is None:
        return None
    items = labels.split(",") if isinstance(labels, str) else list(labels)
    cleaned = tuple(_label_text(item.strip()) for item in items if str(item).strip())
    return cleaned or None


def _label_text(value: object) -> str:
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


# ----------------------------------------------------------------------------------------
# The one interface


def training_images_task(
    source: DataSource, image_size: int, channels: int | None = None, stop: threading.Event | None = None
) -> Task[ImageSet | None]:
    """The normal images to train on, resized to ``image_size``, as a task (None if stopped).

    ``channels`` None lets the data decide (3 only if some image has colour). Raises EgbadError
    naming the file or folder where the data cannot be used."""
    if source.kind == "demo":
        return _read_csv(_demo_file("train"), image_size, channels, source.normal_labels, source.normal_labels)
    if source.kind == "csv":
        return _read_csv(Path(source.path), image_size, channels, source.normal_labels, source.normal_labels)
    root = Path(source.path)
    listing = list_folder({NORMAL_FOLDER: training_folder(root)}, root, frozenset({NORMAL_FOLDER}))
    return (yield from _read_folder(listing, image_size, channels, stop))


def scoring_images_task(
    source: DataSource, image_size: int, channels: int | None = None, stop: threading.Event | None = None
) -> Task[ImageSet | None]:
    """The images to score, with their labels where the source has them, as a task (None if stopped)."""
    if source.kind == "demo":
        return _read_csv(_demo_file("test"), image_size, channels, source.test_labels, source.normal_labels)
    if source.kind == "csv":
        path = Path(source.test_path or source.path)
        return _read_csv(path, image_size, channels, source.test_labels, source.normal_labels)
    return (yield from _read_folder(scoring_listing(source), image_size, channels, stop))


def load_training_set(source: DataSource, image_size: int, channels: int | None = None) -> ImageSet:
    """``training_images_task`` run to its end on this thread."""
    return run_to_end(training_images_task(source, image_size, channels))


def load_test_set(source: DataSource, image_size: int, channels: int | None = None) -> ImageSet:
    """``scoring_images_task`` run to its end on this thread."""
    return run_to_end(scoring_images_task(source, image_size, channels))


def _demo_file(split: str) -> Path:
    return Path(str(resources.files("egbad_resources") / f"demo_{split}.csv.gz"))


# ----------------------------------------------------------------------------------------
# CSV


def _read_csv(
    path: Path,
    image_size: int,
    channels: int | None,
    keep_labels: tuple[str, ...] | None,
    normal_labels: tuple[str, ...] | None,
) -> ImageSet:
    if not path.is_file():
        raise EgbadError(f"{path} does not exist or is not a file.")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise EgbadError(f"{path} is empty.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as error:
        raise EgbadError(f"{path} is not a readable CSV file ({_first_line(error)}).") from None
    if "label" not in frame.columns:
        raise EgbadError(f"{path} has no 'label' column; an MNIST-style CSV has a label column and 784 pixel columns.")
    pixel_columns = [c for c in frame.columns if c != "label"]
    side = math.isqrt(len(pixel_columns))
    if side * side != len(pixel_columns) or side == 0:
        raise EgbadError(
            f"{path} has {len(pixel_columns)} pixel columns; an MNIST-style CSV has a label column and "
            "784 (28×28) pixel columns, or another square number."
        )
    if frame.empty:
        raise EgbadError(f"{path} has a header but no rows.")
    if frame["label"].isna().any():
        row = int(np.flatnonzero(frame["label"].isna().to_numpy())[0])
        raise EgbadError(f"{path} has no label on data row {row + 1}.")
    labels = [_label_text(v) for v in frame["label"].tolist()]
    rows = np.arange(len(frame))
    if keep_labels:
        missing = [label for label in keep_labels if label not in set(labels)]
        if missing:
            held = ", ".join(sorted(set(labels), key=_label_sort_key))
            raise EgbadError(f"{path} holds no rows labelled {', '.join(missing)} (it holds {held}).")
        wanted = set(keep_labels)
        rows = np.array([i for i, label in enumerate(labels) if label in wanted], dtype=np.int64)
    values = _numeric_pixels(frame[pixel_columns].iloc[rows], path, rows, pixel_columns)
    if values.min() < 0 or values.max() > 255:
        raise EgbadError(f"{path} has pixel values outside 0–255.")
    images = torch.from_numpy(values.reshape(-1, 1, side, side) / np.float32(255.0))
    pixels = _resize_tensor(images, image_size)
    if channels == 3:
        pixels = pixels.repeat(1, 3, 1, 1)
    return ImageSet(
        pixels=pixels,
        labels=[labels[i] for i in rows],
        ids=[f"{path.name}#row{i + 1}" for i in rows],
        normal_labels=frozenset(normal_labels) if normal_labels else None,
        source=str(path),
    )


def _numeric_pixels(frame: pd.DataFrame, path: Path, rows: np.ndarray, columns: list[str]) -> np.ndarray:
    """Pixel values as float32, or a message naming the first cell that is not a number."""
    if not all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes):
        frame = frame.apply(pd.to_numeric, errors="coerce")
    values = frame.to_numpy(dtype=np.float32)
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        r, c = bad[0]
        raise EgbadError(
            f"{path} has a missing or non-numeric pixel on data row {rows[r] + 1}, column {columns[c]!r}."
        )
    return values


def _label_sort_key(label: str) -> tuple[int, float | str]:
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _resize_tensor(images: torch.Tensor, size: int, chunk: int = 1024) -> torch.Tensor:
    """Bicubic resize as the seed, in chunks so a large file does not double the memory."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images.contiguous()
    parts = [
        TF.resize(part, [size, size], interpolation=InterpolationMode.BICUBIC, antialias=True)
        for part in images.split(chunk)
    ]
    return torch.cat(parts).clamp_(0.0, 1.0)


# ----------------------------------------------------------------------------------------
# Image folders


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
            if path.name.startswith(".") or path.is_dir():
                continue  # hidden files (.DS_Store) and nested folders are not images
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


def _read_folder(listing: Listing, image_size: int, channels: int | None,
                 stop: threading.Event | None = None) -> Task[ImageSet | None]:
    root, normal_labels = listing.root, listing.normal_labels
    pixels: torch.Tensor | None = None
    kept: list[int] = []
    sizes: list[tuple[int, int]] = []
    skipped = list(listing.skipped)
    colour = False
    total = len(listing.files)
    done = 0
    for index, array, original, problem in decoded(listing.files, image_size):
        if stopped(stop):
            return None
        done += 1
        if problem is not None:
            skipped.append(SkippedFile(relative_path(listing.files[index][1], root), problem))
        else:
            if pixels is None:  # one uint8 block for all: no list of arrays to stack (twice the memory)
                pixels = torch.empty((total, 3, image_size, image_size), dtype=torch.uint8)
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
        pixels = _to_gray(pixels)
    labels = [listing.files[i][0] for i in kept]
    ids = [relative_path(listing.files[i][1], root) for i in kept]
    images = ImageSet(pixels, labels, ids, normal_labels, str(root), skipped, sizes)
    _add_masks(images, root, image_size)
    return images


def _add_masks(images: ImageSet, root: Path, image_size: int) -> None:
    if images.normal_labels is not None and (root / GROUND_TRUTH).is_dir():
        images.masks, images.mask_known, images.mask_notes = read_masks(
            root, images.labels, images.ids, image_size, images.sizes, NORMAL_FOLDER)


def image_chunks(listing: Listing, image_size: int, channels: int, chunk: int,
                 stop: threading.Event | None = None) -> Iterator[ImageSet]:
    """The listing's images ``chunk`` at a time, decoded ahead by workers while the caller works
    on the last chunk: the memory of one chunk, whatever the folder's size. Files that cannot be
    read are in each chunk's ``skipped``."""
    labels, ids, sizes, arrays, skipped = [], [], [], [], []

    def emit() -> ImageSet:
        stacked = torch.from_numpy(np.stack(arrays)) if arrays else torch.empty((0, 3, image_size, image_size), dtype=torch.uint8)
        pixels = _to_gray(stacked) if channels == 1 else stacked
        images = ImageSet(pixels, list(labels), list(ids), listing.normal_labels, str(listing.root), list(skipped), list(sizes))
        _add_masks(images, listing.root, image_size)
        for part in (labels, ids, sizes, arrays, skipped):
            part.clear()
        return images

    for index, array, original, problem in decoded(listing.files, image_size):
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


class _Decoding(Dataset):
    """Files → (index, uint8 RGB array or None, original (height, width) or None, problem or None)."""

    def __init__(self, files: list[tuple[str, Path]], size: int) -> None:
        self.paths = [path for _, path in files]
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        try:
            array, original = decode_image(self.paths[index], self.size)
            return index, array, original, None
        except EgbadError as error:
            return index, None, None, str(error)


def decode_workers(count: int) -> int:
    """Worker processes for decoding ``count`` files: none for a few, else one per core (≤ 8)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if count < WORKERS_FROM or cores < 2 else min(cores, MAX_WORKERS)


def decoded(files: list[tuple[str, Path]], size: int, workers: int | None = None) -> Iterator[tuple]:
    """Each file decoded at ``size``, in order, as ``_Decoding`` gives it, by DataLoader workers
    (``decode_workers`` of them unless given). A worker that dies (a decoder crashing on a
    malformed file) costs only its file: that batch's files are retried one at a time, a file
    whose worker dies again is reported as a problem, and decoding goes on with fresh workers."""
    dataset = _Decoding(files, size)
    workers = decode_workers(len(files)) if workers is None else workers
    if workers == 0:
        for index in range(len(dataset)):
            yield dataset[index]
        return
    start = 0
    while start < len(dataset):
        try:
            for item in _loader(dataset, range(start, len(dataset)), workers, DECODE_BATCH):
                yield item
                start = item[0] + 1
            return
        except RuntimeError as error:  # "DataLoader worker (pid …) is killed by signal" and the like
            if "worker" not in str(error).lower():
                raise
        for index in range(start, min(start + DECODE_BATCH, len(dataset))):
            try:
                yield next(iter(_loader(dataset, [index], 1, 1)))
            except RuntimeError as error:
                yield index, None, None, f"crashed its decoder ({_first_line(error)})"
            start = index + 1


def _loader(dataset: Dataset, indices, workers: int, batch: int):
    subset = torch.utils.data.Subset(dataset, list(indices))
    loader = DataLoader(subset, batch_size=batch, num_workers=workers, collate_fn=list, prefetch_factor=4)
    for items in loader:
        yield from items


def _to_gray(rgb: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """RGB → luma (ITU-R 601 weights), keeping the dtype (uint8 rounded), a chunk at a time."""
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    parts = []
    for part in rgb.split(chunk):
        gray = (part.float() * weights).sum(dim=1, keepdim=True)
        parts.append(gray.round_().clamp_(0, 255).to(torch.uint8) if rgb.dtype == torch.uint8 else gray)
    return torch.cat(parts) if parts else rgb[:, :1]


def relative_path(path: Path, root: Path) -> str:
    """``path`` as an image id: relative to ``root`` where it lies under it."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def decode_image(path: Path, size: int, own: tuple[int, int] | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """One image file as uint8 RGB (3, size, size) (at ``own`` (height, width) instead where
    given), and its own (height, width).

    16-bit, palette, RGBA and CMYK images are converted; an image too large to decode safely
    (Pillow's decompression-bomb limit, about 89 megapixels) is refused rather than risking
    the machine's memory. Raises EgbadError with the reason, which the caller reports.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                target = (own[1], own[0]) if own is not None else (size, size)
                image.draft("RGB", target)  # JPEG: decode at reduced size, much faster
                rgb = _as_rgb(image)
                if rgb.size != target:
                    rgb = rgb.resize(target, Image.Resampling.BICUBIC)
                return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)), (height, width)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise EgbadError(f"is too large to decode safely ({_first_line(error)})") from None
    except UnidentifiedImageError:
        size_note = "is empty (0 bytes)" if os.path.getsize(path) == 0 else "is not an image Pillow can read"
        raise EgbadError(size_note) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise EgbadError(f"cannot be decoded ({_first_line(error)})") from None


def _as_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image, dtype=np.float32)
        top = 65535.0 if values.max() <= 65535 else float(values.max())
        image = Image.fromarray((values / top * 255.0).round().astype(np.uint8))
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float32)
        span = float(values.max() - values.min()) or 1.0
        image = Image.fromarray(((values - values.min()) / span * 255.0).astype(np.uint8))
    return image.convert("RGB")
