"""One image up close, the inspector's view: pan and zoom, its reconstruction and its anomaly map
as layers, the next and previous flagged image, and a verdict of one's own.

A photo is decoded once (by a worker, before this opens); zooming only changes the view.
pyqtgraph's ImageItem draws a reduced copy while the whole photo is in view (``autoDownsample``),
so a 20-megapixel photo pans as smoothly as a small one. The map spans the image; the part a
region of interest leaves out is greyed. Keys: F fit, 1 the worst place pixel for pixel, M the map,
R the reconstruction instead of the image, N and P the next and previous flagged image, G and D
mark the image good or defective (U takes the mark back); marks are kept beside the data.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QCheckBox, QDialog, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout

from egbad_core import session
from egbad_core.errors import EgbadError
from egbad_core.pictures import outside_shade, overlay_rgba

from . import tasks

if TYPE_CHECKING:
    from egbad_core.session import Detection, PhotoView

    from .main_window import MainWindow

SHADE_SIDE = 2048  # the region of interest's shade is drawn at most this many pixels a side
CLOSE_UP = 256  # pixels of the photo across the view at "actual pixels" around the worst place


class PhotoDialog(QDialog):
    """One image, its layers and its worst place; asks the window for the next flagged image
    (``step``) and to keep a verdict (``marked``)."""

    step = Signal(int)  # +1 the next flagged image, −1 the previous
    marked = Signal(object)  # True defective, False good, None the mark taken back

    def __init__(self, view: "PhotoView", title: str, low: float, high: float, parent=None) -> None:
        super().__init__(parent)
        self.resize(1000, 760)
        self.canvas = pg.GraphicsLayoutWidget()
        self.box = self.canvas.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.photo = pg.ImageItem(axisOrder="row-major", autoDownsample=True)
        self.heat = pg.ImageItem(axisOrder="row-major")
        self.shade = pg.ImageItem(axisOrder="row-major")
        self.marker = pg.ScatterPlotItem(symbol="o", size=28, brush=None, pen=pg.mkPen((60, 200, 255), width=2))
        for item in (self.photo, self.heat, self.shade, self.marker):
            self.box.addItem(item)

        self.show_map = QCheckBox("&Map")
        self.show_map.setChecked(True)
        self.show_map.toggled.connect(self._draw_map)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(10, 100)
        self.opacity.setValue(60)
        self.opacity.setMaximumWidth(160)
        self.opacity.valueChanged.connect(self._draw_map)
        self.rebuilt = QCheckBox("&Reconstruction")
        self.rebuilt.setToolTip("G(E(x)) in place of the image (R)")
        self.rebuilt.toggled.connect(self._draw_image)
        fit = QPushButton("&Fit (F)")
        fit.clicked.connect(self.fit)
        close_up = QPushButton("Worst place, &actual pixels (1)")
        close_up.clicked.connect(self.worst_up_close)
        self.where = QLabel("")
        self.verdict = QLabel("")
        self.verdict.setObjectName("verdictLabel")
        controls = QHBoxLayout()
        for widget in (self.show_map, QLabel("opacity"), self.opacity, self.rebuilt, fit, close_up):
            controls.addWidget(widget)
        controls.addStretch(1)
        controls.addWidget(self.where)
        below = QHBoxLayout()
        below.addWidget(QLabel("N / P: next / previous flagged   ·   G good, D defective, U unmark"))
        below.addStretch(1)
        below.addWidget(self.verdict)
        layout = QVBoxLayout(self)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(controls)
        layout.addLayout(below)
        keys = (("F", self.fit), ("1", self.worst_up_close), ("M", self.show_map.toggle), ("R", self.rebuilt.toggle),
                ("N", lambda: self.step.emit(1)), ("P", lambda: self.step.emit(-1)), ("G", lambda: self.marked.emit(False)),
                ("D", lambda: self.marked.emit(True)), ("U", lambda: self.marked.emit(None)))
        for key, action in keys:
            QShortcut(QKeySequence(key), self, activated=action)
        self.show_view(view, title, low, high)
        self.fit()

    def show_view(self, view: "PhotoView", title: str, low: float, high: float, verdict: str = "") -> None:
        """Draw another image in the same dialog (the view's zoom kept where the size is the same)."""
        same_size = getattr(self, "view", None) is not None and self.view.rgb.shape == view.rgb.shape
        self.view, self.low, self.high = view, low, high
        self.setWindowTitle(title)
        height, width = view.rgb.shape[:2]
        self.rebuilt.setEnabled(view.reconstruction is not None)
        self._draw_image()
        self.heat.setRect(0, 0, width, height)
        if view.inside is not None:
            step = max(1, int(np.ceil(max(height, width) / SHADE_SIDE)))
            self.shade.setImage(outside_shade(view.inside[::step, ::step]))
            self.shade.setRect(0, 0, width, height)
        self.shade.setVisible(view.inside is not None)
        row, column = view.worst
        self.marker.setData([column + 0.5], [row + 0.5])
        self.where.setText(f"{width}×{height} px · worst place at column {column}, row {row}")
        self.set_verdict(verdict)
        self._draw_map()
        if not same_size:
            self.fit()

    def set_verdict(self, verdict: str) -> None:
        self.verdict.setText(verdict)

    def _draw_image(self) -> None:
        rebuilt = self.rebuilt.isChecked() and self.view.reconstruction is not None
        self.photo.setImage(self.view.reconstruction if rebuilt else self.view.rgb)

    def _draw_map(self) -> None:
        if self.show_map.isChecked():
            self.heat.setImage(overlay_rgba(self.view.anomaly_map, self.low, self.high, self.opacity.value() / 100))
            self.heat.setRect(0, 0, self.view.rgb.shape[1], self.view.rgb.shape[0])
        self.heat.setVisible(self.show_map.isChecked())

    def fit(self) -> None:
        height, width = self.view.rgb.shape[:2]
        self.box.setRange(xRange=(0, width), yRange=(0, height), padding=0.02)

    def worst_up_close(self) -> None:
        """The worst place in the middle, CLOSE_UP of the photo's pixels across."""
        row, column = self.view.worst
        half = CLOSE_UP / 2
        self.box.setRange(xRange=(column - half, column + half), yRange=(row - half, row + half), padding=0)

    def visible_span(self) -> float:
        """How many of the photo's pixels the view spans along its shorter side (the aspect is locked)."""
        (x0, x1), (y0, y1) = self.box.viewRange()
        return float(min(x1 - x0, y1 - y0))


def show_photo(window, detection: "Detection", row: int, view: "PhotoView") -> PhotoDialog:
    """Show the image of ``row`` up close beside ``window``: in the dialog already open (one at a
    time, kept by the window), or a new one."""
    low, high = detection.map_range()
    title, verdict = detection.images.ids[row], verdict_of(detection, row)
    dialog = getattr(window, "photo_dialog", None)
    if dialog is not None and dialog.isVisible():
        dialog.show_view(view, title, low, high, verdict)
    else:
        window.photo_dialog = dialog = PhotoDialog(view, title, low, high, window)
        dialog.step.connect(partial(step_up_close, window))
        dialog.marked.connect(partial(mark_up_close, window))
        dialog.set_verdict(verdict)
        dialog.show()
    dialog.row = row
    return dialog


def verdict_of(detection: "Detection", row: int) -> str:
    """What the image is: flagged or not, its label, and an inspector's mark where there is one."""
    image_id = detection.images.ids[row]
    label = detection.images.labels[row]
    said = ["FLAGGED" if detection.flagged[row] else "not flagged"] + ([f"label {label}"] if label else [])
    if image_id in detection.corrections:
        said.append(f"marked {'defective' if detection.corrections[image_id] else 'good'}")
    return "   ·   ".join(said)


def open_up_close(window: "MainWindow", row: int) -> None:
    """The image of ``row`` of the window's detection up close: a photo decoded in a worker first,
    an image held in memory at once."""
    detection = window.detection
    shown = partial(show_photo, window, detection, row)
    if detection.photos is not None:
        make = partial(tasks.photo_up_close, detection, row, window.region)
        window.runner.start("photo", make, shown, partial(window.show_error, "Cannot open the photo"))
        return
    try:
        shown(session.image_view(detection, row))
    except EgbadError as error:
        window.show_error("Cannot show the image", str(error))


def step_up_close(window: "MainWindow", direction: int) -> None:
    """The next (+1) or previous (−1) flagged image, in the table's order, up close."""
    row = window.detection_view.step_flagged(direction)
    if row is None:
        window.statusBar().showMessage("No image is flagged at this threshold.", 5000)
    else:
        open_up_close(window, row)


def mark_up_close(window: "MainWindow", defect: bool | None) -> None:
    """Keep an inspector's verdict on the image up close; the metrics count it from now on."""
    dialog, detection = window.photo_dialog, window.detection
    try:
        kept = session.mark_image(detection, window.data.source, dialog.row, defect)
    except EgbadError as error:
        return window.show_error("Cannot keep the mark", str(error))
    window.detection_view.labels_changed()
    dialog.set_verdict(verdict_of(detection, dialog.row))
    said = {True: "defective", False: "good", None: "as its folder says"}[defect]
    window.statusBar().showMessage(f"{detection.images.ids[dialog.row]} marked {said}; kept in {kept}.", 8000)

