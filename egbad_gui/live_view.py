"""The Live tab: a folder watched, each part scored as it lands (``session.watch_task``).

The newest part large with its map over it, the counts of parts and of flagged parts, the rate, a
red alarm for a flagged part that stays until it is acknowledged (Space), pause and resume. The
watch runs in a worker; pausing ends it (``scores.csv`` in the folder's ``inspected/`` keeps what
was scored) and resuming starts it again, which scores only what came meanwhile.
"""

from __future__ import annotations

import time
from collections import deque
from functools import partial
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QPushButton, QSizePolicy, QVBoxLayout, QWidget,
)

from egbad_core import session
from egbad_core.errors import EgbadError
from egbad_core.events import InspectedEvent, NoteEvent

from . import tasks
from .images import pixmap_from_rgb
from .workers import TaskRunner

LIVE_FOLDER_KEY = "live/folder"
RATE_WINDOW = 20  # parts the rate is taken over
ALARM_STYLE = "background: #c62828; color: white; font-weight: bold; font-size: 15px; padding: 8px; border-radius: 4px"


class LiveView(QWidget):
    """Watch a folder with the window's model; draws what the watch reports."""

    inspected = Signal(object)  # an InspectedEvent, after it is drawn

    def __init__(self, runner: TaskRunner, model: Callable[[], tuple], settings: QSettings) -> None:
        super().__init__()
        self.runner, self.model, self.settings = runner, model, settings
        self.counts = [0, 0]  # parts, flagged: this watch's, paused or not
        self.times: deque[float] = deque(maxlen=RATE_WINDOW)
        self.folder = QLineEdit(str(settings.value(LIVE_FOLDER_KEY, "")))
        self.folder.setPlaceholderText("the folder the camera writes into")
        choose = QPushButton("Choose…")
        choose.clicked.connect(self._choose)
        self.start_button = QPushButton("Start watching")
        self.start_button.setObjectName("liveStartButton")
        self.start_button.clicked.connect(self.toggle)
        top = QHBoxLayout()
        for widget, stretch in ((QLabel("Folder"), 0), (self.folder, 1), (choose, 0), (self.start_button, 0)):
            top.addWidget(widget, stretch)
        self.alarm = QLabel("")
        self.alarm.setObjectName("liveAlarm")
        self.alarm.setStyleSheet(ALARM_STYLE)
        self.alarm.setVisible(False)
        self.picture = QLabel("No part yet: choose the folder and Start watching.")
        self.picture.setObjectName("livePicture")
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumSize(320, 320)
        self.picture.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.caption = QLabel("")
        self.caption.setObjectName("liveCaption")
        self.counts_label = QLabel("")
        self.counts_label.setObjectName("liveCounts")
        self.counts_label.setStyleSheet("font-weight: bold")
        self.notes = QPlainTextEdit()
        self.notes.setReadOnly(True)
        self.notes.setMaximumBlockCount(200)
        self.notes.setMaximumHeight(90)
        layout = QVBoxLayout(self)
        for widget in (self.alarm, self.picture, self.caption, self.counts_label, self.notes):
            layout.addWidget(widget, 1 if widget is self.picture else 0)
        layout.insertLayout(0, top)
        QShortcut(QKeySequence(Qt.Key.Key_Space), self, self.acknowledge)
        self._last = None

    @property
    def running(self) -> bool:
        return self.runner.is_running("live")

    def toggle(self) -> None:
        """Start (or resume) the watch, or pause it."""
        if self.running:
            self.runner.stop("live")
            self.start_button.setText("Stopping…")
            return
        checkpoint, path, threshold = self.model()
        if checkpoint is None:
            return self.note("Train a model or load a checkpoint first.")
        folder = Path(self.folder.text().strip())
        if not folder.is_dir():
            return self.note(f"{folder} is not a folder to watch.")
        self.settings.setValue(LIVE_FOLDER_KEY, str(folder))
        try:
            region = session.region_of_interest(session.parse_source(str(folder)), checkpoint)
        except EgbadError as error:
            return self.note(str(error))
        request = session.ScoreRequest(checkpoint, threshold=threshold, checkpoint_path=path, region=region)
        plan = session.WatchPlan(folder, folder / "inspected", views=True)
        worker = self.runner.start("live", partial(tasks.watch, request, plan), self._ended, self._failed, self.on_event)
        if worker is not None:
            self.start_button.setText("Pause")

    def on_event(self, event: object) -> None:
        if isinstance(event, NoteEvent):
            self.note(event.message)
        elif isinstance(event, InspectedEvent):
            self.show_part(event)

    def show_part(self, event: InspectedEvent) -> None:
        """The newest part large, its verdict, the counts and the rate; the alarm where it is flagged."""
        self.counts[0] += 1
        self.counts[1] += event.flagged
        self.times.append(time.monotonic())
        if event.view is not None:
            pixmap = pixmap_from_rgb(event.view)
            self._last = pixmap
            self._draw()
        verdict = "FLAGGED" if event.flagged else "ok"
        relative = "" if event.relative is None else f" ({event.relative:.2f} × the training 99th percentile)"
        self.caption.setText(f"{event.image_id}: {verdict}, score {event.score:.3f}{relative}, {event.latency:.2f} s after it landed")
        span = self.times[-1] - self.times[0] if len(self.times) > 1 else 0.0
        rate = f"   ·   {60 * (len(self.times) - 1) / span:.0f} parts/min" if span > 0 else ""
        self.counts_label.setText(f"{self.counts[0]} parts   ·   {self.counts[1]} flagged{rate}")
        if event.flagged:
            self.alarm.setText(f"FLAGGED: {event.image_id} (score {event.score:.3f}) — Space to acknowledge")
            self.alarm.setVisible(True)
        self.inspected.emit(event)

    def acknowledge(self) -> None:
        self.alarm.setVisible(False)

    def note(self, text: str) -> None:
        self.notes.appendPlainText(text)

    def resizeEvent(self, event) -> None:  # noqa: N802  (Qt's name)
        super().resizeEvent(event)
        self._draw()

    def _draw(self) -> None:
        if self._last is not None:
            self.picture.setPixmap(self._last.scaled(self.picture.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                                     Qt.TransformationMode.SmoothTransformation))

    def _choose(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Watch the folder", self.folder.text() or str(Path.home()))
        if folder:
            self.folder.setText(folder)

    def _ended(self, result: object) -> None:
        self.start_button.setText("Resume watching")
        if isinstance(result, tuple):
            self.note(f"Paused after {result[0]} parts this run ({result[1]} flagged); Resume scores what came meanwhile.")

    def _failed(self, message: str) -> None:
        self.start_button.setText("Start watching")
        self.note(message)
