"""The main window: panels on the left, Training and Detection tabs on the right.

It asks the engine for everything through tasks (``tasks.py``) that TaskRunner runs in worker
threads, and draws what comes back; no training or scoring happens on this thread.
"""

from __future__ import annotations

import gc
from dataclasses import replace
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QIcon
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QMessageBox

from egbad_core import session
from egbad_core.config import PRESETS
from egbad_core.errors import EgbadError
from egbad_core.events import DeviceEvent, EpochEvent, FinishedEvent, ProgressEvent, losses_text
from egbad_core.pictures import to_rgb8

from . import exports, inspector, tasks, window_layout, window_settings
from .detection_view import DetectionView
from .images import pixmap_from_rgb, strip
from .live_view import LiveView
from .panels import DataPanel, TrainingPanel
from .tasks import LossBatch
from .training_view import TrainingView
from .workers import TaskRunner


class MainWindow(QMainWindow):
    """The app's window; it asks the engine through tasks and draws what comes back."""
    exported = Signal(str)  # a file was written
    detection_ready = Signal()
    training_finished = Signal(str)  # the FinishedEvent reason
    data_loaded = Signal()
    model_changed = Signal()
    region_changed = Signal()  # the folder's roi.png was drawn or removed

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings("EGBAD Inspector", "egbad-gui")
        self.setWindowTitle("EGBAD Inspector")
        self.setWindowIcon(QIcon(str(resources.files("egbad_resources") / "icon.png")))
        self.runner = TaskRunner(self)
        self.data: session.LoadedData | None = None
        self.model: session.Checkpoint | None = None
        self.model_path: str | None = None
        self.detection: session.Detection | None = None
        self.region: session.Region | None = None  # the region of interest scoring keeps to
        self.last_error: str | None = None
        self._pending_path: str | None = None  # the checkpoint the running training writes
        self._first_epoch = 0  # epochs the running training started from

        self.data_panel = DataPanel()
        self.data_panel.load_requested.connect(self.load_data)
        self.training_panel = TrainingPanel()
        self.training_panel.train_button.clicked.connect(self.start_training)
        self.training_panel.resume_button.clicked.connect(self.resume_training)
        self.training_panel.stop_button.clicked.connect(self.stop)
        self.training_panel.checkpoint_folder_changed.connect(
            lambda folder: self.settings.setValue(window_settings.CHECKPOINT_FOLDER_KEY, folder))
        self.model_label = QLabel("No model yet: Train one or load a checkpoint.")
        self.model_label.setWordWrap(True)
        self.model_label.setObjectName("modelLabel")
        self.training_view = TrainingView()
        self.loss_plot = self.training_view.loss_plot
        self.detection_view = DetectionView()
        self.detection_view.detect_requested.connect(self.detect)
        self.detection_view.photo_requested.connect(partial(inspector.open_up_close, self))
        for what, button in (("grid", self.detection_view.export_grid_button), ("csv", self.detection_view.export_csv_button),
                             ("summary", self.detection_view.export_summary_button)):
            button.clicked.connect(partial(exports.result_dialog, self, what))
        self.live_view = LiveView(self.runner, self.model_in_use, self.settings)
        window_layout.lay_out(self)
        window_layout.make_actions(self)
        window_settings.restore(self)
        self._update_buttons()
        QTimer.singleShot(0, self._after_first_paint)

    # ------------------------------------------------------------------------------------ set-up

    def _after_first_paint(self) -> None:
        self.state_status.setText("ready")
        if self.data is None:
            self.load_data(self.data_panel.request())

    def model_in_use(self) -> tuple[session.Checkpoint | None, str | None, float | None]:
        """The model, its file, and the detection's threshold where that detection is this model's."""
        detection = self.detection
        threshold = detection.threshold if detection is not None and detection.checkpoint == self.model_path else None
        return self.model, self.model_path, threshold

    def checkpoint_folder(self) -> str:
        """Where a new training run writes its checkpoint."""
        return window_settings.checkpoint_folder(self.settings)

    # ------------------------------------------------------------------------------------ data

    def load_data(self, request: dict) -> None:
        """Load ``request`` in a worker, at the model's size, the preset's, or what auto picks."""
        if self.runner.is_running("train"):
            return
        image_size, channels, scale = self._model_shape()
        self.state_status.setText("loading data…")
        self.data_panel.load_button.setEnabled(False)
        started = self.runner.start("data", partial(tasks.load_data, request, image_size, channels, scale),
                                    self._data_loaded, self._data_failed, self._on_data_event)
        if started is None:
            self.data_panel.load_button.setEnabled(True)

    def _model_shape(self) -> tuple[int | None, int | None, float]:
        """The size, channels and photo scale data is loaded at: the model's, else the preset's
        (None: auto decides)."""
        if self.model is not None:
            config = self.model.networks.config
            return config.load_size, config.channels, config.photo_scale
        if self.training_panel.preset.currentData() == "auto":
            return None, None, 0.0
        return self.training_panel.selected_preset().model.load_size, None, 0.0

    def _on_data_event(self, event: Any) -> None:
        match event:
            case DeviceEvent():
                self.device_status.setText(f"device: {event.device}")
                self.training_panel.device_in_use.setText(f"available: {event.device}")
            case ProgressEvent():
                self.state_status.setText(f"loading data… {event.done}/{event.total}")

    def _data_loaded(self, loaded: session.LoadedData | None) -> None:
        self.data_panel.load_button.setEnabled(True)
        self.state_status.setText("ready")
        if loaded is None:
            return
        self.data = loaded
        if loaded.choice is not None:
            self.training_panel.set_automatic(loaded.choice, loaded.reason)
        train, test = loaded.train, loaded.test
        lines = [f"<b>Training</b>: {train.describe()}"]
        if test is not None:
            lines.append(f"<b>Test</b>: {test.describe()}")
        if loaded.test_problem:
            lines.append(f"<i>No test images: {loaded.test_problem}</i>")
        skipped = loaded.skipped
        if skipped:
            lines.append(f"<span style='color:#a05000'>Skipped {len(skipped)} file(s): "
                         + "; ".join(session.skipped_lines(skipped, 5)) + "</span>")
        self.data_panel.summary.setText("<br>".join(lines))
        examples = to_rgb8(train.unit(slice(0, 8)))
        self.data_panel.examples.setPixmap(pixmap_from_rgb(strip(list(examples))).scaledToHeight(40))
        self.data_status.setText(f"data: {loaded.source.describe()}")
        if skipped:
            self.statusBar().showMessage(f"Skipped {len(skipped)} unreadable file(s); see the Data panel.", 10_000)
        self._update_buttons()
        # torch and the data are loaded now: a few hundred thousand long-lived objects. Frozen,
        # they are left out of Python's full collections, which otherwise stop every thread
        # (the window too) for 200 ms or more when training triggers one. What an earlier load froze
        # and has since become garbage is thawed and collected first: frozen objects in reference
        # cycles are never freed, and a window kept open through 30 load-train-detect cycles grew by
        # a fifth (benchmarks/soak.py).
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        session.release_free_memory()
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
        """Train a new model on the loaded data (or resume the current one) in a worker."""
        if self.runner.is_running("train") or self.runner.is_running("score"):
            return  # a second click while a run is going does nothing
        if self.data is None:
            self.show_error("No data", "Load training data first.")
            return
        if resume and self.model is None:
            self.show_error("Nothing to resume", "Train or load a model first.")
            return
        panel = self.training_panel
        if resume and self.model_path:
            path = self.model_path
        else:
            path = str(session.default_checkpoint_path(self.data.source, self.checkpoint_folder()))
        make = partial(tasks.train, self.data, path, panel.settings(), self.model if resume else None)
        self.training_view.start_run(keep_history=resume)
        panel.progress.setFormat("starting…")
        worker = self.runner.start("train", make, self._training_done, self._training_failed, self._on_training_event)
        if worker is not None:
            self._pending_path = path
            panel.set_running(True)
            self.state_status.setText("training")
            self._update_buttons()

    def resume_training(self) -> None:
        self.start_training(resume=True)

    def _on_training_event(self, event: Any) -> None:
        panel = self.training_panel
        self.training_view.draw(event)
        match event:
            case DeviceEvent():
                self.device_status.setText(f"device: {event.device}")
                panel.device_in_use.setText(f"in use: {event.device}")
                self._first_epoch = event.first_epoch
            case LossBatch():
                panel.show_progress(event.latest, self._first_epoch)
            case FinishedEvent():
                panel.progress.setFormat(event.reason)
                self.statusBar().showMessage(event.message, 15_000)
                if event.reason == "diverged":
                    self.show_error("Training diverged", event.message)
            case EpochEvent():
                self.statusBar().showMessage(
                    f"Epoch {event.epoch}/{event.epochs}: {losses_text(event.d_loss, event.g_loss, event.e_loss, sep=', ')} "
                    f"({event.seconds:.1f} s)." + (" Checkpoint saved." if event.checkpoint else ""), 8000
                )

    def _training_done(self, result: tuple[FinishedEvent, session.Checkpoint | None]) -> None:
        finished, checkpoint = result
        self.training_panel.set_running(False)
        self.state_status.setText("ready")
        if checkpoint is not None:
            self._set_model(checkpoint, self._pending_path, keep_plot=True)
        self._update_buttons()
        session.release_free_memory()
        self.training_finished.emit(finished.reason)

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

    def _set_model(self, checkpoint: session.Checkpoint, path: str | None, keep_plot: bool = False) -> None:
        self.model = checkpoint
        self.model_path = path
        config = checkpoint.networks.config
        summary = (f"<b>Model</b>: {checkpoint.settings.name} preset, {checkpoint.epoch} epochs, "
                   f"{config.image_size}×{config.image_size}×{config.channels}")
        if checkpoint.train_stats:
            summary += f"<br>training scores: mean {checkpoint.train_stats.mean:.1f}, 99th pct {checkpoint.train_stats.p99:.1f}"
        if "reconstruction_r2" in checkpoint.notes:  # checkpoints before it was measured do not say
            fit = session.describe_fit(checkpoint.notes["reconstruction_r2"])
            summary += f"<br>{fit[0].upper()}{fit[1:]} (training inputs)"
        if path:
            summary += f"<br><small>{path}</small>"
        self.model_label.setText(summary)
        if not keep_plot:
            losses = checkpoint.iteration_losses
            per_epoch = len(losses) // checkpoint.epoch if checkpoint.epoch else 0
            self.loss_plot.set_history(losses, [per_epoch * (i + 1) for i in range(checkpoint.epoch)] if per_epoch else [])
            panel = self.training_panel
            if checkpoint.settings.name in PRESETS:
                panel.set_preset_name(checkpoint.settings.name)
            panel.show_preset(panel.selected_preset(), checkpoint.settings.train, checkpoint.settings.score)
        self.model_changed.emit()
        self._update_buttons()

    def load_checkpoint(self, path: str) -> None:
        self.settings.setValue(window_settings.BROWSE_FOLDER_KEY, str(Path(path).parent))
        self.runner.start("checkpoint", partial(tasks.load_checkpoint, path, self.training_panel.device.currentData()),
                          lambda ck: self._set_model(ck, path), lambda m: self.show_error("Checkpoint not loaded", m))

    def save_checkpoint(self, path: str) -> None:
        self.runner.start("checkpoint", partial(tasks.save_checkpoint, path, self.model), self._saved,
                          lambda m: self.show_error("Checkpoint not saved", m))

    def _saved(self, path: str) -> None:
        self.model_path = path
        self.statusBar().showMessage(f"Checkpoint saved to {path}", 8000)
        self.exported.emit(path)

    def _load_checkpoint_dialog(self) -> None:
        folder = window_settings.browse_folder(self.settings)
        path, _ = QFileDialog.getOpenFileName(self, "Load checkpoint", folder, "Checkpoints (*.pt);;All files (*)")
        if path:
            self.load_checkpoint(path)

    def _save_checkpoint_dialog(self) -> None:
        if self.model is None:
            return
        folder = window_settings.browse_folder(self.settings)
        path, _ = QFileDialog.getSaveFileName(self, "Save checkpoint as", str(Path(folder) / "model.pt"), "Checkpoints (*.pt)")
        if path:
            self.settings.setValue(window_settings.BROWSE_FOLDER_KEY, str(Path(path).parent))
            self.save_checkpoint(path)

    # ------------------------------------------------------------------------------------ detection

    def detect(self, method: str = "egbad") -> None:
        """Score the loaded test images with the current model in a worker."""
        if self.runner.is_running("train") or self.runner.is_running("score"):
            return
        if self.model is None:
            self.show_error("No model", "Train a model or load a checkpoint first.")
            return
        if self.data is None or self.data.test is None:
            reason = self.data.test_problem if self.data and self.data.test_problem else "Load data with test images first."
            self.show_error("No test images", reason)
            return
        config = replace(self.model.settings.score, **self.training_panel.score_choices())
        try:
            self.region = session.region_of_interest(self.data.source, self.model) if method == "egbad" else None
        except EgbadError as error:
            return self.show_error("Region of interest", str(error))
        request = session.ScoreRequest(self.model, method, config, None, self.model_path, self.region)
        make = partial(tasks.detect, request, self.data)
        worker = self.runner.start("score", make, self._detection_done, self._detection_failed, self._on_score_event)
        if worker is not None:
            self.detection_view.set_busy(True)
            self.state_status.setText(f"scoring ({method})")
            self.tabs.setCurrentWidget(self.detection_view)
            self._update_buttons()

    def _on_score_event(self, event: Any) -> None:
        if isinstance(event, ProgressEvent) and event.what == "scoring windows":  # within one large photo
            self.state_status.setText(f"scoring a photo: window {event.done} of {event.total}")
        elif isinstance(event, ProgressEvent):
            self.detection_view.show_progress(event.done, event.total)

    def _detection_done(self, detection: session.Detection | None) -> None:
        self.detection_view.set_busy(False)
        self.state_status.setText("ready")
        if detection is not None:
            self.detection = detection
            self.detection_view.show_detection(detection)
            self.statusBar().showMessage(
                f"Scored {len(detection.images)} images in {detection.scores.seconds:.1f} s "
                f"({detection.scores.images_per_s:.0f} images/s, {detection.scores.method})."
                + (f" {detection.photos.note}" if detection.photos is not None and detection.photos.note else ""), 10_000
            )
        self._update_buttons()
        session.release_free_memory()  # the run's batches are gone: their pages go back to the system
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
        exports.export_result(self, path, "grid", flagged)

    def export_scores_csv(self, path: str) -> None:
        exports.export_result(self, path, "csv")

    def export_summary(self, path: str) -> None:
        exports.export_result(self, path, "summary")

    # ------------------------------------------------------------------------------------ comfort

    def _update_buttons(self) -> None:
        training = self.runner.is_running("train")
        busy = training or self.runner.is_running("score")
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
        for act in (self.export_action, self.export_csv_action, self.export_summary_action):
            act.setEnabled(self.detection is not None)
        self.region_action.setEnabled(self.data is not None and self.data.source.kind == "folder")
        self.export_model_action.setEnabled(has_model and not training)

    def show_error(self, title: str, message: str) -> None:
        """A plain message that does not block: the window keeps working behind it."""
        self.last_error = message
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("errorBox")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.statusBar().showMessage(message.splitlines()[0], 15_000)

    def save_settings(self) -> None:
        window_settings.save(self)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop running work (training writes its checkpoint), then remember the settings."""
        if self.runner.any_running():
            self.state_status.setText("stopping…")
            self.statusBar().showMessage("Stopping the running work and saving the checkpoint…")
        self.runner.shutdown()  # a stop request, then a wait of at most one iteration
        self.save_settings()
        super().closeEvent(event)
