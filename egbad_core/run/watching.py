"""Live inspection: a folder scored image by image as images land in it (``egbad watch``).

A camera or a line PC writes each part's photo into a folder. A file is scored once its writing
has finished (its size and modification time unchanged for ``settle`` seconds, and it decodes),
its row appended to ``scores.csv`` in one write (a killed watch leaves whole rows), its map written
where asked and the file copied where flagged images go. Restarted, the watch reads ``scores.csv``
back and scores only what it has not. A file that is not an image, or one that never decodes, is
named once and skipped; a folder that goes away is waited for. Only the folder's own files are
watched, not its subfolders (the results may lie in one).
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..data.decoding import IMAGE_SUFFIXES, decode_image, to_gray
from ..data.images import ImageSet
from ..data.folders import KEPT_BESIDE
from ..errors import EgbadError
from ..events import InspectedEvent, NoteEvent, Task, stopped
from ..pictures import overlay, to_rgb8
from ..score.false_alarms import implied
from ..system.files import ensure_writable_folder
from .detection import Detection, unlabelled_threshold
from .maps import write_maps
from .photos import photo_scores_task
from .results import ScoresFile
from .scoring import ScoreRequest

SETTLE_S = 0.5  # a file unchanged this long has been written
POLL_S = 0.1  # how often the folder is listed while nothing is waiting
TRIES = 3  # a settled file that does not decode is tried again this many times (a writer that paused)
VIEW_SIDE = 512  # px: the longer side of the picture an event carries for the window


@dataclass
class _Waiting:
    size: int
    modified: int  # ns
    since: float  # monotonic time it was first seen as it is now
    tries: int = 0


@dataclass
class Arrivals:
    """Which of a folder's files are new and finished being written."""

    folder: Path
    done: set[str]  # names scored (or skipped) already
    settle: float = SETTLE_S
    waiting: dict[str, _Waiting] = field(default_factory=dict)
    broken: dict[str, tuple[int, int]] = field(default_factory=dict)  # skipped undecodable: as they were then
    gone: bool = False

    def ready(self) -> tuple[list[Path], list[str]]:
        """The files that have settled, oldest first, and sentences about what was left out."""
        notes: list[str] = []
        try:
            entries = sorted(self.folder.iterdir())
        except OSError:
            if not self.gone:
                notes.append(f"{self.folder} is gone; waiting for it to come back.")
            self.gone = True
            return [], notes
        if self.gone:
            notes.append(f"{self.folder} is back; watching it again.")
            self.gone = False
        now, settled = time.monotonic(), []
        for path in entries:
            name = path.name
            if name in self.broken and self._rewritten(path):
                self.done.discard(name)  # written again since it was skipped: read it anew
            if name in self.done or name.startswith(".") or name.lower() in KEPT_BESIDE or not path.is_file():
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                self.done.add(name)
                notes.append(f"{name} is not an image file: skipped.")
                continue
            try:
                info = path.stat()
            except OSError:  # removed between the listing and now
                self.waiting.pop(name, None)
                continue
            seen = self.waiting.get(name)
            if seen is None or (seen.size, seen.modified) != (info.st_size, info.st_mtime_ns):
                self.waiting[name] = _Waiting(info.st_size, info.st_mtime_ns, now, seen.tries if seen else 0)
            elif info.st_size > 0 and now - seen.since >= self.settle:
                settled.append((info.st_mtime_ns, path))
        return [path for _, path in sorted(settled)], notes

    def _rewritten(self, path: Path) -> bool:
        try:
            info = path.stat()
        except OSError:
            return False
        if (info.st_size, info.st_mtime_ns) == self.broken[path.name]:
            return False
        del self.broken[path.name]
        return True

    def finished(self, path: Path) -> None:
        self.done.add(path.name)
        self.waiting.pop(path.name, None)

    def failed(self, path: Path, problem: str) -> str | None:
        """A settled file that did not decode: tried again later, or skipped with a sentence."""
        seen = self.waiting[path.name]
        seen.tries += 1
        seen.since = time.monotonic()
        if seen.tries < TRIES:
            return None
        self.finished(path)
        self.broken[path.name] = (seen.size, seen.modified)
        return f"{path.name} {problem}: skipped (read again if it is written again)."


def read_one(path: Path, request: ScoreRequest) -> ImageSet:
    """One file as the model takes it (its size or its photo scale, its channels); raises EgbadError."""
    config = request.checkpoint.networks.config
    array, original = decode_image(path, config.load_size, scale=config.photo_scale)
    pixels = torch.from_numpy(array)[None]
    if config.channels == 1:
        pixels = to_gray(pixels)
    return ImageSet(pixels, [""], [path.name], None, str(path.parent), [], [original], scale=config.photo_scale)


def score_one(request: ScoreRequest, images: ImageSet, stop: threading.Event | None = None) -> Task[Detection | None]:
    """One image's Detection, no threshold yet; a photo model's at the photo's own resolution."""
    if request.checkpoint.networks.config.full_resolution:
        scores = yield from photo_scores_task(request, images.pixels, stop)
    else:
        scores = yield from request.task(images.pixels, True, stop, request.inside_of(tuple(images.pixels.shape[-2:])))
    return None if scores is None else request.detection(images, scores)


@dataclass(frozen=True)
class WatchPlan:
    """Where a watch reads and what it writes."""

    folder: Path
    out_dir: Path  # scores.csv
    maps_dir: Path | None = None  # each image's map (PNG overlay and .npy)
    flagged_to: Path | None = None  # flagged images copied here
    settle: float = SETTLE_S
    poll: float = POLL_S
    views: bool = False  # each event carries the image with its map over it (the window's Live tab)


class WatchLog:
    """What a watch writes as it goes (rows, maps, flagged images) and the threshold it flags by;
    a watch of a folder and one of a camera share it."""

    def __init__(self, request: ScoreRequest, plan: WatchPlan, where: str) -> None:
        for folder in (plan.out_dir, plan.maps_dir, plan.flagged_to):
            if folder is not None:
                ensure_writable_folder(folder)
        self.plan = plan
        stats = request.stats()
        self.threshold = unlabelled_threshold(request.threshold, stats)  # no labels come with a watched folder
        alarms = implied(stats, self.threshold[0])
        self.opening = NoteEvent(f"Watching {where}; rows go to {plan.out_dir / 'scores.csv'}. Flagging at a score of "
                                 f"{self.threshold[0]:.4g} ({self.threshold[1]})." + (f" {alarms.sentence()}" if alarms else ""))
        self.rows = ScoresFile(plan.out_dir / "scores.csv", resume=True)
        self.count = self.flagged = 0

    def record(self, detection: Detection, arrived: float, keep: Callable[[Path], None]) -> InspectedEvent:
        """One image's row, map and (where flagged) ``keep(folder)``; its event. ``arrived``: the
        time.time() it came at."""
        detection.threshold, detection.threshold_method = self.threshold
        self.rows.append(detection)
        flagged = bool(detection.flagged[0])
        plan = self.plan
        if plan.maps_dir is not None:
            write_maps(plan.maps_dir, detection)
        if flagged and plan.flagged_to is not None:
            keep(plan.flagged_to)
        self.count, self.flagged = self.count + 1, self.flagged + flagged
        places, relative = detection.worst_places(), detection.relative()
        return InspectedEvent(detection.images.ids[0], float(detection.scores.score[0]),
                              None if relative is None else float(relative[0]), flagged,
                              None if places is None else (int(places[0, 0]), int(places[0, 1])),
                              time.time() - arrived, _view(detection) if plan.views else None)

    def close(self) -> tuple[int, int]:
        self.rows.close()
        return self.count, self.flagged


def watch_task(request: ScoreRequest, plan: WatchPlan, stop: threading.Event | None = None) -> Task[tuple[int, int]]:
    """Score the folder's images as they land until ``stop`` is set: an InspectedEvent per image,
    a NoteEvent per file left out; returns how many this run scored and flagged. Raises EgbadError
    where the results cannot be written or no threshold can be set."""
    request = request.frozen()
    log = WatchLog(request, plan, str(plan.folder))
    arrivals = Arrivals(plan.folder, set(log.rows.ids), plan.settle)
    yield log.opening
    try:
        while not stopped(stop):
            paths, notes = arrivals.ready()
            for note in notes:
                yield NoteEvent(note)
            for path in paths:
                if stopped(stop):
                    break
                try:
                    images, arrived = read_one(path, request), path.stat().st_mtime
                except (EgbadError, OSError) as error:
                    said = arrivals.failed(path, str(error))
                    if said:
                        yield NoteEvent(said)
                    continue
                detection = yield from score_one(request, images, stop)
                if detection is None:
                    break
                yield log.record(detection, arrived, lambda folder, path=path: shutil.copy2(path, folder / path.name))
                arrivals.finished(path)
            if not paths and not _rest(stop, plan.poll):
                break
    finally:
        counts = log.close()
    return counts


def _view(detection: Detection) -> np.ndarray:
    """The image with its map laid over it, its longer side at most VIEW_SIDE (each cell of the
    map its pixels' worst, so a small defect stays bright)."""
    pixels = torch.from_numpy(detection.images.unit(slice(0, 1)))
    anomaly_map = torch.from_numpy(np.ascontiguousarray(detection.scores.residual_maps[:1], dtype=np.float32))[:, None]
    height, width = pixels.shape[-2:]
    shrink = max(1.0, max(height, width) / VIEW_SIDE)
    if shrink > 1:
        size = (max(1, round(height / shrink)), max(1, round(width / shrink)))
        pixels, anomaly_map = F.interpolate(pixels, size, mode="area"), F.adaptive_max_pool2d(anomaly_map, size)
    elif anomaly_map.shape[-2:] != pixels.shape[-2:]:
        anomaly_map = F.interpolate(anomaly_map, (height, width), mode="bilinear", align_corners=False)
    return overlay(to_rgb8(pixels[0].numpy()), anomaly_map[0, 0].numpy(), *detection.map_range())


def _rest(stop: threading.Event | None, seconds: float) -> bool:
    """Wait a poll's time (woken by a stop); False where the stop came."""
    if stop is None:
        time.sleep(seconds)
        return True
    return not stop.wait(seconds)
