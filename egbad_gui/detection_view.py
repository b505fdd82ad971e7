"""Detection mode: histogram, threshold, metrics, table and the selected image up close.

It shows a core `Detection` and changes only its threshold; moving the threshold compares
stored scores again and never re-scores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout, QHeaderView, QLabel,
    QProgressBar, QPushButton, QSpinBox, QSplitter, QTableView, QVBoxLayout, QWidget,
)
from superqt import QDoubleSlider

from egbad_core.pictures import colour_bar, to_rgb8, triptych
from egbad_core.session import FalseAlarmRate, one_in

from .images import outlined, pixmap_from_rgb
from .plots import ScoreHistogram, view_span
from .score_table import ScoreTableModel

if TYPE_CHECKING:
    from egbad_core.session import Detection



class DetectionView(QWidget):
    """The Detection tab: scores, threshold, table and the selected image up close."""
    detect_requested = Signal(str)  # method
    threshold_changed = Signal(float)  # raw threshold
    photo_requested = Signal(int)  # image row: open it up close (a photo at its own resolution)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.detection: Detection | None = None
        self.scale = 1.0  # raw score per displayed unit (the training 99th percentile)
        self.top = 1.0  # the slider's and the histogram's upper end, in displayed units
        self._thumbnails: dict[tuple[int, bool], object] = {}
        self._map_range: tuple[float, float | None] = (1.0, None)  # top, and low for an overlay (local models)
        self._pixel_line = ""  # pixel AUROC and PRO: they do not depend on the threshold either
        self._shown_flag: bool | None = None  # flag of the image shown up close
        self._ranking: tuple[float, float] | None = None  # AUROC, AUPRC: they do not depend on the threshold

        layout = QVBoxLayout(self)
        layout.addLayout(self._run_row())
        threshold_row, info_row = self._threshold_rows()
        layout.addLayout(threshold_row)
        layout.addLayout(info_row)
        vertical = QSplitter(Qt.Orientation.Vertical)
        vertical.addWidget(self._histogram_and_detail())
        vertical.addWidget(self._table())
        vertical.setSizes([300, 400])
        layout.addWidget(vertical, 1)
        layout.addLayout(self._export_row())
        self._set_enabled(False)

    # --- the parts, top to bottom ------------------------------------------------------------

    def _run_row(self) -> QHBoxLayout:
        self.method = QComboBox()
        self.method.addItem("EGBAD (one forward pass)", "egbad")
        self.method.addItem("AnoGAN (latent search, slow)", "anogan")
        self.detect_button = QPushButton("Detect")
        self.detect_button.setObjectName("detectButton")
        self.detect_button.setToolTip("Score the test images with the current model (Ctrl+D)")
        self.detect_button.clicked.connect(lambda: self.detect_requested.emit(self.method.currentData()))
        self.progress = QProgressBar()
        self.progress.setFormat("%v of %m images")
        self.progress.setVisible(False)
        run_row = QHBoxLayout()
        run_row.addWidget(QLabel("Method"))
        run_row.addWidget(self.method)
        run_row.addWidget(self.detect_button)
        run_row.addWidget(self.progress, 1)
        return run_row

    def _threshold_rows(self) -> tuple[QHBoxLayout, QHBoxLayout]:
        """The threshold's slider, box and automatic choices; below them the flagged count and metrics."""
        self.slider = QDoubleSlider(Qt.Orientation.Horizontal)  # in displayed units, 0 to self.top
        self.slider.setObjectName("thresholdSlider")
        self.slider.setRange(0.0, 1.0)
        self.slider.valueChanged.connect(self._slider_moved)
        self.spin = QDoubleSpinBox()
        self.spin.setObjectName("thresholdSpin")
        self.spin.setDecimals(3)
        self.spin.setSingleStep(0.01)
        self.spin.setKeyboardTracking(False)
        self.spin.valueChanged.connect(self._spin_changed)
        self.auto_f1 = QPushButton("Best F1")
        self.auto_f1.setToolTip("The threshold with the highest F1 on these labelled images")
        self.auto_p99 = QPushButton("99th pct")
        self.auto_p99.setToolTip("The training images' 99th percentile: for when only good parts are known")
        self.auto_sigma = QPushButton("Mean + 3σ")
        self.auto_sigma.setToolTip("The training images' mean score plus three standard deviations")
        self.auto_f1.clicked.connect(lambda: self.apply_auto("f1"))
        self.auto_p99.clicked.connect(lambda: self.apply_auto("p99"))
        self.auto_sigma.clicked.connect(lambda: self.apply_auto("mean3sigma"))
        self.one_in = QSpinBox()  # the threshold by the share of good parts it flags
        self.one_in.setObjectName("oneInSpin")
        self.one_in.setRange(2, 10_000_000)
        self.one_in.setValue(400)
        self.one_in.setPrefix("1 in ")
        self.one_in.setGroupSeparatorShown(True)
        self.by_rate = QPushButton("Flag good parts")
        self.by_rate.setToolTip("The threshold that flags about this share of good parts, fitted to the good "
                                "images the model was measured on")
        self.by_rate.clicked.connect(lambda: self.apply_rate(1.0 / self.one_in.value()))
        threshold_row = QHBoxLayout()
        threshold_row.addWidget(QLabel("Threshold"))
        threshold_row.addWidget(self.slider, 1)
        threshold_row.addWidget(self.spin)
        for widget in (self.auto_f1, self.auto_p99, self.auto_sigma, self.one_in, self.by_rate):
            threshold_row.addWidget(widget)

        self.flagged_label = QLabel("No scores yet: train or load a model, then Detect.")
        self.flagged_label.setObjectName("flaggedLabel")
        self.flagged_label.setStyleSheet("font-weight: bold")
        self.metrics_label = QLabel("")
        self.metrics_label.setObjectName("metricsLabel")
        self.alarms_label = QLabel("")  # what the threshold means for good parts
        self.alarms_label.setObjectName("alarmsLabel")
        info_row = QHBoxLayout()
        info_row.addWidget(self.flagged_label)
        info_row.addWidget(self.alarms_label)
        info_row.addStretch(1)
        info_row.addWidget(self.metrics_label)
        return threshold_row, info_row

    def _histogram_and_detail(self) -> QSplitter:
        """The score histogram with its draggable threshold line, beside the selected image up close."""
        self.histogram = ScoreHistogram()
        self.histogram.threshold_dragged.connect(self._line_dragged)
        self.detail_image = QLabel("Select a row to see the image, its reconstruction and residual.")
        self.detail_image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail_image.setMinimumSize(280, 120)
        self.detail_text = QLabel("")
        self.detail_text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail_text.setWordWrap(True)
        detail = QWidget()
        detail_layout = QVBoxLayout(detail)
        self.caption = QLabel("real  |  reconstruction  |  residual")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        detail_layout.addWidget(self.caption)
        picture_row = QHBoxLayout()
        picture_row.addWidget(self.detail_image, 1)
        self.colour_bar = ColourBar()
        picture_row.addWidget(self.colour_bar)
        detail_layout.addLayout(picture_row, 1)
        detail_layout.addWidget(self.detail_text)
        self.photo_button = QPushButton("Inspect up close (Enter)")
        self.photo_button.setToolTip("Pan and zoom into the image as it was scored (a photo at its own size), "
                                     "its reconstruction and its anomaly map as layers; mark it good or defective")
        self.photo_button.clicked.connect(self._open_photo)
        detail_layout.addWidget(self.photo_button)
        upper = QSplitter(Qt.Orientation.Horizontal)
        upper.addWidget(self.histogram)
        upper.addWidget(detail)
        upper.setSizes([600, 320])
        return upper

    def _table(self) -> QTableView:
        # The model sorts itself (score_table.py). Re-flagging changes a column on every threshold
        # step; rows re-sort only when a header is clicked, so the drag does not reorder them.
        self.model = ScoreTableModel(self)
        self.table = QTableView()
        self.table.setObjectName("scoreTable")
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setDefaultSectionSize(36)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        # Columns are sized to their first 100 rows: each row asked draws a thumbnail.
        self.table.horizontalHeader().setResizeContentsPrecision(100)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setIconSize(QSize(110, 34))
        self.table.selectionModel().currentRowChanged.connect(self._row_selected)
        self.table.doubleClicked.connect(lambda _index: self._open_photo())
        QShortcut(QKeySequence(Qt.Key.Key_Return), self.table, activated=self._open_photo)
        return self.table

    def _open_photo(self) -> None:
        row = self._current_row()
        if self.detection is not None and row is not None:
            self.photo_requested.emit(row)

    def step_flagged(self, direction: int) -> int | None:
        """Select the next (+1) or previous (−1) flagged image in the table's order, wrapping
        round; its image row, or None where none is flagged."""
        if self.detection is None or not self.model.rowCount():
            return None
        count, flagged = self.model.rowCount(), self.detection.flagged
        here = self.table.selectionModel().currentIndex()
        start = here.row() if here.isValid() else (-1 if direction > 0 else 0)
        for step in range(1, count + 1):
            view_row = (start + direction * step) % count
            if flagged[self.model.image_row(view_row)]:
                self.table.selectRow(view_row)
                return self.model.image_row(view_row)
        return None

    def labels_changed(self) -> None:
        """An inspector's mark changed a label: the metrics and the histogram again."""
        detection = self.detection
        self._ranking = detection.ranking()
        self.histogram.set_scores(detection.scores.score / self.scale, detection.truth, self.top)
        self._refresh_flags()

    def _export_row(self) -> QHBoxLayout:
        self.export_grid_button = QPushButton("Export grid…")
        self.export_grid_button.setObjectName("exportGridButton")
        self.export_grid_button.setToolTip("Save the result grid as a PNG (Ctrl+E)")
        self.only_flagged = QCheckBox("only flagged images")
        self.export_csv_button = QPushButton("Export scores CSV…")
        self.export_summary_button = QPushButton("Export summary JSON…")
        export_row = QHBoxLayout()
        export_row.addWidget(self.export_grid_button)
        export_row.addWidget(self.only_flagged)
        export_row.addStretch(1)
        export_row.addWidget(self.export_csv_button)
        export_row.addWidget(self.export_summary_button)
        return export_row

    # ------------------------------------------------------------------------------------

    def _set_enabled(self, enabled: bool) -> None:
        for widget in (self.slider, self.spin, self.auto_f1, self.auto_p99, self.auto_sigma,
                       self.export_grid_button, self.export_csv_button, self.export_summary_button, self.only_flagged):
            widget.setEnabled(enabled)

    def set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.method.setEnabled(not busy)

    def show_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)

    def show_detection(self, detection: "Detection") -> None:
        """Draw a new Detection: histogram, table, metrics and the first row up close."""
        self.detection = detection
        self._thumbnails.clear()
        scores = detection.scores
        stats = detection.train_stats
        self.scale = stats.p99 if stats is not None and stats.p99 > 0 else 1.0
        shown = scores.score / self.scale
        self.top = view_span(shown, detection.threshold / self.scale, relative=stats is not None)
        everything = view_span(shown, detection.threshold / self.scale, relative=False)  # the spin box reaches all
        low, top = detection.map_range()
        local = scores.local
        self._map_range = (top, low if local else None)
        self.caption.setText("real  |  reconstruction  |  anomaly map" if local else "real  |  reconstruction  |  residual")
        self.colour_bar.show_range(low / self.scale if local else low, top / self.scale if local else top,
                                   "score" if local else "residual")
        pixel = detection.pixel_metrics()
        pro = f"   PRO {pixel['pro']:.3f}" if pixel["pro"] is not None else ""  # photos: sampled pixels, no regions
        self._pixel_line = (f"pixel AUROC {pixel['pixel_auroc']:.3f}{pro} ({pixel['pixel_images']} images with masks)"
                            if pixel["pixel_auroc"] is not None else "")
        beyond = int((shown > self.top).sum())
        label = "score (1.0 = 99th percentile of the training images)" if stats else "score"
        if beyond:
            label += f"; {beyond} beyond {self.top:.3g} in the last bin"
        self.histogram.getPlotItem().setLabel("bottom", label)
        self.histogram.set_scores(shown, detection.truth, self.top)
        self.slider.blockSignals(True)
        self.slider.setRange(0.0, self.top)
        self.slider.blockSignals(False)
        self.spin.blockSignals(True)
        self.spin.setRange(0.0, everything)
        self.spin.blockSignals(False)
        self._ranking = detection.ranking()
        labelled = self._ranking is not None
        self.model.set_results(
            detection.images.ids, detection.images.labels, scores.residual, scores.discrimination,
            scores.score, detection.relative(), detection.flagged, self._thumbnail,
        )
        self._set_enabled(True)
        self.auto_f1.setEnabled(labelled)
        self.auto_p99.setEnabled(stats is not None)
        self.auto_sigma.setEnabled(stats is not None)
        for widget in (self.one_in, self.by_rate):
            widget.setEnabled(stats is not None and len(stats.scores) > 1)
        self.table.resizeColumnsToContents()
        self.table.sortByColumn(5, Qt.SortOrder.DescendingOrder)
        self.set_threshold(detection.threshold)
        if self.model.rowCount():
            self.table.selectRow(0)

    # --- threshold, from any of its four controls -------------------------------------------

    def set_threshold(self, raw: float) -> None:
        """The one place the threshold changes: every control follows without echoing."""
        if self.detection is None:
            return
        self.detection.threshold = float(raw)
        shown = raw / self.scale
        self.slider.blockSignals(True)
        self.slider.setValue(float(np.clip(shown, 0.0, self.top)))
        self.slider.blockSignals(False)
        self.spin.blockSignals(True)
        self.spin.setValue(shown)
        self.spin.blockSignals(False)
        self.histogram.set_threshold(shown)
        self._refresh_flags()
        self.threshold_changed.emit(float(raw))

    def _slider_moved(self, value: float) -> None:
        self.set_threshold(value * self.scale)

    def _spin_changed(self, value: float) -> None:
        self.set_threshold(value * self.scale)

    def _line_dragged(self, value: float) -> None:
        self.set_threshold(max(0.0, value) * self.scale)

    def apply_auto(self, method: str) -> None:
        """Set the threshold by ``method`` (f1, p99, mean3sigma); nothing where it cannot be had."""
        if self.detection is None:
            return
        try:
            threshold = self.detection.set_auto_threshold(method)
        except ValueError:
            return
        self.set_threshold(threshold)
        self.detection.threshold_method = method

    def apply_rate(self, rate: float) -> None:
        """Set the threshold that flags about ``rate`` of good parts; nothing where it cannot be had."""
        if self.detection is None or self.detection.train_stats is None or len(self.detection.train_stats.scores) < 2:
            return
        wanted = FalseAlarmRate(rate)
        threshold = self.detection.choose_threshold(wanted)
        self.set_threshold(threshold)
        self.detection.threshold_method = str(wanted)

    def _refresh_flags(self) -> None:
        detection = self.detection
        at = detection.at_threshold()
        self.model.set_flagged(detection.flagged)
        self.flagged_label.setText(f"{at.n_flagged} of {at.n_images} flagged")
        alarms = detection.false_alarms()
        self.alarms_label.setText("" if alarms is None else f"· about {one_in(alarms.rate)} good parts flagged")
        self.alarms_label.setToolTip("" if alarms is None else alarms.sentence())
        summary = []
        if at.precision is not None:
            summary.append(f"precision {at.precision:.3f}   recall {at.recall:.3f}   F1 {at.f1:.3f}")
        if self._ranking is not None:
            summary.append(f"AUROC {self._ranking[0]:.3f}   AUPRC {self._ranking[1]:.3f}")
        if self._pixel_line:
            summary.append(self._pixel_line)
        self.metrics_label.setText("     ".join(summary))
        row = self._current_row()
        if row is not None and self._shown_flag != bool(detection.flagged[row]):
            self._show_row(row)  # only when the selected image's flag changed

    # --- pictures -----------------------------------------------------------------------------

    def _thumbnail(self, row: int, flagged: bool):
        key = (row, flagged)
        if key not in self._thumbnails:
            tile = self._tile(row)
            pixmap = pixmap_from_rgb(tile).scaledToHeight(34)
            self._thumbnails[key] = outlined(pixmap, width=2) if flagged else pixmap
        return self._thumbnails[key]

    def _tile(self, row: int, remake: bool = False) -> np.ndarray:
        """image | reconstruction | map, or the image alone where the pictures were not kept (too
        many images) and ``remake`` is off: a thumbnail does not score its image again, the detail
        view does (one forward pass)."""
        detection = self.detection
        pixels = detection.images.unit(row)
        pictures = detection.pictures([row]) if remake or detection.scores.reconstructions is not None else None
        if pictures is None:
            return to_rgb8(pixels)
        top, low = self._map_range
        tile = triptych(pixels, pictures[0][0], pictures[1][0], top, low)
        if detection.region is not None:  # what the region of interest leaves out, greyed in each picture
            side = pixels.shape[-1]
            outside = ~detection.region.at((side, side))
            for start in (0, side + 2, 2 * side + 4):
                part = tile[:, start : start + side]
                part[outside] = (part[outside] * 0.4 + 20).astype(np.uint8)
        return tile

    def _current_row(self) -> int | None:
        index = self.table.selectionModel().currentIndex()
        return self.model.image_row(index.row()) if index.isValid() else None

    def _row_selected(self, current, _previous) -> None:
        self._show_row(self.model.image_row(current.row()) if current.isValid() else None)

    def _show_row(self, row: int | None) -> None:
        if self.detection is None or row is None or row < 0:
            return
        detection = self.detection
        scores = detection.scores
        flagged = bool(detection.flagged[row])
        self._shown_flag = flagged
        tile = self._tile(row, remake=True)
        room = self.detail_image.size()
        pixmap = pixmap_from_rgb(tile).scaled(
            max(room.width() - 8, 64), max(room.height() - 8, 32), Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.FastTransformation,
        )
        self.detail_image.setPixmap(outlined(pixmap, width=4) if flagged else pixmap)
        relative = f" ({scores.score[row] / self.scale:.2f} × the normal 99th percentile)" if detection.train_stats else ""
        label = detection.images.labels[row]
        self.detail_text.setText(
            f"<b>{detection.images.ids[row]}</b>{'  label ' + label if label else ''}<br>"
            f"residual {scores.residual[row]:.4g}   discrimination {scores.discrimination[row]:.4g}<br>"
            f"score {scores.score[row]:.4g}{relative}<br>"
            + ("<span style='color:#c01010'><b>FLAGGED</b></span>" if flagged else "not flagged")
        )



class ColourBar(QWidget):
    """The heat map's colours with the values at either end, in the score's units (relative to the
    training images where the table's scores are), so a colour on the map reads as a score."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("colourBar")
        self.high = QLabel("")
        self.bar = QLabel()
        self.low = QLabel("")
        self.unit = QLabel("")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for label in (self.high, self.bar, self.low, self.unit):
            label.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            layout.addWidget(label)
        self.bar.setPixmap(pixmap_from_rgb(colour_bar(120, 12)))

    def show_range(self, low: float, high: float, unit: str) -> None:
        self.high.setText(f"{high:.2f}")
        self.low.setText(f"{low:.2f}")
        self.unit.setText(unit)
