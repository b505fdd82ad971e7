"""A long session in the window, offscreen: does its memory or its thread count creep?

Drives one window through ``--cycles`` cycles of load → train 1 epoch → detect → export (grid,
scores.csv, summary), as a user who leaves the app open all day would, on each subject in turn
(the demo, and a small texture folder made by ``scripts/make_texture_folder.py``), and after each
cycle records the process's resident memory (VmRSS) and its thread count (the kernel's, so
torch's and Qt's own threads count too) once the window is idle again. Prints a table and the
growth after the first cycle, and writes JSON.

    python benchmarks/soak.py [--cycles 30] [--subjects demo,texture] [--out benchmarks/out/soak.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
IDLE_EXPIRY_S = 35.0


def status(field: str) -> int:
    """A number from /proc/self/status (VmRSS in kB, Threads)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def thread_names() -> dict[str, int]:
    """This process's threads by the name the kernel knows them by (Qt's pool: "Thread (pooled)")."""
    names: dict[str, int] = {}
    for task in Path("/proc/self/task").iterdir():
        name = (task / "comm").read_text().strip()
        names[name] = names.get(name, 0) + 1
    return names


def wait_for(app, signal, what: str, timeout_s: float = 900) -> list:
    """Run the event loop until ``signal`` fires (its arguments), or fail naming ``what``."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop, got = QEventLoop(), []

    def fired(*args) -> None:
        got.append(args)
        loop.quit()

    signal.connect(fired)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    signal.disconnect(fired)
    if not got:
        raise SystemExit(f"soak: {what} did not finish within {timeout_s:.0f} s")
    return got[0]


def settle(app, window, seconds: float = 1.0) -> None:
    """Let queued events and ending worker threads finish, so that what is counted is the idle window."""
    from PySide6.QtCore import QEventLoop, QTimer

    deadline = time.monotonic() + 30
    while window.runner.any_running() and time.monotonic() < deadline:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    gc.collect()


def cycle(app, window, request: dict, out: Path) -> dict:
    started = time.perf_counter()
    window.load_data(request)
    wait_for(app, window.data_loaded, "loading the data")
    window.training_panel.epochs.setValue(1)
    window.start_training()
    reason = wait_for(app, window.training_finished, "training")[0]
    window.detect()
    wait_for(app, window.detection_ready, "detection")
    for name, write in (("grid.png", window.export_grid), ("scores.csv", window.export_scores_csv),
                        ("summary.json", window.export_summary)):
        write(str(out / name))
        wait_for(app, window.exported, f"the export of {name}")
    settle(app, window)
    ranking = window.detection.ranking()
    return {"seconds": time.perf_counter() - started, "training": reason, "auroc": ranking[0] if ranking else None,
            "rss_mb": status("VmRSS") / 1024, "threads": status("Threads")}


def soak(subject: str, request: dict, cycles: int) -> dict:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from egbad_gui import window_settings
    from egbad_gui.app import build_window

    app = QApplication.instance() or QApplication([])
    folder = Path(tempfile.mkdtemp(prefix=f"soak-{subject}-"))
    settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue(window_settings.CHECKPOINT_FOLDER_KEY, str(folder / "checkpoints"))
    window = build_window(settings)
    window.show()
    wait_for(app, window.data_loaded, "the first load")  # the window loads its remembered data at start
    settle(app, window)
    before = {"rss_mb": status("VmRSS") / 1024, "threads": status("Threads")}
    rows = []
    for number in range(1, cycles + 1):
        row = cycle(app, window, request, folder)
        rows.append(row)
        print(f"{subject} cycle {number:2d}: {row['rss_mb']:7.1f} MB, {row['threads']:3d} threads, "
              f"{row['seconds']:5.1f} s, AUROC {row['auroc'] if row['auroc'] is None else round(row['auroc'], 3)}",
              flush=True)
    window.close()
    closed = {"threads": thread_names()}
    settle(app, window, IDLE_EXPIRY_S)  # Qt's pool ends a thread idle for 30 s
    closed["threads after 35 s"] = thread_names()
    first, last = rows[0], rows[-1]
    return {"request": request, "idle window before": before, "cycles": rows,
            "rss growth after the first cycle": last["rss_mb"] / first["rss_mb"] - 1,
            "highest rss after the first cycle MB": max(r["rss_mb"] for r in rows[1:]) if cycles > 1 else first["rss_mb"],
            "threads after the first cycle": sorted({r["threads"] for r in rows[1:]}),
            "threads after cycle 1": first["threads"], "window closed": closed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--subjects", default="demo,texture")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "soak.json"))
    args = parser.parse_args()
    import torch

    from egbad_core.session import limit_heap_growth

    limit_heap_growth()  # as egbad-gui sets the C allocator before its window opens
    results = {}
    for subject in args.subjects.split(","):
        if subject == "demo":
            request = {"data": "demo"}
        else:
            textures = Path(tempfile.mkdtemp(prefix="soak-textures-")) / "woven"
            subprocess.run([sys.executable, str(ROOT / "scripts" / "make_texture_folder.py"), str(textures),
                            "--train", "120", "--test", "40"], check=True)
            request = {"data": str(textures)}
        results[subject] = soak(subject, request, args.cycles)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, offscreen Qt"
    print(f"machine: {machine}")
    for subject, result in results.items():
        print(f"{subject}: RSS growth after cycle 1 {100 * result['rss growth after the first cycle']:+.1f}% "
              f"(cycle 1 {result['cycles'][0]['rss_mb']:.0f} MB, last {result['cycles'][-1]['rss_mb']:.0f} MB, "
              f"highest {result['highest rss after the first cycle MB']:.0f} MB); threads after cycle 1 "
              f"{result['threads after cycle 1']}, after later cycles {result['threads after the first cycle']}; "
              f"window closed: {result['window closed']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": machine, **results}, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
