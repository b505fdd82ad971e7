"""MNIST-style CSV files: a ``label`` column and the pixels of a square image, values 0–255."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..errors import EgbadError, first_line
from .images import ImageSet
from .sources import label_text


def read_csv(
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
        raise EgbadError(f"{path} is not a readable CSV file ({first_line(error)}).") from None
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
    labels = [label_text(v) for v in frame["label"].tolist()]
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
    pixels = resize_tensor(images, image_size)
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


def resize_tensor(images: torch.Tensor, size: int, chunk: int = 1024) -> torch.Tensor:
    """Bicubic resize as the seed, in chunks so a large file does not double the memory."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images.contiguous()
    parts = [
        TF.resize(part, [size, size], interpolation=InterpolationMode.BICUBIC, antialias=True)
        for part in images.split(chunk)
    ]
    return torch.cat(parts).clamp_(0.0, 1.0)
