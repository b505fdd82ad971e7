"""Images ready for the networks, and the files that could not be used."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch


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
    held: str = ""  # photos at their own resolution: where the block lies and how large, in words
    scale: float = 0.0  # the share of their own pixels photos are kept at; 0: each resized to image_size

    def fits(self, side: int, channels: int | None, scale: float = 0.0) -> bool:
        """Whether these are images as a model of this load size (or photo scale) and channels takes them."""
        same_size = self.scale == scale if scale else (not self.scale and self.image_size == side)
        return same_size and (channels is None or self.channels == channels)

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
        height, width = self.pixels.shape[-2:]
        if self.scale:
            return (f"{len(self)} photos at {self.scale:g} of their own pixels, {width}×{height}×{self.channels} "
                    f"({counts}), {self.held}")
        return f"{len(self)} images {width}×{height}×{self.channels} ({counts})"


def joined_sets(parts: list[ImageSet]) -> ImageSet:
    """One ImageSet of several sets' images from one source, in order (their skipped files left out)."""
    first = parts[0]
    join = lambda name: (None if any(getattr(p, name) is None for p in parts)  # noqa: E731
                         else np.concatenate([getattr(p, name) for p in parts]))
    lists = lambda name: [item for p in parts for item in getattr(p, name)]  # noqa: E731
    sizes = None if any(p.sizes is None for p in parts) else lists("sizes")
    return ImageSet(torch.cat([p.pixels for p in parts]), lists("labels"), lists("ids"), first.normal_labels,
                    first.source, [], sizes, join("masks"), join("mask_known"), list(first.mask_notes))


def as_unit(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 0–255 or float [0, 1] pixels → float32 in [0, 1]."""
    return pixels.float().div_(255.0) if pixels.dtype == torch.uint8 else pixels.float()


def skipped_lines(skipped: list[SkippedFile], limit: int = 10) -> list[str]:
    """At most ``limit`` lines naming skipped files and why, and how many more."""
    lines = [str(s) for s in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"… and {len(skipped) - limit} more")
    return lines
