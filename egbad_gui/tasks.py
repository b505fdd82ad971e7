"""The window's jobs as plain task functions: no Qt here, so each can be run and tested alone.

Every function returns a task in the sense of ``egbad_core.events``: a generator of events that
takes a ``threading.Event`` as its stop and returns its result. ``workers.TaskRunner`` runs them
in a QThread and forwards the events; a test can run one with ``run_to_end``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from egbad_core import session
from egbad_core.config import Preset
from egbad_core.events import FinishedEvent, IterationEvent, ProgressEvent, Task

LOSS_INTERVAL_S = 0.1  # loss points reach the window at most ten times a second


@dataclass
class LossBatch:
    """The iterations' losses since the last batch, and the latest IterationEvent for progress."""

    losses: np.ndarray  # (k, 3) D, G, E
    latest: IterationEvent


def batched_losses(events: Task[Any], interval_s: float = LOSS_INTERVAL_S) -> Task[Any]:
    """The same task with its IterationEvents gathered into LossBatches at most every ``interval_s``;
    every other event passes through, after the losses that came before it."""
    pending: list[tuple[float, float, float]] = []
    latest: IterationEvent | None = None
    last = time.monotonic()
    while True:
        try:
            event = next(events)
        except StopIteration as end:
            if pending:
                yield LossBatch(np.array(pending), latest)
            return end.value
        if isinstance(event, IterationEvent):
            pending.append((event.d_loss, event.g_loss, event.e_loss))
            latest = event
            if time.monotonic() - last < interval_s:
                continue
            yield LossBatch(np.array(pending), latest)
            pending, last = [], time.monotonic()
            continue
        if pending:
            yield LossBatch(np.array(pending), latest)
            pending, last = [], time.monotonic()
        yield event


def load_data(request: dict, image_size: int, channels: int | None, scale: float, stop: threading.Event) -> Task[Any]:
    """Load a data source (``session.load_data``), photos at ``scale`` of their own pixels where above 0."""
    return session.load_data(request, image_size, channels, stop, scale)


def train(
    data: session.LoadedData,
    checkpoint_path: str,
    settings: Preset,
    resume: session.Checkpoint | None,
    stop: threading.Event,
) -> Iterator[Any]:
    """A new run with ``settings`` (the panel's), or ``resume`` continued up to the epochs in
    ``settings``; returns (FinishedEvent, the checkpoint as written, or None where none was)."""
    if resume is not None:
        trainer = session.make_trainer(data.source, checkpoint_path, resume=resume, epochs=settings.train.total_epochs,
                                       device=settings.train.device, train_set=data.train)
    else:
        trainer = session.make_trainer(data.source, checkpoint_path, settings, train_set=data.train)
    finished: FinishedEvent = yield from batched_losses(session.training(trainer, stop))
    written = session.load_checkpoint(trainer.last_checkpoint) if trainer.last_checkpoint else None
    return finished, written


def detect(request: session.ScoreRequest, data: session.LoadedData, stop: threading.Event) -> Task[Any]:
    """Score the loaded test images (``session.detect``), reloading them at the model's size if needed."""
    return session.detect(request, data.source, data.test, stop)


def photo_up_close(detection: session.Detection, row: int, region: session.Region | None,
                   stop: threading.Event) -> Task[Any]:
    """Decode one scored photo once at the scale it was scored at, its map beside it."""
    yield ProgressEvent("decoding the photo", 0, 1)
    return session.photo_view(detection, row, region)


def load_checkpoint(path: str, device: str, stop: threading.Event) -> Task[Any]:
    """Read a checkpoint onto the chosen device."""
    return session.load_checkpoint(path, session.resolve_device(device))
    yield  # a task with no events: nothing to report while one file is read


def save_checkpoint(path: str, model: session.Checkpoint, stop: threading.Event) -> Task[str]:
    """Write the model to ``path``; the path written."""
    return str(session.save_checkpoint(path, model))
    yield


def export(detection: session.Detection, what: str, path: str, only_flagged: bool, stop: threading.Event) -> Task[str]:
    """Write one result file (grid, csv or summary); the path written."""
    return str(session.export(detection, what, path, only_flagged))
    yield


def export_model(model: session.Checkpoint, folder: str, threshold: float | None, path: str | None,
                 photo_size: tuple[int, int] | None, stop: threading.Event) -> Task[Any]:
    """Write the model as ONNX with its description, checked against the app's scores (a photo
    model for photos of ``photo_size``)."""
    yield ProgressEvent("exporting the model", 0, 1)
    return session.export_onnx(model, folder, threshold, path, photo_size)


def watch(request: session.ScoreRequest, plan: session.WatchPlan, stop: threading.Event) -> Task[Any]:
    """Score a folder's images as they land until stopped (``session.watch_task``)."""
    return session.watch_task(request, plan, stop)

