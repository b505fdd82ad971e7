"""Long work off the UI thread: a worker QObject moved to a QThread runs one task function.

A task is a plain function taking a TaskState; it reports through ``state.emit`` (events),
``state.progress`` (throttled) and checks ``state.stop``, a threading.Event set from the UI
thread, because the worker thread runs no event loop and cannot be interrupted otherwise.
Wiring follows superqt: thread.started → work; finished → thread.quit and deleteLater;
thread.finished → thread.deleteLater, all connected before the thread starts.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from egbad_core.errors import EgbadError


class TaskState:
    """What a task function gets: a stop flag and two ways to report."""

    PROGRESS_INTERVAL_S = 0.1  # at most ten progress signals a second

    def __init__(self, worker: "TaskWorker") -> None:
        self.stop = threading.Event()
        self._worker = worker
        self._last_progress = 0.0

    def emit(self, payload: Any) -> None:
        self._worker.event.emit(payload)

    def progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - self._last_progress >= self.PROGRESS_INTERVAL_S:
            self._last_progress = now
            self._worker.progress.emit(int(done), int(total))


class TaskWorker(QObject):
    event = Signal(object)
    progress = Signal(int, int)
    done = Signal(object)  # the task function's return value
    failed = Signal(str)  # a plain sentence for the user
    finished = Signal()  # always, last

    def __init__(self, task: Callable[[TaskState], Any]) -> None:
        super().__init__()
        self.task = task
        self.state = TaskState(self)

    @Slot()
    def work(self) -> None:
        try:
            run_in_background()
            result = self.task(self.state)
        except EgbadError as error:
            self.failed.emit(str(error))
        except MemoryError:
            self.failed.emit("Out of memory: lower the batch size or use fewer images.")
        except Exception as error:  # noqa: BLE001 - shown to the user, printed for the developer
            traceback.print_exc(file=sys.stderr)
            self.failed.emit(_plain(error))
        else:
            self.done.emit(result)
        finally:
            self.finished.emit()


BACKGROUND_NICENESS = 10  # Linux nice value of worker threads; the UI thread stays at 0


def run_in_background() -> None:
    """Lower the calling thread's scheduling priority, so the UI thread gets a core the moment
    it wakes even while training keeps every core busy.

    On Linux the niceness of one thread is set through its thread id, and the OpenMP threads
    torch starts from this thread inherit it. Elsewhere the QThread's LowPriority does the same.
    """
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
    """Starts named tasks in threads, keeps them alive, stops them all on close.

    A name counts as running until its result (or failure) is delivered, so the window's
    handlers already see it as finished; the thread object itself lives until it ends.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: dict[str, TaskWorker] = {}
        self._threads: dict[int, QThread] = {}

    def is_running(self, name: str) -> bool:
        return name in self._running

    def any_running(self) -> bool:
        return bool(self._running) or bool(self._threads)

    def start(
        self,
        name: str,
        task: Callable[[TaskState], Any],
        on_done: Callable[[Any], None],
        on_failed: Callable[[str], None],
        on_event: Callable[[Any], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> TaskWorker | None:
        """Run ``task`` in a new thread; None (and nothing started) if ``name`` already runs."""
        if name in self._running:
            return None
        thread = QThread(self)
        thread.setObjectName(f"egbad-{name}")
        worker = TaskWorker(task)
        worker.moveToThread(thread)
        thread.started.connect(worker.work)
        # Plain callables connected to a worker's signal would run in the worker thread; a
        # relay living in this (the UI) thread makes every callback a queued call here.
        relay = _Relay(self, name, on_done, on_failed, on_event, on_progress)
        queued = Qt.ConnectionType.QueuedConnection
        worker.done.connect(relay.deliver_done, queued)
        worker.failed.connect(relay.deliver_failed, queued)
        worker.event.connect(relay.deliver_event, queued)
        worker.progress.connect(relay.deliver_progress, queued)
        worker.finished.connect(thread.quit)
        worker.finished.connect(worker.deleteLater)
        thread.finished.connect(relay.thread_ended, queued)
        thread.finished.connect(thread.deleteLater)
        self._running[name] = worker
        self._threads[id(thread)] = thread
        relay.thread_key = id(thread)
        thread.start(QThread.Priority.LowPriority)
        return worker

    def stop(self, name: str) -> None:
        if name in self._running:
            self._running[name].state.stop.set()

    def shutdown(self, timeout_ms: int = 120_000) -> bool:
        """Ask every task to stop and wait for each thread to end; True if all ended."""
        for worker in list(self._running.values()):
            worker.state.stop.set()
        ended = True
        for thread in list(self._threads.values()):
            thread.quit()
            ended = thread.wait(timeout_ms) and ended
        self._running.clear()
        self._threads.clear()
        return ended


class _Relay(QObject):
    """Receives one task's signals in the UI thread and hands them to the window's callbacks."""

    def __init__(self, runner: TaskRunner, name: str, on_done, on_failed, on_event, on_progress) -> None:
        super().__init__(runner)
        self.runner, self.name = runner, name
        self.on_done, self.on_failed, self.on_event, self.on_progress = on_done, on_failed, on_event, on_progress
        self.thread_key = 0

    @Slot()
    def thread_ended(self) -> None:
        self.runner._threads.pop(self.thread_key, None)
        self.deleteLater()

    @Slot(object)
    def deliver_done(self, result: Any) -> None:
        self.runner._running.pop(self.name, None)  # free the name before the window reacts
        self.on_done(result)

    @Slot(str)
    def deliver_failed(self, message: str) -> None:
        self.runner._running.pop(self.name, None)
        self.on_failed(message)

    @Slot(object)
    def deliver_event(self, payload: Any) -> None:
        if self.on_event is not None:
            self.on_event(payload)

    @Slot(int, int)
    def deliver_progress(self, done: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(done, total)
