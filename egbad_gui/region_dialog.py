"""Draw a region of interest over one of the folder's photos: the part to inspect, kept beside the
data as ``roi.png``, which every later scoring of the folder keeps to (places outside never flag).

The outline is a polygon over the first training image: drag its corners, click an edge
to add a corner, right-click a corner to remove it. Ctrl+S saves, Delete removes the region.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from egbad_core import session
from egbad_core.errors import EgbadError

if TYPE_CHECKING:
    from .main_window import MainWindow

INSET = 0.1  # a new outline starts this share of the picture in from each edge


class RegionDialog(QDialog):
    """A polygon over a picture; accepted with ``choice`` "save" (``points`` in the picture's
    pixels) or "remove"."""

    def __init__(self, picture: np.ndarray, existing: np.ndarray | None, title: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(900, 720)
        self.shape = picture.shape[:2]
        self.choice: str | None = None
        canvas = pg.GraphicsLayoutWidget()
        box = canvas.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        box.addItem(pg.ImageItem(picture, axisOrder="row-major", autoDownsample=True))
        self.polygon = pg.PolyLineROI(_outline(existing, self.shape), closed=True, pen=pg.mkPen((255, 190, 0), width=2))
        box.addItem(self.polygon)
        box.autoRange()
        hint = QLabel("Drag the corners around the part to inspect; click an edge to add a corner, "
                      "right-click a corner to remove it. Places outside the outline are never flagged.")
        hint.setWordWrap(True)
        self.save_button = QPushButton("&Save as roi.png")
        self.save_button.setShortcut(QKeySequence.StandardKey.Save)
        self.save_button.setDefault(True)
        self.remove_button = QPushButton("&Remove region")
        self.remove_button.setShortcut(QKeySequence.StandardKey.Delete)
        self.remove_button.setEnabled(existing is not None)
        cancel = QPushButton("Cancel")
        self.save_button.clicked.connect(lambda: self._finish("save"))
        self.remove_button.clicked.connect(lambda: self._finish("remove"))
        cancel.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        buttons.addWidget(cancel)
        buttons.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.addWidget(hint)
        layout.addWidget(canvas, 1)
        layout.addLayout(buttons)

    def points(self) -> list[tuple[float, float]]:
        """The outline's corners in the picture's pixels (x, y)."""
        corners = [self.polygon.mapToParent(QPointF(point)) for point in self.polygon.getState()["points"]]
        return [(corner.x(), corner.y()) for corner in corners]

    def _finish(self, choice: str) -> None:
        self.choice = choice
        self.accept()


def _outline(existing: np.ndarray | None, shape: tuple[int, int]) -> list[tuple[float, float]]:
    """A first outline: around the region already kept (its bounding box), or inset from the edges."""
    height, width = shape
    if existing is not None and existing.any():
        rows, columns = np.flatnonzero(existing.any(axis=1)), np.flatnonzero(existing.any(axis=0))
        top, bottom, left, right = rows[0], rows[-1] + 1, columns[0], columns[-1] + 1
    else:
        top, bottom, left, right = INSET * height, (1 - INSET) * height, INSET * width, (1 - INSET) * width
    return [(left, top), (right, top), (right, bottom), (left, bottom)]


def draw_region(window: "MainWindow") -> RegionDialog | None:
    """Open the dialog over the loaded folder's first photo (not modal: the window stays usable);
    what it asks for is done when it closes."""
    source = window.data.source if window.data is not None else None
    try:
        if source is None:
            raise EgbadError("Load a folder of photos first: a region of interest is drawn over one of them.")
        picture, path = session.example_picture(source)
        existing = session.folder_region(source)
    except EgbadError as error:
        window.show_error("Cannot draw a region of interest", str(error))
        return None
    shown = existing.at(picture.shape[:2]) if existing is not None else None
    dialog = RegionDialog(picture, shown, f"Region of interest — drawn over {path.name}", window)
    dialog.accepted.connect(lambda: _apply(window, dialog, source))
    dialog.open()
    window.region_dialog = dialog
    return dialog


def _apply(window: "MainWindow", dialog: RegionDialog, source) -> None:
    try:
        if dialog.choice == "remove":
            removed = session.remove_region(source)
            said = "Region of interest removed: whole images are inspected." if removed else "There was no region to remove."
        else:
            region = session.save_region(source, session.polygon_region(dialog.points(), dialog.shape))
            said = f"Saved {region.path}: it marks {region.share:.0%} of each image; detection keeps to it from now on."
    except EgbadError as error:
        window.show_error("Region of interest not saved", str(error))
        return
    window.statusBar().showMessage(said, 15_000)
    window.region_changed.emit()
