"""What the window writes out, each in a worker: a detection's result files, and the model as ONNX.

The window keeps the names tests and menus call (``export_grid`` and the others); the dialogs,
the workers and the messages are here.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog

from egbad_core import session

from . import tasks

if TYPE_CHECKING:
    from .main_window import MainWindow

RESULT_FILES = {  # what: (dialog title, default name, file pattern)
    "grid": ("Export result grid", "grid.png", "PNG images (*.png)"),
    "csv": ("Export scores", "scores.csv", "CSV files (*.csv)"),
    "summary": ("Export summary", "summary.json", "JSON files (*.json)"),
}
EXPORT_FOLDER_KEY = "export_dir"


def export_result(window: "MainWindow", path: str, what: str, only_flagged: bool = False) -> None:
    """Write one result file of the window's detection; ``window.exported`` says when it is on disk."""
    if window.detection is None:
        window.show_error("Nothing to export", "Run Detect first.")
        return
    detection = replace(window.detection)  # the threshold as it is now, whatever the slider does next
    window.runner.start(f"export:{path}", partial(tasks.export, detection, what, path, only_flagged),
                        partial(_written, window), lambda m: window.show_error("Export failed", m))


def result_dialog(window: "MainWindow", what: str) -> None:
    """Ask where to write a result file, then write it."""
    if window.detection is None:
        return
    title, name, pattern = RESULT_FILES[what]
    folder = window.settings.value(EXPORT_FOLDER_KEY, str(Path.home()))
    path, _ = QFileDialog.getSaveFileName(window, title, str(Path(folder) / name), pattern)
    if path:
        window.settings.setValue(EXPORT_FOLDER_KEY, str(Path(path).parent))
        {"grid": window.export_grid, "csv": window.export_scores_csv, "summary": window.export_summary}[what](path)


def export_model(window: "MainWindow", folder: str) -> None:
    """Write the window's model as ONNX into ``folder`` (``session.export_onnx``), at the detection's
    threshold where there is one for this model."""
    model, path, threshold = window.model_in_use()
    if model is None:
        window.show_error("No model", "Train a model or load a checkpoint first.")
        return
    photo_size = None
    if model.networks.config.full_resolution:  # an exported photo model takes one size: the photos shown
        shown = window.data.test if window.data is not None and window.data.test is not None else None
        photo_size = session.usual_photo_size(shown.sizes if shown is not None else None)
        if photo_size is None:
            window.show_error("No photos loaded", "This model scores photos at their own resolution, and an exported "
                              "model takes one photo size: load a folder of the photos it will score first.")
            return
    window.state_status.setText("exporting the model…")
    window.runner.start("export-model", partial(tasks.export_model, model, folder, threshold, path, photo_size),
                        partial(_model_written, window), partial(_model_failed, window))


def model_dialog(window: "MainWindow") -> None:
    """Ask for a folder, then export the model into it."""
    if window.model is None:
        return
    start = window.settings.value(EXPORT_FOLDER_KEY, str(Path.home()))
    folder = QFileDialog.getExistingDirectory(window, "Export model as ONNX into", start)
    if folder:
        window.settings.setValue(EXPORT_FOLDER_KEY, folder)
        export_model(window, folder)


def _written(window: "MainWindow", path: str) -> None:
    window.statusBar().showMessage(f"Wrote {path}", 8000)
    window.exported.emit(path)


def _model_written(window: "MainWindow", done) -> None:
    window.state_status.setText("ready")
    checked = ("not checked: onnxruntime is not installed" if done.difference is None
               else f"it scores as the app does (largest relative difference {done.difference:.1g})")
    window.statusBar().showMessage(f"Wrote {done.model} and {done.spec}; {checked}.", 15_000)
    window.exported.emit(str(done.model))


def _model_failed(window: "MainWindow", message: str) -> None:
    window.state_status.setText("ready")
    window.show_error("Export failed", message)
