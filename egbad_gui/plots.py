"""The two pyqtgraph views: live D/G/E losses, and the score histogram with its threshold line.

Curves and items are made once and updated with setData; the loss plot redraws on a timer
at most ten times a second, whatever the iteration rate.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal

COLOURS = {"D": (220, 60, 60), "G": (40, 110, 220), "E": (40, 160, 70)}
SMOOTHING = 0.9  # exponential moving average weight of the smoothed lines
REDRAW_MS = 100
EPOCH_PEN = pg.mkPen((150, 150, 150), style=pg.QtCore.Qt.PenStyle.DashLine)


class LossPlot(pg.PlotWidget):
    """Live D, G and E losses, raw and smoothed, with epoch marks; redrawn at most ten times a second."""
    def __init__(self, parent=None) -> None:
        super().__init__(parent, background="w")
        self.setObjectName("lossPlot")
        item = self.getPlotItem()
        item.setLabel("bottom", "iteration (dashed lines: epoch ends)")
        item.setLabel("left", "loss")
        # A fixed axis width: tick labels of another width would re-lay out and repaint the
        # whole plot a second time on every redraw while training.
        item.getAxis("left").setWidth(48)
        # No grid: its lines across the whole view were a third of each repaint while training.
        item.addLegend(offset=(-10, 30), labelTextColor=(30, 30, 30), brush=(255, 255, 255, 200))
        item.setClipToView(True)
        item.setDownsampling(auto=True, mode="peak")
        # The view follows the data by setting its range before each paint, not by auto-range,
        # which changes the range during the paint and so paints the whole plot twice.
        self._view = item.getViewBox()
        self._view.disableAutoRange()
        self._view.sigRangeChangedManually.connect(self._stop_following)
        self._follow = True
        self.raw = {}
        self.smooth = {}
        for name, colour in COLOURS.items():
            faded = pg.mkPen(colour + (70,), width=1)
            self.raw[name] = item.plot(pen=faded, antialias=False)  # faint and dense: smoothing buys nothing
            self.smooth[name] = item.plot(pen=pg.mkPen(colour, width=2), name=f"{name} loss")
        self._epoch_lines: list[pg.InfiniteLine] = []
        self.clear_history()
        self._dirty = False
        self.redraws = 0
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        self._timer.start()

    def point_count(self) -> int:
        return len(self._losses)

    def clear_history(self) -> None:
        """Forget every point: a new run starts from an empty plot."""
        self._losses = np.zeros((0, 3))
        self._smoothed = np.zeros((0, 3))
        self._level = np.zeros(3)
        self._correction = 0.0
        for line in self._epoch_lines:
            self.removeItem(line)
        self._epoch_lines.clear()
        self._follow = True
        self._dirty = True

    def append(self, losses: np.ndarray) -> None:
        """Add rows of (D, G, E) losses; drawn on the next timer tick.

        The smoothed lines are a bias-corrected exponential moving average (as TensorBoard's),
        carried on from the last row instead of recomputed over the whole history.
        """
        if not len(losses):
            return
        rows = np.empty((len(losses), 3))
        for i, row in enumerate(losses):
            self._level = SMOOTHING * self._level + (1 - SMOOTHING) * row
            self._correction = SMOOTHING * self._correction + (1 - SMOOTHING)
            rows[i] = self._level / self._correction
        self._losses = np.concatenate([self._losses, losses])
        self._smoothed = np.concatenate([self._smoothed, rows])
        self._dirty = True

    def mark_epoch(self, iteration: int, epoch: int) -> None:
        """A dashed line at the epoch's end; no text on it, so a long run's many lines stay cheap
        to paint (the epoch shows in the progress bar and the hover text)."""
        line = pg.InfiniteLine(pos=iteration, angle=90, pen=EPOCH_PEN)
        line.setToolTip(f"end of epoch {epoch}")
        self.addItem(line)
        self._epoch_lines.append(line)

    def set_history(self, losses: np.ndarray, epoch_ends: list[int]) -> None:
        """Show a loaded checkpoint's whole history at once."""
        self.clear_history()
        self.append(np.asarray(losses, dtype=np.float64).reshape(-1, 3))
        for epoch, iteration in enumerate(epoch_ends, 1):
            self.mark_epoch(iteration, epoch)

    def _redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.redraws += 1
        x = np.arange(1, len(self._losses) + 1)
        for column, name in enumerate(COLOURS):
            self.raw[name].setData(x, self._losses[:, column])
            self.smooth[name].setData(x, self._smoothed[:, column])
        if any(self._view.autoRangeEnabled()):  # the corner "A" button: follow the data again
            self._view.disableAutoRange()
            self._follow = True
        finite = self._losses[np.isfinite(self._losses)]
        if self._follow and finite.size:
            self._follow_data(len(self._losses), min(float(finite.min()), 0.0), float(finite.max()))

    def _follow_data(self, count: int, low: float, high: float) -> None:
        """Grow the view ahead of the data, in steps: while the range stays put, a redraw repaints
        the curves alone, not the axes and their text (half the cost of a repaint)."""
        (x0, x1), (y0, y1) = self._view.viewRange()
        high = high if high > low else low + 1.0
        if count + 1 > x1 or x0 > 0:
            x1 = max(20.0, (count + 1) * 1.5)
        fits = y0 <= low and high <= y1
        loose = (high - low) < 0.5 * (y1 - y0)
        if not fits or loose:
            margin = 0.1 * (high - low)
            y0, y1 = low - (margin if low < 0 else 0.0), high + margin
        self._view.setRange(xRange=(0, x1), yRange=(y0, y1), padding=0)

    def _stop_following(self, *_args) -> None:
        """The user zoomed or panned: leave the view where they put it."""
        self._follow = False


FAR = 20.0  # relative scores (1.0 = the training images' 99th percentile) beyond which the view may stop


def view_span(shown: np.ndarray, threshold: float, relative: bool) -> float:
    """Where the histogram and the slider end: just past the highest score, or, where some lie far
    beyond the normal images (a patch model scores an obvious spot hundreds of times a normal
    image's worst place, which squeezed every normal image into the first bin), at FAR or twice the
    threshold, whichever is more; the histogram piles the scores beyond into its last bin."""
    top = max(float(shown.max()) if len(shown) else 0.0, threshold) * 1.05 or 1.0
    return min(top, max(FAR, 2.0 * threshold)) if relative else top


class ScoreHistogram(pg.PlotWidget):
    """Score histogram, normal and defect apart when labels exist, with a draggable threshold."""

    threshold_dragged = Signal(float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent, background="w")
        self.setObjectName("scoreHistogram")
        item = self.getPlotItem()
        item.setLabel("bottom", "score (1.0 = 99th percentile of the training images)")
        item.setLabel("left", "images")
        self.legend = item.addLegend(offset=(-10, 10), labelTextColor=(30, 30, 30))
        self.normal = pg.PlotDataItem(stepMode="center", fillLevel=0, brush=(60, 130, 220, 120), pen=(60, 130, 220))
        self.defect = pg.PlotDataItem(stepMode="center", fillLevel=0, brush=(230, 120, 30, 120), pen=(230, 120, 30))
        self.unlabelled = pg.PlotDataItem(stepMode="center", fillLevel=0, brush=(120, 120, 120, 120), pen=(90, 90, 90))
        for curve in (self.normal, self.defect, self.unlabelled):
            item.addItem(curve)
        self.line = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen((220, 30, 30), width=2),
                                    hoverPen=pg.mkPen((255, 0, 0), width=4), label="threshold",
                                    labelOpts={"position": 0.9, "color": (200, 30, 30)})
        item.addItem(self.line)
        self.line.sigPositionChanged.connect(lambda line: self.threshold_dragged.emit(float(line.value())))

    def set_scores(self, scores: np.ndarray, is_defect: np.ndarray | None, span: float | None = None) -> None:
        """Histograms of the scores, normal and defect apart where labels are known; with ``span``
        the bins end there and the scores beyond are counted in the last one."""
        if span is not None and len(scores) and scores.max() > span:
            scores = np.minimum(scores, span)
        edges = np.histogram_bin_edges(scores, bins=min(60, max(10, len(scores) // 10)))
        self.legend.clear()
        if is_defect is None:
            self.legend.addItem(self.unlabelled, "images")
            self.unlabelled.setData(edges, np.histogram(scores, edges)[0])
            self.normal.setData([], [])
            self.defect.setData([], [])
        else:
            self.legend.addItem(self.normal, "normal")
            self.legend.addItem(self.defect, "defect")
            self.normal.setData(edges, np.histogram(scores[~is_defect], edges)[0])
            self.defect.setData(edges, np.histogram(scores[is_defect], edges)[0])
            self.unlabelled.setData([], [])
        self.getPlotItem().enableAutoRange()

    def set_threshold(self, value: float) -> None:
        """Move the line without echoing a drag signal back."""
        self.line.blockSignals(True)
        self.line.setValue(value)
        self.line.blockSignals(False)
