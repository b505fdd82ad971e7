"""The sortable table of per-image scores: a model over the core's arrays, no copies per cell."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QPixmap

COLUMNS = ("Image", "ID", "Label", "Residual", "Discrimination", "Score", "Relative", "Flagged")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
FLAGGED_BRUSH = QBrush(QColor(255, 225, 225))
FLAGGED_TEXT = QBrush(QColor(190, 20, 20))
Index = QModelIndex | QPersistentModelIndex


class ScoreTableModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.ids: list[str] = []
        self.labels: list[str] = []
        self.numbers = np.zeros((0, 4))  # residual, discrimination, score, relative
        self.flagged = np.zeros(0, bool)
        self.thumbnail: Callable[[int, bool], QPixmap] | None = None

    def set_results(self, ids, labels, residual, discrimination, score, relative, flagged, thumbnail) -> None:
        self.beginResetModel()
        self.ids, self.labels = list(ids), list(labels)
        rel = relative if relative is not None else np.full(len(score), np.nan)
        self.numbers = np.column_stack([residual, discrimination, score, rel])
        self.flagged = np.asarray(flagged, bool).copy()
        self.thumbnail = thumbnail
        self.endResetModel()

    def set_flagged(self, flagged: np.ndarray) -> None:
        """Re-flag rows: only the rows that changed are repainted."""
        changed = np.flatnonzero(flagged != self.flagged)
        self.flagged = flagged.copy()
        if len(changed):
            top = self.index(int(changed.min()), 0)
            bottom = self.index(int(changed.max()), len(COLUMNS) - 1)
            self.dataChanged.emit(top, bottom)

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.ids)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole and orientation == Qt.Orientation.Horizontal:
            return {
                "Relative": "score ÷ the training images' 99th percentile: above 1.0 is unusual",
                "Residual": "Σ|x − G(E(x))| over pixels",
                "Discrimination": "Σ|f_D(x) − f_D(G(E(x)))| over D's features",
            }.get(COLUMNS[section])
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        name = COLUMNS[column]
        flagged = bool(self.flagged[row])
        if role == Qt.ItemDataRole.DecorationRole and name == "Image" and self.thumbnail is not None:
            return self.thumbnail(row, flagged)
        if role == Qt.ItemDataRole.BackgroundRole and flagged:
            return FLAGGED_BRUSH
        if role == Qt.ItemDataRole.ForegroundRole and flagged and name == "Flagged":
            return FLAGGED_TEXT
        if role == SORT_ROLE:
            if name in ("Image",):
                return row
            if name == "ID":
                return self.ids[row]
            if name == "Label":
                return self.labels[row]
            if name == "Flagged":
                return int(flagged)
            return float(self.numbers[row, COLUMNS.index(name) - 3])
        if role == Qt.ItemDataRole.DisplayRole:
            if name == "Image":
                return None
            if name == "ID":
                return self.ids[row]
            if name == "Label":
                return self.labels[row] or "—"
            if name == "Flagged":
                return "yes" if flagged else ""
            value = self.numbers[row, COLUMNS.index(name) - 3]
            if np.isnan(value):
                return "—"
            return f"{value:.3f}" if name == "Relative" else f"{value:.1f}"
        if role == Qt.ItemDataRole.TextAlignmentRole and name not in ("ID", "Label", "Image"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
