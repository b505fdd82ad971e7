"""Remake docs/screenshot.png: the window after a short training and a detection on the demo.

Runs offscreen by default (QT_QPA_PLATFORM=offscreen); under xvfb-run it shows a real window.
Usage: python scripts/screenshot.py [--epochs 2] [--data FOLDER] [--tab detection|training] [--out docs/screenshot.png]
       [--checkpoint CKPT (scored instead of training)] [--photo ID [--close-up]: that photo at full size, its window]
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
    parser.add_argument("--data", help="an image folder to open instead of the demo")
    parser.add_argument("--tab", choices=("detection", "training"), default="detection", help="the tab shown")
    parser.add_argument("--checkpoint", help="score with this model instead of training one")
    parser.add_argument("--photo", help="open this test photo (its id) at full size and shoot that window")
    parser.add_argument("--close-up", action="store_true", help="with --photo: its worst place pixel for pixel")
    args = parser.parse_args()
    app = QApplication(sys.argv)
    from egbad_gui.app import build_window

    from egbad_gui.window_settings import CHECKPOINT_FOLDER_KEY

    work = Path(tempfile.mkdtemp())
    settings = QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue(CHECKPOINT_FOLDER_KEY, str(work / "checkpoints"))  # not the user's own folder
    if args.data:
        settings.setValue("data/request", {"data": str(Path(args.data).resolve())})
    window = build_window(settings)
    window.resize(1500, 900)
    window.show()

    def train() -> None:
        window.data_loaded.disconnect(train)
        if args.checkpoint:
            window.model_changed.connect(lambda: window.detect("egbad"))
            window.load_checkpoint(args.checkpoint)
            return
        window.training_panel.epochs.setValue(args.epochs)
        window.start_training()

    def detect(_reason: str) -> None:
        window.detect("egbad")

    def shoot() -> None:
        window.tabs.setCurrentWidget(window.detection_view if args.tab == "detection" else window.training_view)
        if args.photo:
            window.detection_view.photo_requested.emit(window.detection.images.ids.index(args.photo))
            QTimer.singleShot(500, photo_shown)
            return
        QTimer.singleShot(800, save)

    def photo_shown() -> None:
        dialog = getattr(window, "photo_dialog", None)
        if dialog is None:
            QTimer.singleShot(500, photo_shown)
            return
        if args.close_up:
            dialog.worst_up_close()
        QTimer.singleShot(800, lambda: save(dialog))

    def save(shown=None) -> None:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        (shown or window).grab().save(args.out)
        print(args.out)
        window.close()
        app.quit()

    window.data_loaded.connect(train)
    window.training_finished.connect(detect)
    window.detection_ready.connect(shoot)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
