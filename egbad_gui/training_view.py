"""The Training tab: live D/G/E losses, the epoch's preview pictures and collapse warnings."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from egbad_core import session
from egbad_core.events import EpochEvent, PreviewEvent, WarningEvent
from egbad_core.pictures import to_rgb8

from .images import pixmap_from_rgb, strip
from .plots import LossPlot
from .tasks import LossBatch

PREVIEW_ROWS = ("G(fixed z)", "training images", "G(E(x))")


class TrainingView(QWidget):
    """Draws a training run's events; holds no training logic."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.loss_plot = LossPlot()
        self.preview_rows: dict[str, QLabel] = {}  # caption → the QLabel holding that row of pictures
        self.fit_label = QLabel("")  # R² of G(E(x)), under the row of reconstructions
        self.fit_label.setObjectName("fitLabel")
        preview_box = QWidget()
        preview_grid = QGridLayout(preview_box)
        for row, caption in enumerate(PREVIEW_ROWS):
            title = QLabel(caption)
            title.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            picture = QLabel("after the first epoch" if row == 0 else "")
            picture.setObjectName("previewImage" if row == 0 else "")
            preview_grid.addWidget(title, row, 0)
            preview_grid.addWidget(picture, row, 1)
            self.preview_rows[caption] = picture
        preview_grid.addWidget(self.fit_label, len(PREVIEW_ROWS), 1)
        preview_grid.setColumnStretch(1, 1)
        self.warning_banner = QLabel("")
        self.warning_banner.setWordWrap(True)
        self.warning_banner.setStyleSheet("background: #fff3c4; color: #5a4300; padding: 6px; border-radius: 4px")
        self.warning_banner.setVisible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.warning_banner)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.loss_plot)
        split.addWidget(preview_box)
        split.setSizes([420, 240])
        layout.addWidget(split)

    def start_run(self, keep_history: bool) -> None:
        """A new run clears the plot; a resumed one carries on where the curves end."""
        if not keep_history:
            self.loss_plot.clear_history()
        self.warning_banner.setVisible(False)

    def draw(self, event: object) -> None:
        match event:
            case LossBatch():
                self.loss_plot.append(event.losses)
            case EpochEvent():
                self.loss_plot.mark_epoch(self.loss_plot.point_count(), event.epoch)
            case PreviewEvent():
                self._show_preview(event)
            case WarningEvent():
                self.warning_banner.setText(f"⚠ Epoch {event.epoch}: {event.message}")
                self.warning_banner.setVisible(True)

    def _show_preview(self, event: PreviewEvent) -> None:
        scale = max(1, 64 // event.generated.shape[-1])
        for caption, images in zip(PREVIEW_ROWS, (event.generated, event.originals, event.reconstructions)):
            self.preview_rows[caption].setPixmap(pixmap_from_rgb(strip(list(to_rgb8(images))), scale))
        if event.fit is not None:
            poor = event.fit < session.POOR_FIT  # what the collapse watch warns of
            said = session.describe_fit(event.fit).replace("the reconstructions explain", "G(E(x)) explains", 1)
            self.fit_label.setText(f"<span style='color:{'#a05000' if poor else '#333'}'>Epoch {event.epoch}: "
                                   f"{said} over the training inputs; 1 is a perfect copy, 0 a flat tone</span>")
