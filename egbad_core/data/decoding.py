"""Image files decoded to uint8 RGB at a given size, many at once by DataLoader worker processes."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset

from ..errors import EgbadError, first_line
from ..system.processes import die_with_parent

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
WORKERS_FROM = 64  # files; fewer decode sooner on this thread than worker processes start
MAX_WORKERS = 8
DECODE_BATCH = 8  # files per worker batch: a dead worker's files are retried one by one
PREFETCH = 4  # batches each worker decodes ahead
# A photo of a few megapixels and more is decoded one at a time, two ahead a worker: at 8 files a
# batch and 4 batches ahead, two workers had held 64 photos of 12 MP (2.4 GB) in flight.
LARGE_IMAGE_BYTES = 4 << 20
# Pillow refuses to decode more pixels than this (its decompression-bomb guard, about 89 MP); a
# user with larger photos raises it in megapixels.
PIXEL_LIMIT_VARIABLE = "EGBAD_MAX_MEGAPIXELS"
Shape = tuple[int, int] | float | None  # how large a file is decoded: (height, width), a share of its own, or square


class _Decoding(Dataset):
    """Files → (index, uint8 RGB array or None, original (height, width) or None, problem or None)."""

    def __init__(self, files: list[tuple[str, Path]], size: int, shape: Shape = None) -> None:
        self.paths = [path for _, path in files]
        self.size = size
        self.shape = shape

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        own, scale = (self.shape, 0.0) if isinstance(self.shape, tuple) else (None, self.shape or 0.0)
        try:
            array, original = decode_image(self.paths[index], self.size, own, scale)
            return index, array, original, None
        except EgbadError as error:
            return index, None, None, str(error)


def decode_workers(count: int) -> int:
    """Worker processes for decoding ``count`` files: none for a few, else one per core (≤ 8)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if count < WORKERS_FROM or cores < 2 else min(cores, MAX_WORKERS)


def decoded(files: list[tuple[str, Path]], size: int, workers: int | None = None, shape: Shape = None) -> Iterator[tuple]:
    """Each file decoded at ``size`` (``shape``: at that (height, width), or at that share of its own
    size), in order, as ``_Decoding`` gives it, by DataLoader workers
    (``decode_workers`` of them unless given). A worker that dies (a decoder crashing on a
    malformed file) costs only its file: that batch's files are retried one at a time, a file
    whose worker dies again is reported as a problem, and decoding goes on with fresh workers."""
    dataset = _Decoding(files, size, shape)
    workers = decode_workers(len(files)) if workers is None else workers
    if workers == 0:
        for index in range(len(dataset)):
            yield dataset[index]
        return
    batch, ahead = (1, 2) if _decoded_bytes(size, shape) >= LARGE_IMAGE_BYTES else (DECODE_BATCH, PREFETCH)
    start = 0
    while start < len(dataset):
        try:
            for item in _loader(dataset, range(start, len(dataset)), workers, batch, ahead):
                yield item
                start = item[0] + 1
            return
        except RuntimeError as error:  # "DataLoader worker (pid …) is killed by signal" and the like
            if "worker" not in str(error).lower():
                raise
        for index in range(start, min(start + batch, len(dataset))):
            try:
                yield next(iter(_loader(dataset, [index], 1, 1, 1)))
            except RuntimeError as error:
                yield index, None, None, f"crashed its decoder ({first_line(error)})"
            start = index + 1


def _decoded_bytes(size: int, shape: Shape) -> float:
    """A decoded file's bytes as ``decoded`` is asked for it; a share of its own size: a photo's."""
    if isinstance(shape, tuple):
        return 3.0 * shape[0] * shape[1]
    return float("inf") if shape else 3.0 * size * size


def _loader(dataset: Dataset, indices, workers: int, batch: int, ahead: int):
    subset = torch.utils.data.Subset(dataset, list(indices))
    loader = DataLoader(subset, batch_size=batch, num_workers=workers, collate_fn=list, prefetch_factor=ahead,
                        worker_init_fn=die_with_parent)  # no worker outlives a killed parent
    for items in loader:
        yield from items


def to_gray(rgb: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """RGB → luma (ITU-R 601 weights), keeping the dtype (uint8 rounded), a chunk at a time."""
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    parts = []
    for part in rgb.split(chunk):
        gray = (part.float() * weights).sum(dim=1, keepdim=True)
        parts.append(gray.round_().clamp_(0, 255).to(torch.uint8) if rgb.dtype == torch.uint8 else gray)
    return torch.cat(parts) if parts else rgb[:, :1]


def header_size(path: Path) -> tuple[int, int] | None:
    """An image file's own (height, width) from its header alone; None where it cannot be read."""
    try:
        with warnings.catch_warnings(), Image.open(path) as picture:
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # only the header is read
            return picture.size[1], picture.size[0]
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None  # decoding it names the problem


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """A photo's (height, width) at ``scale`` of its own pixels, at least 1 each way."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def decode_image(path: Path, size: int, own: tuple[int, int] | None = None,
                 scale: float = 0.0) -> tuple[np.ndarray, tuple[int, int]]:
    """One image file as uint8 RGB (3, size, size) (at ``own`` (height, width) instead where
    given, or at ``scale`` of its own size where that is above 0), and its own (height, width).

    16-bit, palette, RGBA and CMYK images are converted; an image too large to decode safely
    (Pillow's decompression-bomb limit, about 89 megapixels) is refused rather than risking
    the machine's memory. Raises EgbadError with the reason, which the caller reports.
    """
    limit = pixel_limit()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if own is None and scale > 0:
                    own = scaled_size(height, width, scale)
                target = (own[1], own[0]) if own is not None else (size, size)
                image.draft("RGB", target)  # JPEG: decode at reduced size, much faster
                rgb = _as_rgb(image)
                if rgb.size != target:
                    rgb = rgb.resize(target, Image.Resampling.BICUBIC)
                return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)), (height, width)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise EgbadError(f"is too large to decode safely ({_megapixels(error)} megapixels, above the limit of "
                         f"{limit / 1e6:.0f}); to allow it set {PIXEL_LIMIT_VARIABLE} to a larger number of "
                         "megapixels") from None
    except UnidentifiedImageError:
        size_note = "is empty (0 bytes)" if os.path.getsize(path) == 0 else "is not an image Pillow can read"
        raise EgbadError(size_note) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise EgbadError(f"cannot be decoded ({first_line(error)})") from None


def pixel_limit() -> int:
    """The most pixels an image may have to be decoded: Pillow's own guard, or PIXEL_LIMIT_VARIABLE's."""
    asked = os.environ.get(PIXEL_LIMIT_VARIABLE, "").strip()
    try:
        if asked and float(asked) > 0:
            Image.MAX_IMAGE_PIXELS = int(float(asked) * 1e6)
    except ValueError:
        raise EgbadError(f"{PIXEL_LIMIT_VARIABLE} must be a number of megapixels, not {asked!r}.") from None
    return int(Image.MAX_IMAGE_PIXELS or 0)


def _megapixels(error: Exception) -> str:
    """The image's size in Pillow's refusal ("Image size (N pixels) exceeds limit …")."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    return f"{int(found.group(1)) / 1e6:.0f}" if found else "too many"


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
