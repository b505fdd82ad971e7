"""The window's responsiveness, offscreen: stalls while training, the threshold drag, start-up.

  * longest and 99th-percentile gap of a 10 ms heartbeat QTimer on the UI thread while the
    demo trains (default preset) in its worker;
  * time per threshold update (slider set + repaint) with 2,000 scored images, and with 100,000
    (``--rows``; small pictures, so that the arrays fit), with the time to show the table;
  * ``egbad-gui`` start to its first painted window, against ``python -c "import torch"``.

    python benchmarks/ui.py [--train-seconds 25] [--rows 100000 --side 32] [--only-drag] [--out benchmarks/out/ui.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST_PAINT = """
import os, sys
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import QEvent, QObject, QSettings
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv)
from egbad_gui.app import build_window
class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint:
            sys.stdout.write("torch loaded before paint: %s\\n" % ("torch" in sys.modules)); sys.stdout.flush()
            os._exit(0)
        return False
window = build_window(QSettings(sys.argv[1], QSettings.Format.IniFormat))
paint = FirstPaint()
window.installEventFilter(paint)
window.show()
app.exec()
"""


def wall(command: list[str], runs: int = 3) -> tuple[float, str]:
    best, output = float("inf"), ""
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True)
        best = min(best, time.perf_counter() - start)
        output = done.stdout.strip()
    return best, output


def startup() -> dict:
    with tempfile.TemporaryDirectory() as folder:
        torch_s, _ = wall([sys.executable, "-c", "import torch"])
        app_s, note = wall([sys.executable, "-c", FIRST_PAINT, f"{folder}/settings.ini"])
    return {"import torch s": torch_s, "first paint s": app_s, "ratio": app_s / torch_s, "note": note}


def stalls_while_training(train_seconds: float) -> dict:
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from egbad_gui.app import build_window

    app = QApplication.instance() or QApplication([])
    folder = tempfile.mkdtemp()
    os.chdir(folder)
    window = build_window(QSettings(f"{folder}/settings.ini", QSettings.Format.IniFormat))
    window.show()
    gaps: list[float] = []
    last = [0.0]

    def beat() -> None:
        now = time.perf_counter()
        if last[0]:
            gaps.append(now - last[0])
        last[0] = now

    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(beat)

    def start() -> None:
        window.training_panel.epochs.setValue(100)
        window.start_training()
        heartbeat.start()
        QTimer.singleShot(int(train_seconds * 1000), finish)

    def finish() -> None:
        heartbeat.stop()
        window.close()
        app.quit()

    window.data_loaded.connect(start)
    app.exec()
    points = window.loss_plot.point_count()
    gaps_ms = np.array(gaps) * 1000
    return {"beats": len(gaps), "loss points": points, "longest gap ms": float(gaps_ms.max()),
            "p99 gap ms": float(np.percentile(gaps_ms, 99)), "median gap ms": float(np.median(gaps_ms))}


def threshold_drag(count: int = 2000, side: int = 64) -> dict:
    import torch
    from PySide6.QtWidgets import QApplication

    from egbad_core.data.images import ImageSet
    from egbad_core.run.detection import Detection
    from egbad_core.model.references import ScoreStats
    from egbad_core.score.scores import Scores
    from egbad_gui.detection_view import DetectionView

    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    labels = ["good" if i % 3 else "scratch" for i in range(count)]
    images = ImageSet(torch.randint(0, 256, (count, 1, side, side), dtype=torch.uint8), labels,
                      [f"img{i:06d}.png" for i in range(count)], frozenset({"good"}), "synthetic")
    residual = rng.gamma(4.0, 100.0, count) + np.array([label != "good" for label in labels]) * 150
    discrimination = rng.gamma(3.0, 20.0, count)
    scores = Scores("egbad", residual, discrimination, 0.9 * residual + 0.1 * discrimination,
                    rng.random((count, 1, side, side), dtype=np.float32), rng.random((count, side, side), dtype=np.float32),
                    1.0, 0.1)
    stats = ScoreStats.of(scores.score[:500])
    view = DetectionView()
    view.resize(1200, 800)
    view.show()
    shown = time.perf_counter()
    view.show_detection(Detection(images, scores, stats.p99, stats))
    app.processEvents()
    shown = time.perf_counter() - shown
    times = []
    for value in list(range(0, 1001, 5)) + list(range(1000, -1, -5)):
        start = time.perf_counter()
        view.slider.setValue(value)
        app.processEvents()  # the repaint is part of keeping up with the mouse
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    view.close()
    return {"updates": len(ms), "median ms": float(np.median(ms)), "p99 ms": float(np.percentile(ms, 99)),
            "max ms": float(ms.max()), "show s": shown}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-seconds", type=float, default=25.0)
    parser.add_argument("--rows", type=int, default=100_000, help="images in the large table's drag")
    parser.add_argument("--side", type=int, default=32, help="their side (pictures kept as float32: 8·side² bytes a row)")
    parser.add_argument("--only-drag", action="store_true", help="only the large table's drag")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "ui.json"))
    args = parser.parse_args()
    import torch

    if args.only_drag:
        results = {f"threshold drag, {args.rows} images of {args.side} px": threshold_drag(args.rows, args.side)}
    else:
        results = {"start-up": startup(), "threshold drag, 2000 images": threshold_drag(),
                   f"threshold drag, {args.rows} images of {args.side} px": threshold_drag(args.rows, args.side),
                   "UI thread while training": stalls_while_training(args.train_seconds)}
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, offscreen Qt"
    print(f"machine: {machine}")
    for section, values in results.items():
        print(f"{section}:")
        for key, value in values.items():
            print(f"  {key:<28} {value:.4g}" if isinstance(value, float) else f"  {key:<28} {value}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": machine, **results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
