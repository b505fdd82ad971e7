"""Photos larger than a model's window, scored in overlapping windows and their maps stitched.

A patch model's terms are local, so a photo of any size can be scored window by window at the
resolution the model learnt, with memory bounded by the window, not the photo. Near a window's
edge its terms see padding (D's convolutions, the moments' 32-px windows, the map's blur), so
windows overlap and the stitched map takes from each window only its middle: every pixel from the
one window whose edge is furthest from it. With an overlap of at least twice the terms' reach the
stitched map is the map of the whole photo, without seams (tests/test_tiling.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

OVERLAP = 64  # px two neighbouring windows share: twice the reach of the coarse moments and the map's blur


def window_starts(length: int, window: int, overlap: int = OVERLAP) -> list[int]:
    """Where windows of ``window`` px start along a side of ``length`` px: the first at 0, the last
    ending at the edge, neighbours sharing at least ``overlap`` px, spread evenly between."""
    if not 0 <= overlap < window:
        raise ValueError(f"the overlap must lie in [0, {window}), not {overlap}")
    if length <= window:
        return [0]
    count = math.ceil((length - window) / (window - overlap)) + 1
    return [round(i * (length - window) / (count - 1)) for i in range(count)]


def kept_spans(starts: list[int], window: int, length: int) -> list[tuple[int, int]]:
    """The part of each window the stitched map takes, in the photo's pixels: from the middle of its
    overlap with the window before to the middle of its overlap with the next."""
    ends = [min(start + window, length) for start in starts]
    bounds = [0] + [(ends[i] + starts[i + 1]) // 2 for i in range(len(starts) - 1)] + [length]
    return list(zip(bounds[:-1], bounds[1:]))


@dataclass(frozen=True)
class Windows:
    """The windows a photo of ``height``×``width`` is scored in (row-major), and how their maps
    go back together. A side shorter than the window is padded by repeating its edge, and the
    padding is cut off again when the maps are stitched."""

    height: int
    width: int
    window: int
    overlap: int = OVERLAP

    @property
    def rows(self) -> list[int]:
        return window_starts(self.height, self.window, self.overlap)

    @property
    def columns(self) -> list[int]:
        return window_starts(self.width, self.window, self.overlap)

    def __len__(self) -> int:
        return len(self.rows) * len(self.columns)

    def cut(self, photo: torch.Tensor, indices: range | list[int] | None = None) -> torch.Tensor:
        """(C, H, W) → (K, C, window, window): the windows at ``indices`` (all where None), row-major."""
        short = (max(0, self.window - self.width), max(0, self.window - self.height))
        if any(short):
            source = photo if photo.is_floating_point() else photo.float()
            padded = F.pad(source[None], (0, short[0], 0, short[1]), mode="replicate")[0]
            photo = padded if photo.is_floating_point() else padded.round().to(photo.dtype)
        size, columns = self.window, self.columns
        origins = [(top, left) for top in self.rows for left in columns]
        chosen = range(len(origins)) if indices is None else indices
        return torch.stack([photo[:, origins[k][0] : origins[k][0] + size, origins[k][1] : origins[k][1] + size]
                            for k in chosen])

    def kept(self, index: int) -> tuple[int, int, int, int, int, int]:
        """Window ``index``'s kept part: (top, left) of the window, then the rows [y0, y1) and
        columns [x0, x1) it gives the stitched map, in the photo's pixels."""
        rows, columns = self.rows, self.columns
        i, j = divmod(index, len(columns))
        y0, y1 = kept_spans(rows, self.window, self.height)[i]
        x0, x1 = kept_spans(columns, self.window, self.width)[j]
        return rows[i], columns[j], y0, y1, x0, x1

    def paste(self, out: torch.Tensor, index: int, part: torch.Tensor) -> None:
        """Window ``index``'s map (…, window, window) into the stitched ``out`` (…, H, W), its kept part
        only: windows can be scored and pasted a few at a time, memory bounded by those few."""
        top, left, y0, y1, x0, x1 = self.kept(index)
        out[..., y0:y1, x0:x1] = part[..., y0 - top : y1 - top, x0 - left : x1 - left]

    def stitch(self, maps: torch.Tensor) -> torch.Tensor:
        """(K, window, window) maps of the windows → (H, W), each pixel from the window whose edge
        is furthest from it."""
        out = maps.new_empty(self.height, self.width)
        for index, part in enumerate(maps):
            self.paste(out, index, part)
        return out
