"""Live inspection (issue 21): the latency from a file's arrival in a watched folder to its row in
scores.csv, median and 99th percentile, with files dropped at a steady rate.

A writer thread copies test images into a fresh folder at ``--rate`` images a second, each in two
halves a few milliseconds apart (as a camera's driver writes), and notes when each file's writing
ended; the watch runs on the main thread as ``egbad watch`` does and each InspectedEvent is timed
as it comes (its row is in scores.csv by then). Also counts what was scored twice or missed.

    python benchmarks/watch_latency.py --checkpoint CKPT --images FOLDER [--count 60] [--rate 2] [--settle 0.5]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from egbad_core import session
from egbad_core.data.decoding import IMAGE_SUFFIXES
from egbad_core.events import InspectedEvent, run_to_end


def _writer(sources: list[Path], folder: Path, rate: float, ended: dict[str, float]) -> None:
    start = time.monotonic()
    for index, source in enumerate(sources):
        time.sleep(max(0.0, start + index / rate - time.monotonic()))
        data = source.read_bytes()
        name = f"{index:05d}{source.suffix}"
        with open(folder / name, "wb") as stream:
            stream.write(data[: len(data) // 2])
            stream.flush()
            time.sleep(0.005)
            stream.write(data[len(data) // 2 :])
        ended[name] = time.monotonic()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--images", required=True, help="a folder whose images (searched below it) are dropped in turn")
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--rate", type=float, default=2.0, help="images a second")
    parser.add_argument("--settle", type=float, default=0.5)
    args = parser.parse_args()
    every = sorted(p for p in Path(args.images).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    sources = [every[i % len(every)] for i in range(args.count)]
    folder = Path(tempfile.mkdtemp(prefix="egbad-watch-"))
    request = session.ScoreRequest(session.load_checkpoint(args.checkpoint))
    plan = session.WatchPlan(folder, folder / "inspected", settle=args.settle)
    ended: dict[str, float] = {}
    arrived: dict[str, list[float]] = {}
    stop = threading.Event()

    def on_event(event: object) -> None:
        if isinstance(event, InspectedEvent):
            arrived.setdefault(event.image_id, []).append(time.monotonic())
            if len(arrived) == args.count:
                stop.set()

    # The watch on this thread, as egbad watch runs it (scoring in a worker thread, as the window's
    # Live tab does, is slower: benchmarks/RESULTS.md); the writer beside it, after a second.
    writer = threading.Thread(target=lambda: (time.sleep(1.0), _writer(sources, folder, args.rate, ended)))
    writer.start()
    threading.Timer(90 + 2 * args.count / args.rate, stop.set).start()  # an end, whatever happens
    run_to_end(session.watch_task(request, plan, stop), on_event)
    writer.join()
    latencies = np.array([arrived[name][0] - ended[name] for name in ended if name in arrived])
    rows = (folder / "inspected" / "scores.csv").read_text().splitlines()[1:]
    figures = {
        "images": args.count, "rate per s": args.rate, "settle s": args.settle,
        "median latency s": round(float(np.median(latencies)), 3),
        "p99 latency s": round(float(np.percentile(latencies, 99)), 3),
        "max latency s": round(float(latencies.max()), 3),
        "scored twice": sum(len(v) > 1 for v in arrived.values()), "missed": args.count - len(arrived),
        "rows": len(rows), "checkpoint": args.checkpoint, "machine": platform.processor() or platform.machine(),
    }
    shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
