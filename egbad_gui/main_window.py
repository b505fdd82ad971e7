"""The main window: panels on the left, Training and Detection tabs on the right.

It asks the core for everything through TaskRunner workers and draws what comes back; no
training or scoring happens on this thread.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog, QGridLayout, QHBoxLayout, QLabel, QMainWindow, QMessageBox, QPushButton, QScrollArea, QSplitter,
    QTabWidget, QVBoxLayout, QWidget,
)

from egbad_core import __version__
from egbad_core.config import PRESETS, Preset

from .detection_view import DetectionView
from .images import pixmap_from_rgb, strip
from .panels import DataPanel, TrainingPanel
from .plots import LossPlot
from .workers import TaskRunner, TaskState

THROTTLE_S = 0.1  # loss points reach the window at most ten times a second


@dataclass
class LoadedData:
    request: dict
    source: Any  # egbad_core.data.DataSource
    train: Any  # ImageSet
    test: Any | None  # ImageSet, or None where the source has no test images
    test_problem: str | None


@dataclass
class LossBatch:
    losses: np.ndarray  # (k, 3)
    latest: Any  # the last IterationEvent of the batch


class MainWindow(QMainWindow):
    exported = Signal(str)  # a file was written
    detection_ready = Signal()
    training_finished = Signal(str)  # the FinishedEvent reason
    data_loaded = Signal()
    model_changed = Signal()

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings("EGBAD Inspector", "egbad-gui")
        self.setWindowTitle("EGBAD Inspector")
        self.setWindowIcon(QIcon(str(resources.files("egbad_resources") / "icon.png")))
        self.runner = TaskRunner(self)
        self.data: LoadedData | None = None
        self.model = None  # egbad_core.checkpoints.Checkpoint
        self.model_path: str | None = None
        self.detection = None
        self.last_error: str | None = None
        self._pending_path: str | None = None  # the checkpoint the running training writes
        self._finished_event = None  # the running training's FinishedEvent, once it came
        self._first_epoch = 0  # epochs the running training started from

        self.data_panel = DataPanel()
        self.data_panel.load_requested.connect(self.load_data)
        self.training_panel = TrainingPanel()
        self.training_panel.train_button.clicked.connect(self.start_training)
        self.training_panel.resume_button.clicked.connect(self.resume_training)
        self.training_panel.stop_button.clicked.connect(self.stop)
        self.model_label = QLabel("No model yet: Train one or load a checkpoint.")
        self.model_label.setWordWrap(True)
        self.model_label.setObjectName("modelLabel")

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(self.data_panel)
        left_layout.addWidget(self.training_panel)
        left_layout.addWidget(self.model_label)
        left_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(360)

        self.loss_plot = LossPlot()
        self.preview_rows = {}  # caption → QLabel holding that row of the epoch's preview
        preview_box = QWidget()
        preview_grid = QGridLayout(preview_box)
        for row, caption in enumerate(("G(fixed z)", "training images", "G(E(x))")):
            title = QLabel(caption)
            title.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            picture = QLabel("after the first epoch" if row == 0 else "")
            picture.setObjectName("previewImage" if row == 0 else "")
            preview_grid.addWidget(title, row, 0)
            preview_grid.addWidget(picture, row, 1)
            self.preview_rows[caption] = picture
        preview_grid.setColumnStretch(1, 1)
        self.warning_banner = QLabel("")
        self.warning_banner.setWordWrap(True)
        self.warning_banner.setStyleSheet("background: #fff3c4; color: #5a4300; padding: 6px; border-radius: 4px")
        self.warning_banner.setVisible(False)
        training_tab = QWidget()
        training_layout = QVBoxLayout(training_tab)
        training_layout.addWidget(self.warning_banner)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.loss_plot)
        split.addWidget(preview_box)
        split.setSizes([420, 240])
        training_layout.addWidget(split)

        self.detection_view = DetectionView()
        self.detection_view.detect_requested.connect(self.detect)
        self.detection_view.export_grid_button.clicked.connect(self._export_grid_dialog)
        self.detection_view.export_csv_button.clicked.connect(self._export_csv_dialog)
        self.detection_view.export_summary_button.clicked.connect(self._export_summary_dialog)

        self.tabs = QTabWidget()
        self.tabs.addTab(training_tab, "Training")
        self.tabs.addTab(self.detection_view, "Detection")
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(scroll)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(1, 1)
        self.setCentralWidget(self.splitter)

        self.device_status = QLabel("device: …")
        self.data_status = QLabel("data: none")
        self.state_status = QLabel("starting")
        for label in (self.state_status, self.data_status, self.device_status):
            self.statusBar().addPermanentWidget(label)
        self._make_actions()
        self._restore_settings()
        self._update_buttons()
        QTimer.singleShot(0, self._after_first_paint)

    # ------------------------------------------------------------------------------------ set-up

    def _make_actions(self) -> None:
        def action(text: str, slot, shortcut=None, tip: str = "") -> QAction:
            act = QAction(text, self)
            if shortcut is not None:
                act.setShortcut(QKeySequence(shortcut))
            act.setStatusTip(tip)
            act.triggered.connect(slot)
            return act

        self.open_csv_action = action("Open MNIST &CSV…", self._choose_csv)
        self.open_folder_action = action("Open image &folder…", self._choose_folder)
        self.load_action = action("&Load checkpoint…", self._load_checkpoint_dialog, QKeySequence.StandardKey.Open)
        self.save_action = action("&Save checkpoint as…", self._save_checkpoint_dialog, QKeySequence.StandardKey.Save)
        self.export_action = action("&Export result grid…", self._export_grid_dialog, "Ctrl+E")
        self.export_csv_action = action("Export scores CS&V…", self._export_csv_dialog)
        self.export_summary_action = action("Export summary &JSON…", self._export_summary_dialog)
        quit_action = action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.train_action = action("&Train", self.start_training, "Ctrl+T")
        self.resume_action = action("&Resume training", self.resume_training)
        self.stop_action = action("&Stop", self.stop, "Esc")
        self.detect_action = action("&Detect", lambda: self.detect(self.detection_view.method.currentData()), "Ctrl+D")
        about = action("&About EGBAD Inspector", self._about)
        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        for item in (self.open_csv_action, self.open_folder_action, None, self.load_action, self.save_action, None,
                     self.export_action, self.export_csv_action, self.export_summary_action, None, quit_action):
            file_menu.addSeparator() if item is None else file_menu.addAction(item)
        run_menu = menus.addMenu("&Run")
        for item in (self.train_action, self.resume_action, self.stop_action, self.detect_action):
            run_menu.addAction(item)
        menus.addMenu("&Help").addAction(about)
        self.load_model_button = self._button("Load checkpoint…", self._load_checkpoint_dialog, "loadCheckpointButton")
        self.save_model_button = self._button("Save checkpoint as…", self._save_checkpoint_dialog, "saveCheckpointButton")
        row = QHBoxLayout()
        row.addWidget(self.load_model_button)
        row.addWidget(self.save_model_button)
        self.training_panel.layout().addLayout(row)

    def _button(self, text: str, slot, name: str) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.clicked.connect(slot)
        return button

    def _after_first_paint(self) -> None:
        self.state_status.setText("ready")
        if self.data is None:
            self.load_data(self.data_panel.request())

    # ------------------------------------------------------------------------------------ data

    def load_data(self, request: dict) -> None:
        if self.runner.is_running("train"):
            return
        image_size, channels = self._model_shape()

        def task(state: TaskState) -> LoadedData:
            from egbad_core.data import DataSource, load_test_set, load_training_set
            from egbad_core.device import describe_device, resolve_device
            from egbad_core.errors import EgbadError

            state.emit(("device", describe_device(resolve_device("auto"))))
            source = DataSource.parse(**request)
            train = load_training_set(source, image_size, channels, progress=state.progress)
            try:
                test = load_test_set(source, image_size, train.channels, progress=state.progress)
                problem = None
            except EgbadError as error:
                test, problem = None, str(error)
            return LoadedData(request, source, train, test, problem)

        self.state_status.setText("loading data…")
        self.data_panel.load_button.setEnabled(False)
        started = self.runner.start("data", task, self._data_loaded, self._data_failed, on_event=self._on_data_event)
        if started is None:
            self.data_panel.load_button.setEnabled(True)

    def _model_shape(self) -> tuple[int, int | None]:
        if self.model is not None:
            return self.model.networks.config.image_size, self.model.networks.config.channels
        return self.training_panel.selected_preset().model.image_size, None

    def _on_data_event(self, event: Any) -> None:
        if isinstance(event, tuple) and event[0] == "device":
            self.device_status.setText(f"device: {event[1]}")
            self.training_panel.device_in_use.setText(f"available: {event[1]}")

    def _data_loaded(self, loaded: LoadedData) -> None:
        from egbad_core.detection import skipped_lines
        from egbad_core.pictures import to_rgb8

        self.data = loaded
        self.data_panel.load_button.setEnabled(True)
        train, test = loaded.train, loaded.test
        lines = [f"<b>Training</b>: {train.describe()}"]
        if test is not None:
            lines.append(f"<b>Test</b>: {test.describe()}")
        if loaded.test_problem:
            lines.append(f"<i>No test images: {loaded.test_problem}</i>")
        skipped = train.skipped + (test.skipped if test is not None else [])
        if skipped:
            lines.append(f"<span style='color:#a05000'>Skipped {len(skipped)} file(s): " + "; ".join(skipped_lines(skipped, 5)) + "</span>")
        self.data_panel.summary.setText("<br>".join(lines))
        examples = to_rgb8(train.pixels[:8].numpy())
        self.data_panel.examples.setPixmap(pixmap_from_rgb(strip(list(examples))).scaledToHeight(40))
        self.data_status.setText(f"data: {loaded.source.describe()}")
        self.state_status.setText("ready")
        if skipped:
            self.statusBar().showMessage(f"Skipped {len(skipped)} unreadable file(s); see the Data panel.", 10_000)
        self._update_buttons()
        # torch and the data are loaded now: a few hundred thousand long-lived objects. Frozen,
        # they are left out of Python's full collections, which otherwise stop every thread
        # (the window too) for 200 ms or more when training triggers one.
        gc.freeze()
        self.data_loaded.emit()

    def _data_failed(self, message: str) -> None:
        self.data_panel.load_button.setEnabled(True)
        self.state_status.setText("ready")
        self.show_error("Data not loaded", message + ("\n\nThe data loaded before is kept." if self.data else ""))

    def _choose_csv(self) -> None:
        self.data_panel.csv.setChecked(True)
        self.data_panel._browse_csv()

    def _choose_folder(self) -> None:
        self.data_panel.folder.setChecked(True)
        self.data_panel._browse_folder()

    # ------------------------------------------------------------------------------------ training

    def start_training(self, resume: bool = False) -> None:
        if self.runner.is_running("train") or self.runner.is_running("score"):
            return  # a second click while a run is going does nothing
        if self.data is None:
            self.show_error("No data", "Load training data first.")
            return
        panel = self.training_panel
        preset: Preset = panel.selected_preset()
        train_config = panel.train_config()
        score_config = panel.score_config()
        data = self.data
        model = self.model if resume else None
        if resume and model is None:
            self.show_error("Nothing to resume", "Train or load a model first.")
            return
        folder = Path(self.settings.value("checkpoint_dir", str(Path.cwd() / "checkpoints")))
        name = "demo" if data.source.kind == "demo" else Path(data.source.path).name.split(".")[0]
        path = self.model_path if resume and self.model_path else str(folder / f"{name}-{datetime.now():%Y%m%d-%H%M%S}.pt")
        data_info = {"kind": data.source.kind, "path": data.source.path, "normal_labels": list(data.source.normal_labels or [])}

        def task(state: TaskState):
            from egbad_core.checkpoints import load_checkpoint
            from egbad_core.data import load_training_set
            from egbad_core.device import describe_device
            from egbad_core.training import IterationEvent, Trainer

            train_set = data.train
            if model is not None:
                shape = (model.networks.config.image_size, model.networks.config.channels)
                if (train_set.image_size, train_set.channels) != shape:
                    train_set = load_training_set(data.source, *shape)
                trainer = Trainer.resume(model, train_set, train_config.total_epochs, path, train_config.device)
            else:
                if train_set.image_size != preset.model.image_size:  # data loaded for another preset
                    train_set = load_training_set(data.source, preset.model.image_size)
                trainer = Trainer(train_set, preset, train_config, score_config, path, data_info)
            state.emit(("device", describe_device(trainer.device), trainer.epoch))
            pending: list[tuple[float, float, float]] = []
            last = time.monotonic()
            latest = None
            for event in trainer.run(state.stop):
                if isinstance(event, IterationEvent):
                    pending.append((event.d_loss, event.g_loss, event.e_loss))
                    latest = event
                    if time.monotonic() - last < THROTTLE_S:
                        continue
                elif not pending:
                    state.emit(event)
                    continue
                state.emit(LossBatch(np.array(pending), latest))
                pending, last = [], time.monotonic()
                if not isinstance(event, IterationEvent):
                    state.emit(event)
            return load_checkpoint(trainer.last_checkpoint) if trainer.last_checkpoint else None

        self._finished_event = None
        if not resume:
            self.loss_plot.clear_history()
        self.warning_banner.setVisible(False)
        self.training_panel.progress.setFormat("starting…")
        worker = self.runner.start("train", task, self._training_done, self._training_failed, on_event=self._on_training_event)
        if worker is not None:
            self._pending_path = path
            self.training_panel.set_running(True)
            self.state_status.setText("training")
            self._update_buttons()

    def resume_training(self) -> None:
        self.start_training(resume=True)

    def _on_training_event(self, event: Any) -> None:
        from egbad_core.training import EpochEvent, FinishedEvent, PreviewEvent, WarningEvent

        panel = self.training_panel
        if isinstance(event, tuple) and event[0] == "device":
            _, device, first_epoch = event
            self.device_status.setText(f"device: {device}")
            panel.device_in_use.setText(f"in use: {device}")
            self._first_epoch = first_epoch
        elif isinstance(event, LossBatch):
            self.loss_plot.append(event.losses)
            latest = event.latest
            epochs = panel.epochs.value() + panel.refine_epochs.value()
            total = max(1, (epochs - self._first_epoch) * latest.batches)
            done = (latest.epoch - 1 - self._first_epoch) * latest.batches + latest.batch
            panel.progress.setMaximum(total)
            panel.progress.setValue(min(done, total))
            panel.progress.setFormat(
                f"epoch {latest.epoch}/{epochs} · {latest.images_per_s:.0f} img/s · ETA {_clock(latest.eta_s)}"
            )
        elif isinstance(event, EpochEvent):
            self.loss_plot.mark_epoch(self.loss_plot.point_count(), event.epoch)
            self.statusBar().showMessage(
                f"Epoch {event.epoch}/{event.epochs}: D {event.d_loss:.3f}, G {event.g_loss:.3f}, E {event.e_loss:.3f} "
                f"({event.seconds:.1f} s). Checkpoint saved.", 8000
            )
        elif isinstance(event, PreviewEvent):
            self._show_preview(event)
        elif isinstance(event, WarningEvent):
            self.warning_banner.setText(f"⚠ Epoch {event.epoch}: {event.message}")
            self.warning_banner.setVisible(True)
        elif isinstance(event, FinishedEvent):
            self._finished_event = event
            panel.progress.setFormat(event.reason)
            self.statusBar().showMessage(event.message, 15_000)
            if event.reason == "diverged":
                self.show_error("Training diverged", event.message)

    def _show_preview(self, event) -> None:
        from egbad_core.pictures import to_rgb8

        scale = max(1, 64 // event.generated.shape[-1])
        for caption, images in zip(self.preview_rows, (event.generated, event.originals, event.reconstructions)):
            self.preview_rows[caption].setPixmap(pixmap_from_rgb(strip(list(to_rgb8(images))), scale))

    def _training_done(self, checkpoint) -> None:
        self.training_panel.set_running(False)
        self.state_status.setText("ready")
        finished = self._finished_event
        if checkpoint is not None:
            self._set_model(checkpoint, self._pending_path, keep_plot=True)
        self._update_buttons()
        self.training_finished.emit(finished.reason if finished else "stopped")

    def _training_failed(self, message: str) -> None:
        self.training_panel.set_running(False)
        self.training_panel.progress.setFormat("failed")
        self.state_status.setText("ready")
        self._update_buttons()
        self.show_error("Training failed", message)
        self.training_finished.emit("failed")

    def stop(self) -> None:
        for name in ("train", "score"):
            if self.runner.is_running(name):
                self.runner.stop(name)
                self.state_status.setText("stopping…")

    # ------------------------------------------------------------------------------------ model

    def _set_model(self, checkpoint, path: str | None, keep_plot: bool = False) -> None:
        self.model = checkpoint
        self.model_path = path
        summary = f"<b>Model</b>: {checkpoint.preset} preset, {checkpoint.epoch} epochs"
        config = checkpoint.networks.config
        summary += f", {config.image_size}×{config.image_size}×{config.channels}"
        if checkpoint.train_stats:
            summary += f"<br>training scores: mean {checkpoint.train_stats.mean:.1f}, 99th pct {checkpoint.train_stats.p99:.1f}"
        if path:
            summary += f"<br><small>{path}</small>"
        self.model_label.setText(summary)
        if not keep_plot:
            losses = checkpoint.iteration_losses
            per_epoch = len(losses) // checkpoint.epoch if checkpoint.epoch else 0
            self.loss_plot.set_history(losses, [per_epoch * (i + 1) for i in range(checkpoint.epoch)] if per_epoch else [])
            panel = self.training_panel
            if checkpoint.preset in PRESETS:
                panel.set_preset_name(checkpoint.preset)
            panel.show_preset(panel.selected_preset(), checkpoint.train, checkpoint.score)
        self.model_changed.emit()
        self._update_buttons()

    def load_checkpoint(self, path: str) -> None:
        device = self.training_panel.device.currentData()

        def task(state: TaskState):
            from egbad_core.checkpoints import load_checkpoint
            from egbad_core.device import resolve_device

            return load_checkpoint(path, resolve_device(device))

        self.settings.setValue("checkpoint_dir", str(Path(path).parent))
        self.runner.start("checkpoint", task, lambda ck: self._set_model(ck, path), lambda m: self.show_error("Checkpoint not loaded", m))

    def save_checkpoint(self, path: str) -> None:
        model = self.model

        def task(state: TaskState):
            from egbad_core.checkpoints import save_checkpoint

            return str(save_checkpoint(path, model))

        self.runner.start("checkpoint", task, self._saved, lambda m: self.show_error("Checkpoint not saved", m))

    def _saved(self, path: str) -> None:
        self.model_path = path
        self.statusBar().showMessage(f"Checkpoint saved to {path}", 8000)
        self.exported.emit(path)

    def _load_checkpoint_dialog(self) -> None:
        folder = self.settings.value("checkpoint_dir", str(Path.cwd() / "checkpoints"))
        path, _ = QFileDialog.getOpenFileName(self, "Load checkpoint", folder, "Checkpoints (*.pt);;All files (*)")
        if path:
            self.load_checkpoint(path)

    def _save_checkpoint_dialog(self) -> None:
        if self.model is None:
            return
        folder = self.settings.value("checkpoint_dir", str(Path.cwd() / "checkpoints"))
        path, _ = QFileDialog.getSaveFileName(self, "Save checkpoint as", str(Path(folder) / "model.pt"), "Checkpoints (*.pt)")
        if path:
            self.settings.setValue("checkpoint_dir", str(Path(path).parent))
            self.save_checkpoint(path)

    # ------------------------------------------------------------------------------------ detection

    def detect(self, method: str = "egbad") -> None:
        if self.runner.is_running("train") or self.runner.is_running("score"):
            return
        if self.model is None:
            self.show_error("No model", "Train a model or load a checkpoint first.")
            return
        if self.data is None or self.data.test is None:
            reason = self.data.test_problem if self.data and self.data.test_problem else "Load data with test images first."
            self.show_error("No test images", reason)
            return
        model, data, path = self.model, self.data, self.model_path
        score_config = replace(model.score, **self.training_panel.score_choices())

        def task(state: TaskState):
            from egbad_core.data import load_test_set
            from egbad_core.detection import run_detection
            from egbad_core.scoring import ScoringStopped

            images = data.test
            config = model.networks.config
            if (images.image_size, images.channels) != (config.image_size, config.channels):
                images = load_test_set(data.source.with_normal_labels(model.normal_labels), config.image_size, config.channels)
            try:
                return run_detection(model, images, method, score_config, None, path, state.progress, state.stop)
            except ScoringStopped:
                return None

        worker = self.runner.start("score", task, self._detection_done, self._detection_failed, on_progress=self.detection_view.show_progress)
        if worker is not None:
            self.detection_view.set_busy(True)
            self.state_status.setText(f"scoring ({method})")
            self.tabs.setCurrentWidget(self.detection_view)
            self._update_buttons()

    def _detection_done(self, detection) -> None:
        self.detection_view.set_busy(False)
        self.state_status.setText("ready")
        if detection is not None:
            self.detection = detection
            self.detection_view.show_detection(detection)
            self.statusBar().showMessage(
                f"Scored {len(detection.images)} images in {detection.scores.seconds:.1f} s "
                f"({detection.scores.images_per_s:.0f} images/s, {detection.scores.method}).", 10_000
            )
        self._update_buttons()
        self.detection_ready.emit()

    def _detection_failed(self, message: str) -> None:
        self.detection_view.set_busy(False)
        self.state_status.setText("ready")
        self._update_buttons()
        self.show_error("Detection failed", message)

    # ------------------------------------------------------------------------------------ export

    def export_grid(self, path: str, only_flagged: bool | None = None) -> None:
        """Write the result grid PNG in a worker; ``exported`` is emitted when it is on disk."""
        flagged = self.detection_view.only_flagged.isChecked() if only_flagged is None else only_flagged
        self._export(path, "grid", flagged)

    def export_scores_csv(self, path: str) -> None:
        self._export(path, "csv")

    def export_summary(self, path: str) -> None:
        self._export(path, "summary")

    def _export(self, path: str, what: str, only_flagged: bool = False) -> None:
        if self.detection is None:
            self.show_error("Nothing to export", "Run Detect first.")
            return
        detection = replace(self.detection)  # the threshold as it is now, whatever the slider does next

        def task(state: TaskState) -> str:
            from egbad_core import export

            if what == "grid":
                return str(export.write_grid(path, detection, only_flagged=only_flagged))
            if what == "csv":
                return str(export.write_scores_csv(path, detection))
            return str(export.write_summary(path, detection.summary()))

        self.runner.start(f"export:{path}", task, self._exported, lambda m: self.show_error("Export failed", m))

    def _exported(self, path: str) -> None:
        self.statusBar().showMessage(f"Wrote {path}", 8000)
        self.exported.emit(path)

    def _export_dialog(self, title: str, default_name: str, pattern: str, write) -> None:
        if self.detection is None:
            return
        folder = self.settings.value("export_dir", str(Path.cwd()))
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path(folder) / default_name), pattern)
        if path:
            self.settings.setValue("export_dir", str(Path(path).parent))
            write(path)

    def _export_grid_dialog(self) -> None:
        self._export_dialog("Export result grid", "grid.png", "PNG images (*.png)", self.export_grid)

    def _export_csv_dialog(self) -> None:
        self._export_dialog("Export scores", "scores.csv", "CSV files (*.csv)", self.export_scores_csv)

    def _export_summary_dialog(self) -> None:
        self._export_dialog("Export summary", "summary.json", "JSON files (*.json)", self.export_summary)

    # ------------------------------------------------------------------------------------ comfort

    def _update_buttons(self) -> None:
        training = self.runner.is_running("train")
        scoring = self.runner.is_running("score")
        busy = training or scoring
        has_model = self.model is not None
        self.training_panel.train_button.setEnabled(not busy and self.data is not None)
        self.training_panel.resume_button.setEnabled(not busy and has_model and self.data is not None)
        self.training_panel.stop_button.setEnabled(busy)
        self.train_action.setEnabled(not busy)
        self.resume_action.setEnabled(not busy and has_model)
        self.detection_view.detect_button.setEnabled(not busy and has_model)
        self.detect_action.setEnabled(not busy and has_model)
        self.save_action.setEnabled(has_model and not training)
        self.save_model_button.setEnabled(has_model and not training)
        self.load_action.setEnabled(not busy)
        self.load_model_button.setEnabled(not busy)
        self.data_panel.load_button.setEnabled(not training)
        has_detection = self.detection is not None
        for act in (self.export_action, self.export_csv_action, self.export_summary_action):
            act.setEnabled(has_detection)

    def show_error(self, title: str, message: str) -> None:
        """A plain message that does not block: the window keeps working behind it."""
        self.last_error = message
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("errorBox")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.statusBar().showMessage(message.splitlines()[0], 15_000)

    def _about(self) -> None:
        import PySide6
        import pyqtgraph
        import torch

        QMessageBox.about(
            self,
            "About EGBAD Inspector",
            f"<h3>EGBAD Inspector {__version__}</h3>"
            "<p>Visual defect inspection with EGBAD: a GAN with an encoder, trained on good parts only.</p>"
            f"<p>PyTorch {torch.__version__} · Qt {PySide6.QtCore.qVersion()} · PySide6 {PySide6.__version__} · "
            f"pyqtgraph {pyqtgraph.__version__}</p>",
        )

    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 860)
        state = s.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        splitter = s.value("window/splitter")
        if isinstance(splitter, QByteArray):
            self.splitter.restoreState(splitter)
        panel = self.training_panel
        preset = s.value("training/preset")
        if preset in PRESETS:
            panel.set_preset_name(preset)
            panel.show_preset(PRESETS[preset])
        for key, box, kind in (("epochs", panel.epochs, int), ("refine_epochs", panel.refine_epochs, int),
                               ("batch_size", panel.batch_size, int), ("seed", panel.seed, int),
                               ("lr_g", panel.lr_g, float), ("lr_d", panel.lr_d, float), ("lr_e", panel.lr_e, float),
                               ("lam", panel.lam, float)):
            value = s.value(f"training/{key}")
            if value is not None:
                try:
                    box.setValue(kind(value))
                except (TypeError, ValueError):
                    pass
        device = panel.device.findData(s.value("training/device", "auto"))
        panel.device.setCurrentIndex(max(device, 0))
        panel.mixed_precision.setChecked(str(s.value("training/mixed_precision", "false")).lower() == "true")
        request = s.value("data/request")
        if isinstance(request, dict):
            self.data_panel.restore(request)
        self.data_panel.last_folder = str(s.value("data/folder", ""))

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/splitter", self.splitter.saveState())
        panel = self.training_panel
        s.setValue("training/preset", panel.preset.currentData())
        for key, box in (("epochs", panel.epochs), ("refine_epochs", panel.refine_epochs), ("batch_size", panel.batch_size), ("seed", panel.seed), ("lr_g", panel.lr_g),
                         ("lr_d", panel.lr_d), ("lr_e", panel.lr_e), ("lam", panel.lam)):
            s.setValue(f"training/{key}", box.value())
        s.setValue("training/device", panel.device.currentData())
        s.setValue("training/mixed_precision", panel.mixed_precision.isChecked())
        if self.data is not None:
            s.setValue("data/request", {k: v for k, v in self.data.request.items() if v is not None})
        s.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.runner.any_running():
            self.state_status.setText("stopping…")
            self.statusBar().showMessage("Stopping the running work and saving the checkpoint…")
        self.runner.shutdown()  # a stop request, then a wait of at most one iteration
        self.save_settings()
        super().closeEvent(event)


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
