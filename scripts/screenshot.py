"""Remake docs/screenshot.png: the window after a short training and a detection on the demo.

Runs offscreen by default (QT_QPA_PLATFORM=offscreen); under xvfb-run it shows a real window.
Usage: python scripts/screenshot.py [--epochs 2] [--out docs/screenshot.png]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    args = parser.parse_args()
    app = QApplication(sys.argv)
    from egbad_gui.app import build_window

    work = Path(tempfile.mkdtemp())
    os.chdir(work)  # checkpoints/ lands in a temporary folder
    window = build_window(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
    window.resize(1500, 900)
    window.show()

    def train() -> None:
        window.training_panel.epochs.setValue(args.epochs)
        window.start_training()

    def detect(_reason: str) -> None:
        window.detect("egbad")

    def shoot() -> None:
        window.tabs.setCurrentWidget(window.detection_view)
        QTimer.singleShot(800, save)

    def save() -> None:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        window.grab().save(args.out)
        print(args.out)
        window.close()
        app.quit()

    window.data_loaded.connect(train)
    window.training_finished.connect(detect)
    window.detection_ready.connect(shoot)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
