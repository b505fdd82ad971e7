"""Long work off the UI thread: superqt's GeneratorWorker runs one task in Qt's thread pool.

A task is what ``egbad_gui.tasks`` makes: a generator of events that takes a ``threading.Event``
as its stop and returns its result (``egbad_core.events``). superqt drives the generator and
emits each yield as ``yielded`` and the return value as ``returned``; ``TaskRunner`` adds what the
window needs on top: names (one run of each at a time), the task's own stop, progress events
thinned to ten a second, and failures as one plain sentence.

Kept here, not taken from superqt, and why:

* **The stop.** superqt's ``quit()`` abandons a generator at its next yield; training must instead
  see the stop, write its stopped checkpoint and return. So a stop sets the task's
  ``threading.Event``, and ``shutdown`` waits for the pool rather than calling
  ``WorkerBase.await_workers`` (which quits every worker).
* **Errors.** ``GeneratorWorker.work`` catches a ``RuntimeError`` raised inside the generator as
  "the worker was deleted" and emits neither ``errored`` nor ``returned``: torch's out-of-memory
  error and a dead DataLoader worker are RuntimeErrors, and the window would wait for ever. The
  generator superqt runs (``_guarded``) therefore never raises; a failure comes back as its return
  value, a ``_Failed`` with the sentence to show.
* **Where callbacks run.** superqt emits from the pool thread; a plain callable connected there
  runs in that thread. A ``_Relay`` QObject in the UI thread receives the signals through queued
  connections, so every callback runs on the UI thread.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Generator

from PySide6.QtCore import QObject, Qt, QThreadPool, Slot
from superqt.utils import GeneratorWorker

from egbad_core.errors import EgbadError
from egbad_core.events import ProgressEvent, Task, Throttle

TaskFactory = Callable[[threading.Event], Task[Any]]  # the stop → the task
BACKGROUND_NICENESS = 10  # Linux nice value of worker threads; the UI thread stays at 0


@dataclass(frozen=True)
class _Failed:
    """A task that ended in an exception: the sentence the window shows."""

    message: str


def _guarded(make: TaskFactory, stop: threading.Event) -> Generator[Any, None, Any]:
    """``make(stop)`` as superqt runs it: at a lower priority, progress thinned, and never raising."""
    run_in_background()
    throttle = Throttle()
    try:
        task = make(stop)
        while True:
            try:
                event = next(task)
            except StopIteration as end:
                return end.value
            if isinstance(event, ProgressEvent) and not throttle.ready(event.done, event.total):
                continue
            yield event
    except EgbadError as error:
        return _Failed(str(error))
    except MemoryError:
        return _Failed("Out of memory: lower the batch size or use fewer images.")
    except Exception as error:  # noqa: BLE001 - shown to the user, printed for the developer
        traceback.print_exc(file=sys.stderr)
        return _Failed(_plain(error))


def run_in_background() -> None:
    """Lower the calling thread's scheduling priority, so the UI thread gets a core the moment
    it wakes even while training keeps every core busy.

    On Linux the niceness of one thread is set through its thread id, and the OpenMP threads
    torch starts from this thread inherit it."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)
        except OSError:  # not allowed here: run at normal priority
            pass


def _plain(error: Exception) -> str:
    text = str(error)
    if "out of memory" in text.lower():
        return "The GPU ran out of memory: lower the batch size (training or scoring) or choose the CPU."
    return f"Unexpected error ({type(error).__name__}: {text.splitlines()[0] if text else ''}). Details went to the console."


class TaskRunner(QObject):
    """Starts named tasks in worker threads, keeps them alive, stops them all on close.

    A name counts as running until its result (or failure) is delivered, so the window's
    handlers already see it as finished; the worker itself counts until its thread is done."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: dict[str, threading.Event] = {}  # name → the task's stop
        self._workers: set[GeneratorWorker] = set()

    def is_running(self, name: str) -> bool:
        return name in self._running

    def any_running(self) -> bool:
        return bool(self._running) or bool(self._workers)

    def start(
        self,
        name: str,
        make: TaskFactory,
        on_done: Callable[[Any], None],
        on_failed: Callable[[str], None],
        on_event: Callable[[Any], None] | None = None,
    ) -> GeneratorWorker | None:
        """Run the task ``make(stop)`` in a worker thread; None (and nothing started) if ``name`` already runs."""
        if name in self._running:
            return None
        stop = threading.Event()
        worker = GeneratorWorker(_guarded, make, stop)
        relay = _Relay(self, name, worker, stop, (on_done, on_failed, on_event))
        queued = Qt.ConnectionType.QueuedConnection
        worker.yielded.connect(relay.deliver_event, queued)
        worker.returned.connect(relay.deliver_result, queued)
        worker.finished.connect(relay.ended, queued)
        self._running[name] = stop
        self._workers.add(worker)
        worker.start()
        return worker

    def stop(self, name: str) -> None:
        """Ask the task ``name`` to stop at its next yield."""
        if name in self._running:
            self._running[name].set()

    def shutdown(self, timeout_ms: int = 120_000) -> bool:
        """Ask every task to stop and wait for each worker to end; True if all ended."""
        for stop in self._running.values():
            stop.set()
        ended = QThreadPool.globalInstance().waitForDone(timeout_ms)
        self._running.clear()
        self._workers.clear()
        return ended


class _Relay(QObject):
    """Receives one task's signals in the UI thread and hands them to the window's callbacks."""

    def __init__(self, runner: TaskRunner, name: str, worker: GeneratorWorker, stop: threading.Event,
                 callbacks: tuple) -> None:
        super().__init__(runner)
        self.runner, self.name, self.worker, self.stop = runner, name, worker, stop
        self.on_done, self.on_failed, self.on_event = callbacks

    def _free_name(self) -> None:
        """The name is free for the next task; a later run under the same name keeps it."""
        if self.runner._running.get(self.name) is self.stop:
            del self.runner._running[self.name]

    @Slot()
    def ended(self) -> None:
        self._free_name()
        self.runner._workers.discard(self.worker)
        self.worker = None
        self.deleteLater()

    @Slot(object)
    def deliver_result(self, result: Any) -> None:
        self._free_name()  # before the window reacts
        if isinstance(result, _Failed):
            self.on_failed(result.message)
        else:
            self.on_done(result)

    @Slot(object)
    def deliver_event(self, payload: Any) -> None:
        if self.on_event is not None:
            self.on_event(payload)
