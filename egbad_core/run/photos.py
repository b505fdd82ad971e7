"""A photo larger than a patch model's window, scored at the model's own resolution in windows.

Resizing a 2,448-px photo to the model's 256 px takes a 10-px scratch down to one pixel; here
the photo keeps its pixels and is cut into overlapping windows (``score.tiling``), a few scored
at a time by the patch scorer and pasted into one anomaly map of the photo's size. Memory holds
the photo, its map and a few windows' work, whatever the photo's size.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from ..data.decoding import scaled_size
from ..data.images import ImageSet
from ..errors import EgbadError
from ..events import ProgressEvent, Task, stopped
from ..score.frame_place import photo_terms
from ..score.local import within
from ..score.nearest import grouped_search
from ..score.scores import Scores
from ..score.tiling import LARGEST_WINDOW, Windows, window_batches, window_layout
from ..system.memory import heap_for_scoring
from .scoring import ScoreRequest

PIXEL_STEP = 64  # a photo's pixel metrics take every defect pixel and every 64th other one


@dataclass
class PhotoScore:
    """A photo's score, its worst place and its anomaly map at the photo's own size."""

    score: float  # the map's worst place
    residual: float  # R and Dis at the worst place of the window that holds the photo's worst
    discrimination: float
    worst: tuple[int, int]  # (row, column) in the photo's pixels
    anomaly_map: np.ndarray  # (H, W) float32, in the model's score units
    reconstruction: np.ndarray  # (C, H, W) uint8: G(E(x)) of the windows' tiles, stitched as the map is
    seconds: float

    @property
    def megapixels_per_s(self) -> float:
        return self.anomaly_map.size / 1e6 / max(self.seconds, 1e-9)


def photo_windows(request: ScoreRequest, height: int, width: int,
                  largest: int = LARGEST_WINDOW) -> tuple[Windows, ScoreRequest]:
    """The windows a photo of this size is scored in (``score.tiling.window_layout``), and the
    request each is scored with. Raises EgbadError for a model that does not score in windows."""
    config = request.checkpoint.networks.config
    if not config.patch_model:
        raise EgbadError("only a patch model scores photos at their own resolution; this checkpoint scores "
                         f"whole images of {config.image_size} px.")
    if getattr(request.checkpoint.reference, "places", None) is not None:
        raise EgbadError("this model compares each place with the same place in its training images at "
                         f"{config.working_size} px, so it scores photos resized to that size, not in windows.")
    windows, scaled = window_layout(config, request.settings, height, width, largest)
    return windows, replace(request, config=scaled)


def photo_scoring_task(request: ScoreRequest, photo: torch.Tensor, stop: threading.Event | None = None,
                       largest: int = LARGEST_WINDOW, grouped: bool = True) -> Task[PhotoScore | None]:
    """Score one photo (C, H, W) as loaded (uint8) at its own resolution, as a task (progress in
    windows; None if stopped). ``largest``: the widest window (``photo_windows``); ``grouped``
    False searches the banks exactly, as an exported model does (slower)."""
    start = time.perf_counter()
    request = request.frozen()  # folded once for the photo's windows (no cost where it was)
    windows, request = photo_windows(request, *photo.shape[-2:], largest)
    region = request.inside_of(tuple(photo.shape[-2:]))
    inside = None if region is None else region.inside
    whole = photo_terms(photo, request.checkpoint.settings.normalisation, request.settings, request.checkpoint.reference)
    stitched = torch.empty(windows.height, windows.width)
    rebuilt = torch.empty(photo.shape[0], windows.height, windows.width, dtype=torch.uint8)
    terms: list[tuple[float, float, float]] = []  # per window: its score, R and Dis at its worst place
    searches = grouped_search() if grouped else contextlib.nullcontext()
    with heap_for_scoring(), searches:  # the windows reuse each other's memory; large searches in groups
        for chosen, pixels, cuts in window_batches(windows, photo, inside, whole):
            if stopped(stop):
                return None
            scores = yield from _quiet(request.task(pixels, True, stop, cuts))
            if scores is None:
                return None
            for k, index in enumerate(chosen):
                windows.paste(stitched, index, torch.from_numpy(scores.residual_maps[k]))
                windows.paste(rebuilt, index, torch.from_numpy(scores.reconstructions[k]).mul(255).round_().to(torch.uint8))
                terms.append((float(scores.score[k]), float(scores.residual[k]), float(scores.discrimination[k])))
            yield ProgressEvent("scoring windows", chosen.stop, len(windows))
    if inside is not None:  # a window with no place inside kept its own lowest value: below the part's now
        stitched = within(stitched[None], inside)[0]
    worst = int(stitched.argmax())
    row, column = divmod(worst, windows.width)
    holder = _holding(windows, row, column)
    return PhotoScore(float(stitched.view(-1)[worst]), terms[holder][1], terms[holder][2], (row, column),
                      stitched.numpy(), rebuilt.numpy(), time.perf_counter() - start)


def photo_scores_task(request: ScoreRequest, pixels: torch.Tensor,
                      stop: threading.Event | None = None) -> Task[Scores | None]:
    """One photo (1, C, H, W) as loaded, scored in windows, as the Scores of a one-image chunk: its
    map and reconstruction at the photo's size."""
    result = yield from photo_scoring_task(request, pixels[0], stop)
    if result is None:
        return None
    one = lambda value: np.array([value])  # noqa: E731
    return Scores("egbad", one(result.residual), one(result.discrimination), one(result.score),
                  result.reconstruction[None].astype(np.float32) / 255.0, result.anomaly_map[None], result.seconds,
                  request.settings.lam, np.array([result.worst]), local=True)


def frame_note(reference: object, sizes: list[tuple[int, int]], scale: float) -> str | None:
    """A sentence for the photos scored without the same-place comparison: an aligned photo model's
    frame is of one size, and a photo of another (a second camera's) has no same place in it."""
    frame = getattr(reference, "frame", None)
    if frame is None or not sizes:
        return None
    height, width = reference.frame_size  # type: ignore[attr-defined]  (a patch reference with a frame)
    other = sum(1 for h, w in sizes if scaled_size(h, w, scale or 1.0) != (height, width))
    if not other:
        return None
    return (f"{other} of {len(sizes)} photos are not {width}×{height} px at the model's scale, as its training photos "
            "are, so they were scored without the same-place comparison (every other term as usual).")


def thumbnail(images: ImageSet, scores: Scores, side: int) -> tuple[ImageSet, Scores]:
    """A scored photo as the result grid keeps it: picture, reconstruction and map at ``side``
    square, its worst place moved with them, no mask (the pixel metrics take the photo's own,
    ``photo_sample``), its masks' notes kept."""
    height, width = images.pixels.shape[-2:]
    shrink = lambda x: F.interpolate(torch.as_tensor(x).float(), (side, side), mode="area")  # noqa: E731
    pixels = shrink(images.pixels).round_().to(images.pixels.dtype)
    small = ImageSet(pixels, list(images.labels), list(images.ids), images.normal_labels, images.source, [],
                     images.sizes, mask_notes=list(images.mask_notes), scale=images.scale)
    worst = None if scores.worst_places is None else (scores.worst_places * [side / height, side / width]).astype(np.int64)
    maps = F.adaptive_max_pool2d(torch.from_numpy(scores.residual_maps)[:, None], (side, side))[:, 0]
    return small, replace(scores, reconstructions=shrink(scores.reconstructions).numpy(), residual_maps=maps.numpy(),
                          worst_places=worst)


def photo_sample(photo: ImageSet, scores: Scores) -> tuple[np.ndarray, np.ndarray] | None:
    """A one-photo chunk's pixel sample (``pixel_sample``) where its mask is known, else None."""
    known = photo.mask_known
    if known is None or not known[0] or scores.residual_maps is None:
        return None
    return pixel_sample(scores.residual_maps[0], photo.masks[0])


def pixel_sample(anomaly_map: np.ndarray, mask: np.ndarray, step: int = PIXEL_STEP) -> tuple[np.ndarray, np.ndarray]:
    """The map's values at every defect pixel and at every ``step``-th other pixel, with their
    labels: an unbiased sample for pixel AUROC (each class's pixels drawn evenly) at a photo's size."""
    flat, labels = anomaly_map.reshape(-1), mask.reshape(-1).astype(bool)
    chosen = labels.copy()
    chosen[::step] = True
    return flat[chosen], labels[chosen]


def _holding(windows: Windows, row: int, column: int) -> int:
    """The window whose kept part holds the photo's pixel (row, column)."""
    for index in range(len(windows)):
        _, _, y0, y1, x0, x1 = windows.kept(index)
        if y0 <= row < y1 and x0 <= column < x1:
            return index
    raise ValueError(f"({row}, {column}) lies outside the photo")


def _quiet(task: Task) -> Task:
    """A window batch's task with its own progress left out (the photo's is counted in windows)."""
    while True:
        try:
            event = next(task)
        except StopIteration as end:
            return end.value
        if not isinstance(event, ProgressEvent):
            yield event
