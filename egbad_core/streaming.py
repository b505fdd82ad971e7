"""Scoring an image set of any size: a chunk at a time, each chunk's rows written as it is scored.

``egbad detect`` runs this. Memory holds one chunk of images (decoded ahead by DataLoader workers)
and, per image, only its id, label and numbers, so 100,000 images need little more than 1,000.
``scores.csv`` grows by a chunk's rows once the chunk is scored and flushed, so a run killed
midway leaves the rows it scored; at the end the file is rewritten whole (atomically) with the
``flagged`` column, which needs the threshold and so every score. The result grid shows the
most anomalous images, decoded and scored again for their pictures.
"""

from __future__ import annotations

import csv
import io
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from .checkpoints import Checkpoint, ensure_writable_folder
from .config import ScoreConfig
from .data import (DataSource, ImageSet, Listing, SkippedFile, image_chunks, relative_path, scoring_images_task,
                   scoring_listing)
from .detection import Detection, pixel_summary, scores_task, training_stats
from .distributed import ALONE, World, gather
from .errors import EgbadError
from .events import ProgressEvent, Task
from .export import GRID_IMAGES, write_grid, write_maps, write_scores_csv, write_summary
from .scoring import Scores

CHUNK = 256  # images scored between two writes of rows
PIXEL_METRIC_LIMIT = 64_000_000  # map pixels kept for pixel AUROC and PRO, at most (256 MB of float32)


@dataclass
class _Collected:
    """What is kept of every scored image: its identity and numbers, never its pixels.

    The numbers go into one array made for the whole run before the first chunk: a small array
    kept per chunk would sit between the chunks' large temporaries and keep the C heap from
    shrinking (the peak grew by 6 MB every 1,000 images so)."""

    capacity: int = 0
    ids: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    numbers: np.ndarray = field(default_factory=lambda: np.zeros((0, 5)))  # R, Dis, score, worst row, column
    kind: Scores | None = None  # the first chunk's scores, for what they are (method, λ, local)
    seconds: float = 0.0
    skipped: list[SkippedFile] = field(default_factory=list)
    maps: list[np.ndarray] = field(default_factory=list)  # anomaly maps of images with known masks
    masks: list[np.ndarray] = field(default_factory=list)
    mask_notes: list[str] = field(default_factory=list)
    map_pixels: int = 0

    def __post_init__(self) -> None:
        self.numbers = np.full((self.capacity, 5), np.nan)

    def add(self, chunk: ImageSet, scores: Scores) -> None:
        start, count = len(self.ids), len(chunk)
        self.ids += chunk.ids
        self.labels += chunk.labels
        self.sizes += chunk.sizes or []
        places = scores.places()
        rows = self.numbers[start : start + count]
        rows[:, 0], rows[:, 1], rows[:, 2] = scores.residual, scores.discrimination, scores.score
        if places is not None:
            rows[:, 3:] = places
        self.seconds += scores.seconds
        if self.kind is None:
            self.kind = Scores(scores.method, scores.residual[:0], scores.discrimination[:0], scores.score[:0], None,
                               None, 0.0, scores.lam, None if places is None else places[:0], scores.local)
        for note in chunk.mask_notes:
            if note not in self.mask_notes:
                self.mask_notes.append(note)
        known = chunk.mask_known
        if known is not None and known.any() and scores.residual_maps is not None:
            if self.map_pixels + int(known.sum()) * scores.residual_maps[0].size <= PIXEL_METRIC_LIMIT:
                self.maps.append(scores.residual_maps[known])
                self.masks.append(chunk.masks[known])
                self.map_pixels += self.maps[-1].size

    def scores(self) -> Scores:
        """Every image's numbers as one Scores, without pictures."""
        numbers = self.numbers[: len(self.ids)]
        kind = self.kind
        places = None if kind.worst_places is None else numbers[:, 3:].astype(np.int64)
        return Scores(kind.method, numbers[:, 0].copy(), numbers[:, 1].copy(), numbers[:, 2].copy(), None, None,
                      self.seconds, kind.lam, places, kind.local)


class RowWriter:
    """``scores.csv`` growing a chunk at a time. A chunk's rows go to the file in one unbuffered
    write, so a process killed at any moment (kill -9 included) leaves whole rows only."""

    COLUMNS = ("id", "label", "residual", "discrimination", "score", "relative_score", "worst_row", "worst_col")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stream = open(path, "wb", buffering=0)
        self._write([self.COLUMNS])

    def _write(self, rows) -> None:
        text = io.StringIO()
        csv.writer(text).writerows(rows)
        self.stream.write(text.getvalue().encode("utf-8"))

    def write(self, detection: Detection) -> None:
        scores = detection.scores
        relative = detection.relative()
        places = detection.worst_places()
        rows = []
        for i, image_id in enumerate(detection.images.ids):
            place = ("", "") if places is None else (int(places[i, 0]), int(places[i, 1]))
            rows.append((image_id, detection.images.labels[i], f"{scores.residual[i]:.6g}",
                         f"{scores.discrimination[i]:.6g}", f"{scores.score[i]:.6g}",
                         "" if relative is None else f"{relative[i]:.6g}", *place))
        self._write(rows)

    def close(self) -> None:
        self.stream.close()


def streaming_detection_task(
    checkpoint: Checkpoint,
    source: DataSource,
    out_dir: str | Path,
    method: str = "egbad",
    config: ScoreConfig | None = None,
    threshold: float | str | None = None,
    checkpoint_path: str | None = None,
    maps: str | Path | None = None,
    only_flagged: bool = False,
    stop: threading.Event | None = None,
    world: World = ALONE,
) -> Task[dict[str, Any] | None]:
    """Score ``source``'s test images chunk by chunk into ``out_dir`` (RESULT_FILES) and ``maps``;
    the summary, or None if stopped (the rows scored so far stay in scores.csv). Raises
    EgbadError for unusable data or settings.

    Under torchrun (``world``) each process scores every size-th image from its rank on, writing
    its rows to ``scores.part<rank>.csv`` as it goes; process 0 gathers the numbers, writes the
    one ``scores.csv`` in the images' order, the grid and the summary, and removes the parts.
    The other processes return ``{"rank": r, "n_images": n}``."""
    out_dir = ensure_writable_folder(out_dir)
    maps_dir = ensure_writable_folder(maps) if maps else None
    config = config or checkpoint.score
    model = checkpoint.networks.config
    source = source.with_normal_labels(checkpoint.normal_labels)
    listing = scoring_listing(source)
    whole: ImageSet | None = None
    if listing is None:  # a CSV or the demo: read whole (it is in memory as a table anyway)
        whole = yield from scoring_images_task(source, model.load_size, model.channels, stop)
        if whole is None:
            return None
        normal_labels, where, every_id = whole.normal_labels, whole.source, whole.ids
        share = whole.subset(np.arange(world.rank, len(whole), world.size))
        total = len(share)
        chunks: Iterator[ImageSet] = _slices(share)
    else:
        normal_labels, where = listing.normal_labels, str(listing.root)
        every_id = [relative_path(path, listing.root) for _, path in listing.files]
        share_listing = Listing(listing.files[world.rank :: world.size], listing.root, listing.folders, normal_labels, [])
        total = len(share_listing.files)
        chunks = image_chunks(share_listing, model.load_size, model.channels, CHUNK, stop)
    yield ProgressEvent("scoring", 0, total)
    first_skipped = listing.skipped if listing is not None else whole.skipped
    collected = _Collected(total, skipped=list(first_skipped) if world.main else [])
    rows_path = out_dir / ("scores.csv" if world.alone else f"scores.part{world.rank}.csv")
    rows = RowWriter(rows_path)
    stats = training_stats(checkpoint, method, config)
    done = 0
    try:
        for chunk in chunks:
            collected.skipped += chunk.skipped
            if len(chunk):
                # A chunk's pictures are kept while it is written: maps, masks and worst places need them.
                scores = yield from _relayed(scores_task(checkpoint, chunk.pixels, method, config, True, stop), done, total)
                if scores is None:
                    return None
                part = Detection(chunk, scores, float("inf"), stats, checkpoint_path)
                rows.write(part)
                if maps_dir is not None:
                    write_maps(maps_dir, part)
                collected.add(chunk, scores)
            done += len(chunk) + len(chunk.skipped)
            yield ProgressEvent("scoring", done, total)
        if stop is not None and stop.is_set():
            return None
    finally:
        rows.close()
    if not world.alone:
        shares = gather(collected, world)
        if not world.main:
            return {"rank": world.rank, "n_images": len(collected.ids)}
        collected = _merged(shares, every_id)
    if not collected.ids:
        detail = f" ({len(collected.skipped)} files skipped, first: {collected.skipped[0]})" if collected.skipped else ""
        raise EgbadError(f"{where} holds no readable image{detail}.")
    detection = _whole_detection(collected, normal_labels, where, model, stats, checkpoint_path)
    detection.choose_threshold(threshold)
    write_scores_csv(out_dir / "scores.csv", detection)
    if not world.alone:  # the processes' rows are in the one file now
        for rank in range(world.size):
            (out_dir / f"scores.part{rank}.csv").unlink(missing_ok=True)
    shown = _grid_rows(detection, only_flagged)
    pictures = whole.subset(shown) if whole is not None else _decoded(listing, detection, shown, model)
    grid_scores = yield from _relayed(scores_task(checkpoint, pictures.pixels, method, config, True, stop), 0, len(pictures), "pictures")
    if grid_scores is None:
        return None
    write_grid(out_dir / "grid.png", Detection(pictures, grid_scores, detection.threshold, stats, checkpoint_path))
    summary = detection.summary()
    maps, masks = (np.concatenate(collected.maps), np.concatenate(collected.masks)) if collected.maps else (None, None)
    summary.update(pixel_summary(maps, masks, collected.mask_notes))
    summary["folder_changes"] = listing.changes() if listing is not None else None
    write_summary(out_dir / "summary.json", summary)
    return summary


def _merged(shares: list[_Collected], every_id: list[str]) -> _Collected:
    """The processes' numbers as one, in the images' own order."""
    position = {image_id: i for i, image_id in enumerate(every_id)}
    merged = _Collected(sum(len(share.ids) for share in shares))
    rows = []  # (position, share, row in share)
    for s, share in enumerate(shares):
        merged.skipped += share.skipped
        merged.maps += share.maps
        merged.masks += share.masks
        merged.mask_notes += [n for n in share.mask_notes if n not in merged.mask_notes]
        merged.seconds = max(merged.seconds, share.seconds)  # side by side: the longest is the wall time
        merged.kind = merged.kind or share.kind
        rows += [(position.get(image_id, len(position)), s, r) for r, image_id in enumerate(share.ids)]
    rows.sort()
    merged.ids = [shares[s].ids[r] for _, s, r in rows]
    merged.labels = [shares[s].labels[r] for _, s, r in rows]
    if all(share.sizes for share in shares if share.ids):
        merged.sizes = [shares[s].sizes[r] for _, s, r in rows]
    for i, (_, s, r) in enumerate(rows):
        merged.numbers[i] = shares[s].numbers[r]
    return merged


def _slices(images: ImageSet) -> Iterator[ImageSet]:
    """An image set already in memory, CHUNK images at a time (its skipped files said once, before)."""
    for start in range(0, len(images), CHUNK):
        chunk = images.subset(slice(start, start + CHUNK))
        chunk.skipped = []
        yield chunk


def _relayed(task: Task[Any], offset: int, total: int, what: str | None = None) -> Task[Any]:
    """A chunk's task with its progress counted in the whole run's images (and named ``what``)."""
    while True:
        try:
            event = next(task)
        except StopIteration as end:
            return end.value
        if isinstance(event, ProgressEvent):
            event = ProgressEvent(what or event.what, offset + event.done, total)
        yield event


def _whole_detection(collected: _Collected, normal_labels, where: str, model, stats, checkpoint_path) -> Detection:
    """One Detection over every scored image; its ImageSet holds no pictures (a stand-in that takes
    no memory: one black image repeated), only what the tables and the summary need."""
    joined = collected.scores()
    count = len(collected.ids)
    stand_in = torch.zeros((1, model.channels, model.load_size, model.load_size), dtype=torch.uint8).expand(count, -1, -1, -1)
    images = ImageSet(stand_in, collected.labels, collected.ids, normal_labels, where, collected.skipped,
                      collected.sizes or None, mask_notes=collected.mask_notes)
    return Detection(images, joined, float("inf"), stats, checkpoint_path)


def _grid_rows(detection: Detection, only_flagged: bool) -> np.ndarray:
    """The rows the result grid shows: the most anomalous first (flagged ones only, if asked)."""
    order = np.argsort(-detection.scores.score, kind="stable")
    if only_flagged:
        order = order[detection.flagged[order]]
    return order[:GRID_IMAGES]


def _decoded(listing: Listing, detection: Detection, rows: np.ndarray, model) -> ImageSet:
    """The images at ``rows`` decoded again, in that order."""
    by_id = {relative_path(path, listing.root): (label, path) for label, path in listing.files}
    files = [by_id[detection.images.ids[i]] for i in rows.tolist()]
    subset = Listing(files, listing.root, listing.folders, listing.normal_labels, [])
    chunks = list(image_chunks(subset, model.load_size, model.channels, max(1, len(files))))
    if not chunks:
        return detection.images.subset([])
    return chunks[0]


__all__ = ["streaming_detection_task", "RowWriter", "CHUNK"]
