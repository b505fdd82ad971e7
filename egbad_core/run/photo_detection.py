"""A folder of photos scored at their own resolution into a Detection the window can hold.

Twenty photos of 20 megapixels are 1.2 GB decoded and their maps 1.6 GB more; the window keeps
neither. Each photo is decoded, scored in windows (``photos``) and dropped in turn; what is kept
is a thumbnail of it, of its reconstruction and of its map (the table and the strip up close), its
map at DETAIL_SIDE for the detail view (the photo itself is decoded again when it is opened there,
once), and a sample of its map's pixels for the pixel metrics.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.decoding import decode_image
from ..data.folders import image_chunks, scoring_listing
from ..data.images import joined_sets
from ..data.region import Region
from ..data.sources import DataSource
from ..errors import EgbadError
from ..events import ProgressEvent, Task
from ..pictures import to_rgb8
from ..score.scores import joined_scores
from .detection import Detection
from .photos import frame_note, photo_sample, photo_scores_task, thumbnail
from .scoring import ScoreRequest

DETAIL_SIDE = 1024  # the longer side a photo's map is kept at for the detail view (each cell its pixels' worst)


@dataclass
class PhotoRows:
    """What a Detection of photos keeps of each photo beyond its thumbnail."""

    paths: list[Path]  # the photo files, to decode again for the detail view
    maps: list[np.ndarray]  # (h, w) float16: the map with its longer side at most DETAIL_SIDE
    scale: float  # the share of their own pixels the photos were scored at
    note: str | None = None  # photos scored without the same-place comparison (``photos.frame_note``)


@dataclass
class PhotoView:
    """One photo up close: its pixels as scored, and its map and region of interest over them."""

    rgb: np.ndarray  # (H, W, 3) uint8 at the photo scale
    anomaly_map: np.ndarray  # (h, w) float32, reduced: it spans the photo
    inside: np.ndarray | None  # (H, W) bool: the region of interest, where there is one
    worst: tuple[int, int]  # (row, column) of the worst place in ``rgb``'s pixels
    reconstruction: np.ndarray | None = None  # (H, W, 3) uint8 G(E(x)), where it was kept (not for photos)


def photo_detection_task(request: ScoreRequest, source: DataSource, side: int,
                         stop: threading.Event | None = None) -> Task[Detection | None]:
    """Score the source's test photos one at a time at the model's photo scale; a Detection of
    their ``side``-px thumbnails with PhotoRows beside it, no threshold yet, or None if stopped."""
    listing = scoring_listing(source.with_normal_labels(request.checkpoint.normal_labels))
    if listing is None:
        raise EgbadError("a model that scores photos at their own resolution reads a folder of image files, not "
                         f"{source.describe()}.")
    model = request.checkpoint.networks.config
    request = request.frozen()
    images, scores, maps, paths, samples, labels = [], [], [], [], [], []
    skipped = list(listing.skipped)
    total = len(listing.files)
    yield ProgressEvent("scoring", 0, total)
    for done, chunk in enumerate(image_chunks(listing, model.load_size, model.channels, 1, stop, model.photo_scale), 1):
        skipped += chunk.skipped
        if len(chunk):
            scored = yield from photo_scores_task(request, chunk.pixels, stop)  # its windows' progress passes on
            if scored is None:
                return None
            sample = photo_sample(chunk, scored)
            if sample is not None:
                samples.append(sample[0])
                labels.append(sample[1])
            maps.append(_reduced(scored.residual_maps[0]))
            paths.append(listing.root / chunk.ids[0])
            small, small_scores = thumbnail(chunk, scored, side)
            images.append(small)
            scores.append(small_scores)
        yield ProgressEvent("scoring", done, total)
    if stop is not None and stop.is_set():
        return None
    if not images:
        raise EgbadError(f"{listing.root} holds no readable photo to score.")
    joined = joined_sets(images)
    joined.skipped = skipped
    detection = request.detection(joined, joined_scores(scores))
    sizes = [size for small in images for size in (small.sizes or [])]
    detection.photos = PhotoRows(paths, maps, model.photo_scale, frame_note(request.checkpoint.reference, sizes,
                                                                             model.photo_scale))
    if samples:
        detection.pixel_samples = (np.concatenate(samples), np.concatenate(labels), len(samples))
    return detection


def photo_view(detection: Detection, row: int, region: Region | None = None) -> PhotoView:
    """The photo of ``row`` decoded once at the scale it was scored at, with its map; raises
    EgbadError where the file can no longer be read."""
    photos = detection.photos
    if photos is None:
        raise ValueError("not a Detection of photos")
    path = photos.paths[row]
    try:
        pixels, _ = decode_image(path, 0, scale=photos.scale)
    except EgbadError as error:
        raise EgbadError(f"{path} {error}.") from None
    except FileNotFoundError:
        raise EgbadError(f"{path} is gone: it was moved or deleted after it was scored.") from None
    height, width = pixels.shape[-2:]
    inside = None if region is None else region.at((height, width))
    worst = detection.worst_places()
    row_col = (0, 0) if worst is None else tuple(int(v * photos.scale) for v in worst[row])
    return PhotoView(np.ascontiguousarray(pixels.transpose(1, 2, 0)), photos.maps[row].astype(np.float32),
                     inside, (min(row_col[0], height - 1), min(row_col[1], width - 1)))


def image_view(detection: Detection, row: int) -> PhotoView:
    """One image of a detection held in memory up close: the image as the model saw it, its
    reconstruction and its map (made again where the run did not keep them)."""
    pictures = detection.pictures([row])
    if pictures is None:
        raise EgbadError("this detection kept no reconstruction or map to show up close.")
    rgb = to_rgb8(detection.images.unit(row))
    height, width = rgb.shape[:2]
    places = detection.scores.places()
    worst = (0, 0) if places is None else (int(places[row, 0]), int(places[row, 1]))
    inside = None if detection.region is None else detection.region.at((height, width))
    return PhotoView(rgb, np.asarray(pictures[1][0], dtype=np.float32), inside, worst, to_rgb8(pictures[0][0]))


def _reduced(anomaly_map: np.ndarray) -> np.ndarray:
    """The map with its longer side at most DETAIL_SIDE, each cell its pixels' worst (a 5-px
    defect of a 4,096-px photo stays a bright cell)."""
    height, width = anomaly_map.shape
    shrink = max(1.0, max(height, width) / DETAIL_SIDE)
    if shrink == 1.0:
        return anomaly_map.astype(np.float16)
    size = (max(1, round(height / shrink)), max(1, round(width / shrink)))
    pooled = F.adaptive_max_pool2d(torch.from_numpy(np.ascontiguousarray(anomaly_map))[None, None], size)
    return pooled[0, 0].numpy().astype(np.float16)
