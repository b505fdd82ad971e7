"""The events long work reports, and the one protocol every task follows.

A task (loading data, training, scoring) is a generator: each ``yield`` hands out one small
event and is a safe place to stop; a stop is one call, ``stop.set()`` on the
``threading.Event`` the task was given, honoured at the next yield. The generator's return
value is the task's result (``None`` where a stop came first, except training, whose result
is its FinishedEvent). The window forwards the events as signals, the command line draws them
as a progress bar; neither holds the logic.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Generator, TypeVar, Union

import numpy as np

T = TypeVar("T")


@dataclass(frozen=True)
class ProgressEvent:
    """``done`` of ``total`` units (files, images) of the task named ``what``."""

    what: str  # "loading", "scoring", ...
    done: int
    total: int


@dataclass(frozen=True)
class DeviceEvent:
    """Where the work runs, in words for the status bar, and the epoch training starts after."""

    device: str
    first_epoch: int = 0


@dataclass(frozen=True)
class IterationEvent:
    """One training iteration's losses, rate and time left."""
    epoch: int  # 1-based
    batch: int  # 1-based within the epoch
    batches: int
    iteration: int  # 1-based over the whole history, resumed runs included
    d_loss: float
    g_loss: float
    e_loss: float
    images_per_s: float  # this run so far
    eta_s: float  # to the end of the last epoch


def losses_text(d_loss: float, g_loss: float, e_loss: float, digits: int = 3, sep: str = " ") -> str:
    """The three losses as a person reads them; the refinement stage trains E and G on the
    reconstruction alone, so D and G have no adversarial loss there (NaN), which is said, not shown."""
    if math.isnan(d_loss) and math.isnan(g_loss):
        return f"refining G(E(x)):{sep}error {e_loss:.{digits}f}"
    return f"D {d_loss:.{digits}f}{sep}G {g_loss:.{digits}f}{sep}E {e_loss:.{digits}f}"


@dataclass(frozen=True)
class EpochEvent:
    """An epoch's mean losses, time, and the checkpoint written at its end."""
    epoch: int
    epochs: int
    d_loss: float  # means over the epoch's batches
    g_loss: float
    e_loss: float
    seconds: float
    images_per_s: float
    eta_s: float
    checkpoint: str | None  # written at its end, or None (checkpoints along the way are rationed: training.CHECKPOINT_SHARE)


@dataclass(frozen=True)
class PreviewEvent:
    """Pictures of progress: G(fixed z), and a few training images beside G(E(x))."""

    epoch: int
    generated: np.ndarray  # (n, C, S, S) in [0, 1]
    originals: np.ndarray
    reconstructions: np.ndarray
    fit: float | None = None  # R² of G(E(x)) over a sample of the training inputs (score/explained.py)


@dataclass(frozen=True)
class WarningEvent:
    """Something the user should know while training goes on (for instance a collapse)."""

    epoch: int
    kind: str
    message: str


@dataclass(frozen=True)
class FinishedEvent:
    """How a training run ended (completed, stopped or diverged), and where its checkpoint is."""
    reason: str  # "completed", "stopped" or "diverged"
    epochs_done: int
    seconds: float
    images_per_s: float
    checkpoint: str | None
    message: str
    fit: float | None = None  # R² of the last checkpoint's reconstructions of training inputs


@dataclass(frozen=True)
class InspectedEvent:
    """One image scored as it landed in a watched folder (live inspection)."""

    image_id: str
    score: float
    relative: float | None  # 1.0: the training images' 99th percentile
    flagged: bool
    worst: tuple[int, int] | None  # (row, column) of the worst place, in the file's own pixels
    latency: float  # seconds from the file's last write to its row in scores.csv
    view: np.ndarray | None = None  # (h, w, 3) uint8: the image with its map over it, where asked for

    def line(self) -> str:
        """The image's line as ``egbad watch`` prints it: name, verdict, score, latency."""
        relative = "" if self.relative is None else f" ({self.relative:.2f} × the training 99th pct)"
        return f"{self.image_id}\t{'FLAGGED' if self.flagged else 'ok'}\tscore {self.score:.3f}{relative}\t{self.latency:.2f} s"


@dataclass(frozen=True)
class NoteEvent:
    """A sentence about work that goes on: a file skipped, a folder gone or back."""

    message: str


Event = Union[ProgressEvent, DeviceEvent, IterationEvent, EpochEvent, PreviewEvent, WarningEvent, FinishedEvent,
              InspectedEvent, NoteEvent]
Task = Generator[Any, None, T]  # yields events, returns the task's result


def run_to_end(task: Task[T], on_event: Callable[[Any], None] | None = None) -> T:
    """Drive a task to its end on this thread, handing each event to ``on_event``; its result."""
    while True:
        try:
            event = next(task)
        except StopIteration as end:
            return end.value
        if on_event is not None:
            on_event(event)


def stopped(stop: threading.Event | None) -> bool:
    """True where a stop was asked for."""
    return stop is not None and stop.is_set()


class Throttle:
    """Lets a progress report through at most every ``interval_s`` seconds, and always the last
    one, so a fast loop does not flood a window with signals."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self._last = -1e9

    def ready(self, done: int, total: int) -> bool:
        now = time.monotonic()
        if done >= total or now - self._last >= self.interval_s:
            self._last = now
            return True
        return False


__all__ = [
    "ProgressEvent", "DeviceEvent", "IterationEvent", "EpochEvent", "PreviewEvent", "WarningEvent", "FinishedEvent",
    "Event", "Task", "run_to_end", "stopped", "Throttle",
]
