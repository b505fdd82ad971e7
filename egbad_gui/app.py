"""Entry point of ``egbad-gui``. `build_window()` makes the window without running the event
loop, for tests and automation."""

from __future__ import annotations

import argparse
import ctypes.util
import os
import sys
from typing import Sequence

# Qt's xcb plugin (an X display on Linux) loads these at start and aborts with a long plugin message
# when one is missing; the Debian package that brings each.
XCB_LIBRARIES = {"xcb-cursor": "libxcb-cursor0", "xcb-icccm": "libxcb-icccm4", "xcb-keysyms": "libxcb-keysyms1"}
EXIT_NO_DISPLAY = 2


def build_window(settings=None):
    """The main window, not yet shown; a QApplication must exist."""
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True, imageAxisOrder="row-major")
    from .main_window import MainWindow

    return MainWindow(settings)


def display_problem(environ: dict[str, str] | None = None, platform: str | None = None) -> str | None:
    """One sentence saying why no window can open here and what to do, or None where one can."""
    environ = dict(os.environ if environ is None else environ)
    platform = sys.platform if platform is None else platform
    chosen = environ.get("QT_QPA_PLATFORM", "")
    if not platform.startswith("linux") or (chosen and not chosen.startswith("xcb")):
        return None  # Windows, macOS, Wayland or offscreen: Qt finds its own way
    if not environ.get("DISPLAY") and not chosen:
        if environ.get("WAYLAND_DISPLAY"):
            return None
        return ("egbad-gui needs a desktop to open its window and this session has none (DISPLAY is not set); "
                "run it on the machine's desktop, through ssh -X, under xvfb-run, or use the egbad command instead.")
    missing = [name for name in XCB_LIBRARIES if ctypes.util.find_library(name) is None]
    if missing:
        libraries = ", ".join(f"lib{name}.so" for name in missing)
        packages = " ".join(XCB_LIBRARIES[name] for name in missing)
        return (f"egbad-gui cannot open its window: Qt's X11 plugin needs {libraries}, which this machine lacks; "
                f"install them (on Debian or Ubuntu: sudo apt-get install {packages}).")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Start the app on the built-in demo (or the data last used) and run its event loop."""
    parser = argparse.ArgumentParser(prog="egbad-gui", description="EGBAD Inspector's window: train EGBAD on "
                                     "images of good parts, inspect test images and flag defects.")
    from egbad_core.session import __version__

    parser.add_argument("--version", action="version", version=f"egbad-gui {__version__}")
    parser.parse_args(sys.argv[1:] if argv is None else argv)
    problem = display_problem()
    if problem is not None:
        print(problem, file=sys.stderr)
        return EXIT_NO_DISPLAY
    from PySide6.QtWidgets import QApplication

    from egbad_core.session import limit_heap_growth

    limit_heap_growth()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("EGBAD Inspector")
    app.setOrganizationName("EGBAD Inspector")
    window = build_window()
    window.show()
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
