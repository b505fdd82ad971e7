"""What the window remembers between runs (QSettings), and where it keeps checkpoints.

Checkpoints go to the platform's application-data folder unless the user picked another, never
to the current directory: launched from a desktop menu, that is the home folder or ``/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QSettings, QSize, QStandardPaths

from egbad_core.config import PRESETS

if TYPE_CHECKING:
    from .main_window import MainWindow

CHECKPOINT_FOLDER_KEY = "checkpoints/folder"  # where training writes; shown in the window, changeable
BROWSE_FOLDER_KEY = "checkpoints/browse"  # where the load and save dialogs open
NUMBER_FIELDS = (("epochs", int), ("refine_epochs", int), ("batch_size", int), ("seed", int),
                 ("lr_g", float), ("lr_d", float), ("lr_e", float), ("lam", float))


def default_checkpoint_folder() -> str:
    """``<AppDataLocation>/checkpoints``: e.g. ~/.local/share/EGBAD Inspector/EGBAD Inspector/checkpoints."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return str(Path(base or Path.home()) / "checkpoints")


def checkpoint_folder(settings: QSettings) -> str:
    """Where training writes: the user's choice, else the app-data folder."""
    return str(settings.value(CHECKPOINT_FOLDER_KEY, "") or default_checkpoint_folder())


def browse_folder(settings: QSettings) -> str:
    """Where the checkpoint dialogs open."""
    return str(settings.value(BROWSE_FOLDER_KEY, "") or checkpoint_folder(settings))


def restore(window: "MainWindow") -> None:
    """Window geometry, the training panel's fields, the device and the data source, as last left."""
    s = window.settings
    geometry = s.value("window/geometry")
    if isinstance(geometry, QByteArray):
        window.restoreGeometry(geometry)
    else:
        window.resize(first_size(window))
    state = s.value("window/state")
    if isinstance(state, QByteArray):
        window.restoreState(state)
    splitter = s.value("window/splitter")
    if isinstance(splitter, QByteArray):
        window.splitter.restoreState(splitter)
    panel = window.training_panel
    preset = s.value("training/preset")
    if preset in PRESETS:
        panel.set_preset_name(preset)
        panel.show_preset(PRESETS[preset])
    for key, kind in NUMBER_FIELDS:
        value = s.value(f"training/{key}")
        if value is not None:
            try:
                getattr(panel, key).setValue(kind(value))
            except (TypeError, ValueError):
                pass
    device = panel.device.findData(s.value("training/device", "auto"))
    panel.device.setCurrentIndex(max(device, 0))
    panel.mixed_precision.setChecked(str(s.value("training/mixed_precision", "false")).lower() == "true")
    panel.set_checkpoint_folder(checkpoint_folder(s))
    request = s.value("data/request")
    if isinstance(request, dict):
        window.data_panel.restore(request)
    window.data_panel.last_folder = str(s.value("data/folder", ""))  # where the Browse dialogs open


def first_size(window: "MainWindow") -> QSize:
    """The window's size on a first start: tall enough to show the whole Training panel (Train
    button included) without scrolling and wide enough for both halves, within the screen."""
    panel = window.left_scroll.widget().sizeHint()
    chrome = window.menuBar().sizeHint().height() + window.statusBar().sizeHint().height() + 40
    screen = window.screen().availableGeometry()
    return QSize(min(1400, screen.width()), min(max(860, panel.height() + chrome), screen.height()))


def save(window: "MainWindow") -> None:
    """Remember the window and the training panel's fields for the next start."""
    s = window.settings
    s.setValue("window/geometry", window.saveGeometry())
    s.setValue("window/state", window.saveState())
    s.setValue("window/splitter", window.splitter.saveState())
    panel = window.training_panel
    s.setValue("training/preset", panel.preset.currentData())
    for key, _kind in NUMBER_FIELDS:
        s.setValue(f"training/{key}", getattr(panel, key).value())
    s.setValue("training/device", panel.device.currentData())
    s.setValue("training/mixed_precision", panel.mixed_precision.isChecked())
    s.setValue("data/folder", window.data_panel.last_folder)
    if window.data is not None:
        s.setValue("data/request", {k: v for k, v in window.data.request.items() if v is not None})
    s.sync()
