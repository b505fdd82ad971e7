"""Long work off the UI thread: a worker QObject moved to a QThread runs one task.

A task is what ``egbad_gui.tasks`` makes: a generator of events that takes a ``threading.Event``
as its stop and returns its result (``egbad_core.events``). The worker forwards each event as a
signal (progress events at most ten a second) and delivers the result; a stop is one call,
``TaskRunner.stop(name)``, honoured at the task's next yield, because the worker thread runs no
event loop and cannot be interrupted otherwise. Wiring follows superqt: thread.started → work;
finished → thread.quit and deleteLater; thread.finished → thread.deleteLater, all connected
before the thread starts.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from egbad_core.errors import EgbadError
from egbad_core.events import ProgressEvent, Task, Throttle

TaskFactory = Callable[[threading.Event], Task[Any]]  # the stop → the task


class TaskWorker(QObject):
    """Runs one task in its thread and turns its events, result and failure into signals."""
    event = Signal(object)
    done = Signal(object)  # the task's result
    failed = Signal(str)  # a plain sentence for the user
    finished = Signal()  # always, last

    def __init__(self, make: TaskFactory) -> None:
        super().__init__()
        self.make = make
        self.stop = threading.Event()

    @Slot()
    def work(self) -> None:
        try:
            run_in_background()
            result = self._drive(self.make(self.stop))
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

    def _drive(self, task: Task[Any]) -> Any:
        throttle = Throttle()
        while True:
            try:
                event = next(task)
            except StopIteration as end:
                return end.value
            if isinstance(event, ProgressEvent) and not throttle.ready(event.done, event.total):
                continue
            self.event.emit(event)


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
        make: TaskFactory,
        on_done: Callable[[Any], None],
        on_failed: Callable[[str], None],
        on_event: Callable[[Any], None] | None = None,
    ) -> TaskWorker | None:
        """Run the task ``make(stop)`` in a new thread; None (and nothing started) if ``name`` already runs."""
        if name in self._running:
            return None
        thread = QThread(self)
        thread.setObjectName(f"egbad-{name}")
        worker = TaskWorker(make)
        worker.moveToThread(thread)
        thread.started.connect(worker.work)
        # Plain callables connected to a worker's signal would run in the worker thread; a
        # relay living in this (the UI) thread makes every callback a queued call here.
        relay = _Relay(self, name, on_done, on_failed, on_event)
        queued = Qt.ConnectionType.QueuedConnection
        worker.done.connect(relay.deliver_done, queued)
        worker.failed.connect(relay.deliver_failed, queued)
        worker.event.connect(relay.deliver_event, queued)
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
        """Ask the task ``name`` to stop at its next yield."""
        if name in self._running:
            self._running[name].stop.set()

    def shutdown(self, timeout_ms: int = 120_000) -> bool:
        """Ask every task to stop and wait for each thread to end; True if all ended."""
        for worker in list(self._running.values()):
            worker.stop.set()
        ended = True
        for thread in list(self._threads.values()):
            thread.quit()
            ended = thread.wait(timeout_ms) and ended
        self._running.clear()
        self._threads.clear()
        return ended


class _Relay(QObject):
    """Receives one task's signals in the UI thread and hands them to the window's callbacks."""

    def __init__(self, runner: TaskRunner, name: str, on_done, on_failed, on_event) -> None:
        super().__init__(runner)
        self.runner, self.name = runner, name
        self.on_done, self.on_failed, self.on_event = on_done, on_failed, on_event
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
