"""Scoring an image set of any size: a chunk at a time, each chunk's rows written as it is scored.

``egbad detect`` runs this. Memory holds one chunk of images (decoded ahead by DataLoader workers)
and, per image, only its id, label and numbers, so 100,000 images need little more than 1,000.
``scores.csv`` grows by a chunk's rows once the chunk is scored and flushed, so a run killed
midway leaves the rows it scored; at the end the file is rewritten whole (atomically) with the
``flagged`` column filled, which needs the threshold and so every score (``results``). Each image
is decoded and scored once: the result grid shows the most anomalous images from pictures kept
as the run goes (at most GRID_IMAGES of them), and the maps are written from the chunk in hand.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ..data.folders import Listing, image_chunks, relative_path, scoring_listing
from ..data.images import ImageSet, SkippedFile, joined_sets
from ..data.loading import scoring_images_task
from ..data.sources import DataSource
from ..errors import EgbadError
from ..events import ProgressEvent, Task
from ..score.scores import Scores, joined_scores
from ..system.files import ensure_writable_folder
from ..system.distributed import ALONE, World, gather
from .corrections import read_corrections
from .detection import Detection, pixel_summary
from .grid import GRID_IMAGES, write_grid
from .maps import write_maps
from .photos import frame_note, photo_sample, photo_scores_task, thumbnail
from .results import ScoresFile, write_scores_csv, write_summary
from .scoring import ScoreRequest

RESULT_FILES = ("scores.csv", "grid.png", "summary.json")  # what a run leaves in its folder
CHUNK = 256  # images scored between two writes of rows
PIXEL_METRIC_LIMIT = 64_000_000  # map pixels kept for pixel AUROC and PRO, at most (256 MB of float32)


class _Pictures:
    """The most anomalous images met so far, with their pictures, at most ``limit``: what the result
    grid shows, kept as the run goes so that no image is decoded or scored a second time for it."""

    def __init__(self, limit: int = GRID_IMAGES) -> None:
        self.limit = limit
        self.images: ImageSet | None = None
        self.scores: Scores | None = None

    def add(self, images: ImageSet, scores: Scores) -> None:
        """Keep the highest scores of what was kept and of ``images``, the earlier first at a tie."""
        best = np.argsort(-scores.score, kind="stable")[: self.limit]
        images, scores = images.subset(best), scores.subset(best)
        if self.images is not None:
            images, scores = joined_sets([self.images, images]), joined_scores([self.scores, scores])
        keep = np.argsort(-scores.score, kind="stable")[: self.limit]
        self.images, self.scores = images.subset(keep), scores.subset(keep)


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
    pixel_photos: int = 0  # photos at their own resolution whose pixel samples are in ``maps`` (not whole maps)
    pictures: _Pictures = field(default_factory=_Pictures)  # what the grid shows

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
        self.pictures.add(chunk, scores)
        if self.kind is None:
            self.kind = scores.subset(np.arange(0))
        for note in chunk.mask_notes:
            if note not in self.mask_notes:
                self.mask_notes.append(note)
        known = chunk.mask_known
        if known is not None and known.any() and scores.residual_maps is not None:
            if self.map_pixels + int(known.sum()) * scores.residual_maps[0].size <= PIXEL_METRIC_LIMIT:
                self.maps.append(scores.residual_maps[known])
                self.masks.append(chunk.masks[known])
                self.map_pixels += self.maps[-1].size

    def add_photo(self, chunk: ImageSet, scores: Scores, side: int) -> None:
        """A photo scored at its own resolution: its pixel metrics from a sample of its own map and
        mask, the rest as a thumbnail of ``side`` px (the grid's pictures are small)."""
        sample = photo_sample(chunk, scores) if self.map_pixels < PIXEL_METRIC_LIMIT else None
        if sample is not None:
            self.maps.append(sample[0])
            self.masks.append(sample[1])
            self.map_pixels += sample[0].size
            self.pixel_photos += 1
        self.add(*thumbnail(chunk, scores, side))

    def scores(self) -> Scores:
        """Every image's numbers as one Scores, without pictures."""
        numbers = self.numbers[: len(self.ids)]
        kind = self.kind
        places = None if kind.worst_places is None else numbers[:, 3:].astype(np.int64)
        return Scores(kind.method, numbers[:, 0].copy(), numbers[:, 1].copy(), numbers[:, 2].copy(), None, None,
                      self.seconds, kind.lam, places, kind.local)


@dataclass
class _Plan:
    """What a run reads: its chunks, how many images, and what is known of them before the first."""

    chunks: Iterator[ImageSet]
    total: int
    normal_labels: frozenset[str] | None
    where: str
    every_id: list[str]
    skipped: list[SkippedFile]
    listing: Listing | None
    corrections: dict[str, bool] = field(default_factory=dict)  # an inspector's marks (``corrections``)


def streaming_detection_task(
    request: ScoreRequest,
    source: DataSource,
    out_dir: str | Path,
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
    source = source.with_normal_labels(request.checkpoint.normal_labels)
    request = request.frozen()
    corrections = read_corrections(source)  # a broken file is said before any image is scored
    plan = yield from _planned(source, request, world, stop)
    if plan is None:
        return None
    plan.corrections = corrections
    collected = yield from _scored(request, plan, out_dir, maps_dir, stop, world)
    if collected is None:
        return None
    if not world.alone:
        shares = gather(collected, world)
        if not world.main:
            return {"rank": world.rank, "n_images": len(collected.ids)}
        collected = _merged(shares, plan.every_id)
    return _written(request, collected, plan, out_dir, only_flagged, world)


def _planned(source: DataSource, request: ScoreRequest, world: World,
             stop: threading.Event | None) -> Task[_Plan | None]:
    """This process's share of the images, as chunks: a folder's files decoded a chunk at a time, a
    CSV or the demo read whole (it is in memory as a table anyway)."""
    model = request.checkpoint.networks.config
    listing = scoring_listing(source)
    if listing is None:
        whole = yield from scoring_images_task(source, model.load_size, model.channels, stop)
        if whole is None:
            return None
        share = whole.subset(np.arange(world.rank, len(whole), world.size))
        return _Plan(_slices(share), len(share), whole.normal_labels, whole.source, whole.ids, whole.skipped, None)
    every_id = [relative_path(path, listing.root) for _, path in listing.files]
    mine = Listing(listing.files[world.rank :: world.size], listing.root, listing.folders, listing.normal_labels, [])
    chunks = image_chunks(mine, model.load_size, model.channels, CHUNK, stop, model.photo_scale)
    return _Plan(chunks, len(mine.files), listing.normal_labels, str(listing.root), every_id, listing.skipped, listing)


def _scored(request: ScoreRequest, plan: _Plan, out_dir: Path, maps_dir: Path | None,
            stop: threading.Event | None, world: World) -> Task["_Collected | None"]:
    """Every chunk scored, its rows appended to the scores file and its maps written; what is kept
    of them, or None if stopped."""
    yield ProgressEvent("scoring", 0, plan.total)
    collected = _Collected(plan.total, skipped=list(plan.skipped) if world.main else [])
    rows = ScoresFile(out_dir / ("scores.csv" if world.alone else f"scores.part{world.rank}.csv"))
    model = request.checkpoint.networks.config
    done = 0
    try:
        for chunk in plan.chunks:
            collected.skipped += chunk.skipped
            if len(chunk):
                # A chunk's pictures are kept while it is written: maps, masks and worst places need them.
                task = (photo_scores_task(request, chunk.pixels, stop) if model.full_resolution
                        else request.task(chunk.pixels, True, stop, request.inside_of(chunk.pixels.shape[-2:])))
                scores = yield from _relayed(task, done, plan.total)
                if scores is None:
                    return None
                part = request.detection(chunk, scores)
                rows.append(part)
                if maps_dir is not None:
                    write_maps(maps_dir, part)
                if model.full_resolution:
                    collected.add_photo(chunk, scores, model.load_size)
                else:
                    collected.add(chunk, scores)
            done += len(chunk) + len(chunk.skipped)
            yield ProgressEvent("scoring", done, plan.total)
        if stop is not None and stop.is_set():
            return None
    finally:
        rows.close()
    return collected


def _written(request: ScoreRequest, collected: "_Collected", plan: _Plan, out_dir: Path, only_flagged: bool,
             world: World) -> dict[str, Any]:
    """The threshold set over every score, and the final scores.csv, grid and summary; the summary."""
    if not collected.ids:
        skipped = collected.skipped
        detail = f" ({len(skipped)} files skipped, first: {skipped[0]})" if skipped else ""
        raise EgbadError(f"{plan.where} holds no readable image{detail}.")
    detection = _whole_detection(collected, plan, request)
    detection.corrections = plan.corrections
    detection.choose_threshold(request.threshold)
    write_scores_csv(out_dir / "scores.csv", detection)
    if not world.alone:  # the processes' rows are in the one file now
        for rank in range(world.size):
            (out_dir / f"scores.part{rank}.csv").unlink(missing_ok=True)
    shown = collected.pictures
    grid = Detection(shown.images, shown.scores, detection.threshold, detection.train_stats, request.checkpoint_path)
    write_grid(out_dir / "grid.png", grid, only_flagged)
    summary = detection.summary()
    maps, masks = (np.concatenate(collected.maps), np.concatenate(collected.masks)) if collected.maps else (None, None)
    summary.update(pixel_summary(maps, masks, collected.mask_notes, collected.pixel_photos or None))
    summary["folder_changes"] = plan.listing.changes() if plan.listing is not None else None
    model = request.checkpoint.networks.config
    region = request.region
    summary["region_of_interest"] = region.describe(collected.sizes) if region is not None else None
    summary["same_place"] = frame_note(request.checkpoint.reference, collected.sizes, model.photo_scale)
    summary["photo_scale"] = model.photo_scale or None  # set: each photo scored at that share of its own pixels
    summary["pixels_per_mm"] = model.photo_scale * model.pixels_per_mm or None  # the scale scored at, where given
    if model.full_resolution:
        summary["megapixels_per_s"] = sum(h * w for h, w in collected.sizes) * model.photo_scale**2 / 1e6 / max(collected.seconds, 1e-9)
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
        if share.pictures.images is not None:
            merged.pictures.add(share.pictures.images, share.pictures.scores)
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


def _whole_detection(collected: _Collected, plan: _Plan, request: ScoreRequest) -> Detection:
    """One Detection over every scored image; its ImageSet holds no pictures (a stand-in that takes
    no memory: one black image repeated), only what the tables and the summary need."""
    model = request.checkpoint.networks.config
    count = len(collected.ids)
    stand_in = torch.zeros((1, model.channels, model.load_size, model.load_size), dtype=torch.uint8).expand(count, -1, -1, -1)
    images = ImageSet(stand_in, collected.labels, collected.ids, plan.normal_labels, plan.where, collected.skipped,
                      collected.sizes or None, mask_notes=collected.mask_notes)
    return request.detection(images, collected.scores())


__all__ = ["streaming_detection_task", "RESULT_FILES", "CHUNK"]
