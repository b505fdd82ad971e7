"""Live inspection from a camera or a video (``egbad watch --video``): frames scored as they come.

OpenCV's VideoCapture (the ``video`` extra: ``pip install ".[video]"``) opens a camera by its
index (0, 1, …), a stream's URL or a video file. Every ``every``-th frame is made into pixels as a
decoded file would be (RGB, then Pillow's bicubic to the model's size, or its photo scale),
scored, and its row appended to scores.csv under the id ``<source>-frame000123``; flagged frames
are written as PNG where flagged images go. A file ends the watch at its last frame (restarted,
the frames scored already are skipped); a camera runs until stopped.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data.decoding import scaled_size, to_gray
from ..data.images import ImageSet
from ..errors import EgbadError
from ..events import NoteEvent, Task, stopped
from .scoring import ScoreRequest
from .watching import WatchLog, WatchPlan, score_one

DROPPED_READS = 50  # a camera that gives no frame this many times in a row is said to be gone


def open_capture(source: str):
    """An opened cv2.VideoCapture of a camera index, a URL or a file; raises EgbadError."""
    try:
        import cv2
    except ImportError:
        raise EgbadError('reading a camera or a video needs the video extra: pip install "egbad-inspector[video]" '
                         '(or ".[video]" in a checkout).') from None
    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not capture.isOpened():
        capture.release()
        raise EgbadError(f"the video source {source} cannot be opened (no such camera, file or stream, or one "
                         "OpenCV cannot read).")
    return capture


def frame_images(frame: np.ndarray, request: ScoreRequest, image_id: str) -> ImageSet:
    """One BGR frame (H, W, 3) as the model takes an image file's pixels."""
    config = request.checkpoint.networks.config
    picture = Image.fromarray(np.ascontiguousarray(frame[..., ::-1]))
    height, width = frame.shape[:2]
    size = scaled_size(height, width, config.photo_scale) if config.photo_scale else (config.load_size, config.load_size)
    if picture.size != (size[1], size[0]):
        picture = picture.resize((size[1], size[0]), Image.Resampling.BICUBIC)
    pixels = torch.from_numpy(np.asarray(picture, dtype=np.uint8).transpose(2, 0, 1).copy())[None]
    if config.channels == 1:
        pixels = to_gray(pixels)
    return ImageSet(pixels, [""], [image_id], None, "video", [], [(height, width)], scale=config.photo_scale)


def video_task(request: ScoreRequest, source: str, plan: WatchPlan, stop: threading.Event | None = None,
               every: int = 1) -> Task[tuple[int, int]]:
    """Score every ``every``-th frame of a camera or video until it ends or ``stop`` is set: an
    InspectedEvent per frame; returns how many this run scored and flagged."""
    capture = open_capture(source)
    request = request.frozen()
    log = WatchLog(request, plan, f"camera {source}" if source.isdigit() else source)
    # A file's frames keep their ids from run to run (a restart skips those scored); a camera's
    # carry the time its watch began.
    name = f"camera{source}-{time.strftime('%Y%m%dT%H%M%S')}" if source.isdigit() else Path(source).stem
    yield log.opening
    index = dropped = 0
    try:
        while not stopped(stop):
            ok, frame = capture.read()
            arrived = time.time()
            if not ok:
                dropped += 1
                if not source.isdigit() or dropped >= DROPPED_READS:
                    yield NoteEvent(f"{source} ended after {index} frames." if not source.isdigit()
                                    else f"camera {source} gives no more frames; the watch ends.")
                    break
                continue
            dropped, index = 0, index + 1
            image_id = f"{name}-frame{index:06d}"
            if (index - 1) % every or image_id in log.rows.ids:
                continue
            detection = yield from score_one(request, frame_images(frame, request, image_id), stop)
            if detection is None:
                break
            keep = lambda folder, frame=frame, image_id=image_id: Image.fromarray(  # noqa: E731
                np.ascontiguousarray(frame[..., ::-1])).save(folder / f"{image_id}.png")
            yield log.record(detection, arrived, keep)
    finally:
        capture.release()
        counts = log.close()
    return counts
