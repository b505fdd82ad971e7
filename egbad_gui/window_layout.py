"""How the main window is laid out and which actions it has: built once, at its start."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QScrollArea, QSplitter, QTabWidget, QVBoxLayout, QWidget

from egbad_core import session

from . import exports, region_dialog

if TYPE_CHECKING:
    from .main_window import MainWindow


def lay_out(window: "MainWindow") -> None:
    """The panels on the left (scrolled), the Training and Detection tabs on the right, the status bar."""
    left = QWidget()
    left_layout = QVBoxLayout(left)
    for widget in (window.data_panel, window.training_panel, window.model_label):
        left_layout.addWidget(widget)
    left_layout.addStretch(1)
    window.left_scroll = scroll = QScrollArea()
    scroll.setWidget(left)
    scroll.setWidgetResizable(True)
    scroll.setMinimumWidth(360)
    window.tabs = QTabWidget()
    window.tabs.addTab(window.training_view, "Training")
    window.tabs.addTab(window.detection_view, "Detection")
    window.tabs.addTab(window.live_view, "Live")
    window.splitter = QSplitter(Qt.Orientation.Horizontal)
    window.splitter.addWidget(scroll)
    window.splitter.addWidget(window.tabs)
    window.splitter.setStretchFactor(1, 1)
    window.setCentralWidget(window.splitter)
    window.device_status = QLabel("device: …")
    window.data_status = QLabel("data: none")
    window.state_status = QLabel("starting")
    for label in (window.state_status, window.data_status, window.device_status):
        window.statusBar().addPermanentWidget(label)


def make_actions(window: "MainWindow") -> None:
    """The menus, their keyboard shortcuts, and the checkpoint buttons under the Training panel."""

    def action(text: str, slot, shortcut=None) -> QAction:
        act = QAction(text, window)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        act.triggered.connect(slot)
        return act

    window.open_csv_action = action("Open MNIST &CSV…", window._choose_csv)
    window.open_folder_action = action("Open image &folder…", window._choose_folder)
    window.region_action = action("Draw region of &interest…", lambda: region_dialog.draw_region(window), "Ctrl+R")
    window.load_action = action("&Load checkpoint…", window._load_checkpoint_dialog, QKeySequence.StandardKey.Open)
    window.save_action = action("&Save checkpoint as…", window._save_checkpoint_dialog, QKeySequence.StandardKey.Save)
    window.export_action = action("&Export result grid…", lambda: exports.result_dialog(window, "grid"), "Ctrl+E")
    window.export_csv_action = action("Export scores CS&V…", lambda: exports.result_dialog(window, "csv"))
    window.export_summary_action = action("Export summary &JSON…", lambda: exports.result_dialog(window, "summary"))
    window.export_model_action = action("Export &model as ONNX…", lambda: exports.model_dialog(window), "Ctrl+Shift+E")
    quit_action = action("&Quit", window.close, QKeySequence.StandardKey.Quit)
    window.train_action = action("&Train", window.start_training, "Ctrl+T")
    window.resume_action = action("&Resume training", window.resume_training)
    window.stop_action = action("&Stop", window.stop, "Esc")
    window.detect_action = action("&Detect", lambda: window.detect(window.detection_view.method.currentData()), "Ctrl+D")
    window.live_action = action("&Watch a folder live / pause", lambda: (window.tabs.setCurrentWidget(window.live_view),
                                                                       window.live_view.toggle()), "Ctrl+L")
    menus = window.menuBar()
    file_menu = menus.addMenu("&File")
    for item in (window.open_csv_action, window.open_folder_action, window.region_action, None, window.load_action, window.save_action, None,
                 window.export_action, window.export_csv_action, window.export_summary_action, window.export_model_action,
                 None, quit_action):
        file_menu.addSeparator() if item is None else file_menu.addAction(item)
    run_menu = menus.addMenu("&Run")
    for item in (window.train_action, window.resume_action, window.stop_action, window.detect_action, window.live_action):
        run_menu.addAction(item)
    menus.addMenu("&Help").addAction(action("&About EGBAD Inspector", lambda: about(window)))
    window.load_model_button = _button("Load checkpoint…", window._load_checkpoint_dialog, "loadCheckpointButton")
    window.save_model_button = _button("Save checkpoint as…", window._save_checkpoint_dialog, "saveCheckpointButton")
    row = QHBoxLayout()
    row.addWidget(window.load_model_button)
    row.addWidget(window.save_model_button)
    window.training_panel.layout().addLayout(row)


def _button(text: str, slot, name: str) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.clicked.connect(slot)
    return button


def about(window) -> None:
    """The About box: the version and the libraries in use."""
    import PySide6
    import pyqtgraph

    QMessageBox.about(
        window,
        "About EGBAD Inspector",
        f"<h3>EGBAD Inspector {session.__version__}</h3>"
        "<p>Visual defect inspection with EGBAD: a GAN with an encoder, trained on good parts only.</p>"
        f"<p>{session.library_versions()} · Qt {PySide6.QtCore.qVersion()} · PySide6 {PySide6.__version__} · "
        f"pyqtgraph {pyqtgraph.__version__}</p>",
    )
