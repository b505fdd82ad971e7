"""A photo at its own resolution up close: pan and zoom into it with its anomaly map laid over.

The photo is decoded once (by a worker, before this opens); zooming only changes the view.
pyqtgraph's ImageItem draws a reduced copy while the whole photo is in view (``autoDownsample``),
so a 20-megapixel photo pans as smoothly as a small one. The map, kept at about a thousand pixels
a side, spans the photo; the part a region of interest leaves out is greyed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QCheckBox, QDialog, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout

from egbad_core.pictures import outside_shade, overlay_rgba

if TYPE_CHECKING:
    from egbad_core.session import Detection, PhotoView

SHADE_SIDE = 2048  # the region of interest's shade is drawn at most this many pixels a side
CLOSE_UP = 256  # pixels of the photo across the view at "actual pixels" around the worst place


class PhotoDialog(QDialog):
    """One photo, its map and its worst place; F fits it, 1 shows the worst place pixel for pixel,
    M shows or hides the map."""

    def __init__(self, view: "PhotoView", title: str, low: float, high: float, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(1000, 760)
        self.view = view
        self.low, self.high = low, high
        height, width = view.rgb.shape[:2]
        self.canvas = pg.GraphicsLayoutWidget()
        self.box = self.canvas.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.photo = pg.ImageItem(view.rgb, axisOrder="row-major", autoDownsample=True)
        self.box.addItem(self.photo)
        self.heat = pg.ImageItem(axisOrder="row-major")
        self.heat.setRect(0, 0, width, height)
        self.box.addItem(self.heat)
        if view.inside is not None:
            step = max(1, int(np.ceil(max(height, width) / SHADE_SIDE)))
            shade = pg.ImageItem(outside_shade(view.inside[::step, ::step]), axisOrder="row-major")
            shade.setRect(0, 0, width, height)
            self.box.addItem(shade)
        row, column = view.worst
        self.marker = pg.ScatterPlotItem([column + 0.5], [row + 0.5], symbol="o", size=28, brush=None,
                                         pen=pg.mkPen((60, 200, 255), width=2))
        self.box.addItem(self.marker)

        self.show_map = QCheckBox("&Map")
        self.show_map.setChecked(True)
        self.show_map.toggled.connect(self._draw_map)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(10, 100)
        self.opacity.setValue(60)
        self.opacity.setMaximumWidth(160)
        self.opacity.valueChanged.connect(self._draw_map)
        fit = QPushButton("&Fit (F)")
        fit.clicked.connect(self.fit)
        close_up = QPushButton("Worst place, &actual pixels (1)")
        close_up.clicked.connect(self.worst_up_close)
        self.where = QLabel(f"{width}×{height} px · worst place at column {column}, row {row}")
        controls = QHBoxLayout()
        for widget in (self.show_map, QLabel("opacity"), self.opacity, fit, close_up):
            controls.addWidget(widget)
        controls.addStretch(1)
        controls.addWidget(self.where)
        layout = QVBoxLayout(self)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(controls)
        for key, action in (("F", self.fit), ("1", self.worst_up_close), ("M", self.show_map.toggle)):
            QShortcut(QKeySequence(key), self, activated=action)
        self._draw_map()
        self.fit()

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
    """Open the photo up close beside ``window`` (kept by it, so that one dialog is open at a time)."""
    low, high = detection.map_range()
    previous = getattr(window, "photo_dialog", None)
    if previous is not None:
        previous.close()
    window.photo_dialog = PhotoDialog(view, detection.images.ids[row], low, high, window)
    window.photo_dialog.show()
    return window.photo_dialog
