"""Entry point of ``egbad-gui``. `build_window()` makes the window without running the event
loop, for tests and automation."""

from __future__ import annotations

import sys

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication


def build_window(settings: QSettings | None = None):
    """The main window, not yet shown; a QApplication must exist."""
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True, imageAxisOrder="row-major")
    from .main_window import MainWindow

    return MainWindow(settings)


def main() -> int:
    """Start the app on the built-in demo (or the data last used) and run its event loop."""
    from egbad_core.session import limit_heap_growth

    limit_heap_growth()
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("EGBAD Inspector")
    app.setOrganizationName("EGBAD Inspector")
    window = build_window()
    window.show()
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
