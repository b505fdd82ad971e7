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
from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from ..config import ModelConfig, Normalisation, ScoreConfig
from ..events import run_to_end
from ..model.networks import Networks
from ..model.references import PatchReference
from .frame_place import PhotoTerms, photo_terms, step_of
from .local import RESIDUAL_SMOOTHING, Overlays, patch_scoring_task
from .nearest import grouped_search
from .tensors import kernel_reach

OVERLAP = 64  # px two neighbouring windows share where no settings say (``overlap_for`` gives a model's)
WINDOW_FACTOR = 2  # photos are scored in windows at least this many times the model's working size a side
LARGEST_WINDOW = 1216  # px a side: the widest window a photo is scored in
PIXELS_AT_ONCE = LARGEST_WINDOW**2  # a pass's windows hold at most this many pixels (one of the largest, or a few smaller)


def window_starts(length: int, window: int, overlap: int = OVERLAP, align: int = 1) -> list[int]:
    """Where windows of ``window`` px start along a side of ``length`` px: the first at 0, the last
    ending at the edge, neighbours sharing at least ``overlap`` px, spread evenly between, each
    but the last on a multiple of ``align`` (the moments' step: a window there shares the photo's)."""
    if not 0 <= overlap < window - (align - 1):
        raise ValueError(f"the overlap must lie in [0, {window - align + 1}), not {overlap}")
    if length <= window:
        return [0]
    count = math.ceil((length - window) / (window - overlap - (align - 1))) + 1
    return [round(i * (length - window) / (count - 1)) // align * align for i in range(count - 1)] + [length - window]


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
    align: int = 1  # windows start on multiples of this (but the last each way, which ends at the edge)

    @property
    def rows(self) -> list[int]:
        return window_starts(self.height, self.window, self.overlap, self.align)

    @property
    def columns(self) -> list[int]:
        return window_starts(self.width, self.window, self.overlap, self.align)

    def __len__(self) -> int:
        return len(self.rows) * len(self.columns)

    def cut(self, photo: torch.Tensor, indices: range | list[int] | None = None) -> torch.Tensor:
        """(C, H, W) → (K, C, window, window): the windows at ``indices`` (all where None), row-major."""
        short = (max(0, self.window - self.width), max(0, self.window - self.height))
        if any(short):
            source = photo if photo.is_floating_point() else photo.float()
            padded = F.pad(source[None], (0, short[0], 0, short[1]), mode="replicate")[0]
            photo = padded if photo.is_floating_point() else padded.round().to(photo.dtype)
        size, origins = self.window, self.origins
        chosen = range(len(origins)) if indices is None else indices
        return torch.stack([photo[:, origins[k][0] : origins[k][0] + size, origins[k][1] : origins[k][1] + size]
                            for k in chosen])

    @property
    def origins(self) -> list[tuple[int, int]]:
        """(top, left) of each window, row-major."""
        return [(top, left) for top in self.rows for left in self.columns]

    def shown(self, indices: range | list[int]) -> torch.Tensor | None:
        """(K, window, window) bool: where each window at ``indices`` shows the photo, not the
        padding past its edge; None where every window lies inside it."""
        if self.window <= min(self.height, self.width):
            return None
        steps, origins = torch.arange(self.window), self.origins
        return torch.stack([(steps[:, None] + origins[k][0] < self.height) & (steps[None, :] + origins[k][1] < self.width)
                            for k in indices])

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


def overlap_for(settings: ScoreConfig) -> int:
    """Pixels two windows share: twice the reach of the widest term (the coarse moments' half
    window, then the blur of the map: the residual's and the map's, or the moments' two blurs
    kernel after kernel), so that a place's score never sees a window's edge."""
    widest = max(settings.coarse_window, settings.moment_window, settings.shape_window, 4)
    twice = kernel_reach(settings.map_smoothing) + kernel_reach(settings.moment_smoothing)
    reach = widest // 2 + max(math.ceil(3 * math.hypot(settings.map_smoothing, RESIDUAL_SMOOTHING)), twice)
    return 8 * math.ceil(2 * reach / 8)


def window_layout(config: ModelConfig, settings: ScoreConfig, height: int, width: int,
                  largest: int = LARGEST_WINDOW) -> tuple[Windows, ScoreConfig]:
    """The windows a photo of this size is scored in, and the score settings each is scored with.

    A window is at least a few times the model's working size a side (its overlap is paid once per
    window) and at most ``largest``; between, the side that covers this photo with the fewest
    pixels scored (4,096×3,000: 12 windows of 1,120 px, 1.23 times the photo's pixels, where
    windows of 512 px would score 1.49 times). The terms are local, so the side changes no place's
    score, and D's features are looked at with the same step as at the working size."""
    overlap, working = overlap_for(settings), config.working_size
    # A side in whole tiles (reconstructed side by side) and whole cells of D's feature grid.
    unit = math.lcm(config.image_size, working // math.gcd(working, settings.feature_grid or working))
    smallest = working * max(WINDOW_FACTOR, math.ceil(4 * overlap / working))
    sides = range(smallest, max(smallest, largest) + 1, unit)
    align = step_of(settings) if settings.moment_window else 1
    side = min(sides, key=lambda s: (len(Windows(height, width, s, overlap, align)) * s * s, -s))
    return (Windows(height, width, side, overlap, align),
            replace(settings, feature_grid=settings.feature_grid * side // working))


def windows_at_once(windows: Windows) -> int:
    """Windows scored in one pass: the memory of one large window, the speed of a batch of small ones."""
    return max(1, PIXELS_AT_ONCE // windows.window**2)


def window_batches(windows: Windows, photo: torch.Tensor, inside: torch.Tensor | None = None,
                   terms: PhotoTerms | None = None) -> Iterator[tuple[range, torch.Tensor, Overlays]]:
    """The photo's windows a pass at a time (``windows_at_once``): their indices, their pixels
    (K, C, window, window) and their ``overlays``."""
    at_once = windows_at_once(windows)
    for first in range(0, len(windows), at_once):
        chosen = range(first, min(first + at_once, len(windows)))
        yield chosen, windows.cut(photo, chosen), overlays(windows, chosen, inside, terms)


def overlays(windows: Windows, chosen: range | list[int], inside: torch.Tensor | None,
             terms: PhotoTerms | None) -> Overlays:
    """The windows' cuts of the region of interest (H, W), of the photo's same-place term and of its
    moments (None without one; the moments also where a window does not start on their grid: such a
    window takes its own), and where they overhang the photo."""
    frame, moments = (terms.frame, terms.moments) if terms is not None else (None, None)
    cuts = [None if whole is None else windows.cut(whole[None], chosen)[:, 0] for whole in (inside, frame)]
    return Overlays(*cuts, None if moments is None else _moment_cuts(windows, chosen, moments), windows.shown(chosen))


def _moment_cuts(windows: Windows, chosen: range | list[int], moments: torch.Tensor) -> torch.Tensor | None:
    """(1, D, h, w) a photo's moments → (K, D, window/step, window/step) its windows' (their places are
    the photo's there; past the edge of a photo the window overhangs, its edge's repeated, which
    ``local.raw_maps`` sets to 0 with the terms), or None where a window is not on the grid."""
    step, side, cuts = windows.align, windows.window, []
    places = side // step
    for index in chosen:
        top, left = windows.kept(index)[:2]
        if step <= 1 or top % step or left % step or side % step:
            return None
        cut = moments[0, :, top // step : top // step + places, left // step : left // step + places]
        short = (places - cut.shape[-1], places - cut.shape[-2])
        cuts.append(F.pad(cut[None], (0, short[0], 0, short[1]), mode="replicate")[0] if any(short) else cut)
    return torch.stack(cuts)


def photo_worst(networks: Networks, photo: torch.Tensor, normalisation: Normalisation, settings: ScoreConfig,
                reference: PatchReference) -> float:
    """One photo's score (C, H, W as loaded) as scoring gives it: its windows' maps stitched, the
    worst place. What a photo model's good-image scores are taken as: a photo's worst place is
    the worst of all its windows' places, higher than one window's (run.photos scores the same way,
    with a region, a reconstruction and progress besides)."""
    windows, scaled = window_layout(networks.config, settings, *photo.shape[-2:])
    stitched = torch.empty(windows.height, windows.width)
    terms = photo_terms(photo, normalisation, settings, reference)
    with grouped_search():
        for chosen, pixels, cuts in window_batches(windows, photo, terms=terms):
            scores = run_to_end(patch_scoring_task(networks, pixels, normalisation, scaled, reference, over=cuts))
            for k, index in enumerate(chosen):
                windows.paste(stitched, index, torch.from_numpy(scores.residual_maps[k]))
    return float(stitched.max())
