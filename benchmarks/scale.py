"""How training and scoring grow with the data: images/s and peak memory at 1k, 10k and 100k images.

Synthetic images are made on the fly into a temporary folder (64×64 gray noise; a bright spot on
half of the test images), nothing is committed. Each measured command runs in a fresh process
that reports its own peak resident memory (DataLoader workers are processes of their own and
hold one batch each). Sections:

  * scoring: ``egbad detect`` over 1k / 10k / 100k images with one model: images/s, peak RSS,
    and the peak relative to the smallest set (flat memory: close to 1);
  * training: ``egbad train`` (default preset at 32 px, one epoch) on 1k / 10k images:
    end-to-end images/s and peak RSS;
  * checkpoint cost: the seed preset's end-to-end training rate against its loop's own rate
    (iterations only), on the demo and on the demo ten times over;
  * decoding: a folder of 2,000 PNGs of 512×512 loaded with DataLoader workers against one thread;
  * training memory: 10,000 colour images of 256×256, patch preset at working size 256, one epoch
    of one crop an image (the crops' count does not change the memory that matters): peak RSS.

    python benchmarks/scale.py [--score-sizes 1000,10000,100000] [--train-sizes 1000,10000]
                               [--decode-files 2000] [--skip decode,checkpoint] [--out benchmarks/out/scale.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Peak RSS from /proc's VmHWM: getrusage's ru_maxrss survives exec on Linux, so a child started
# from this (large) process would report at least this process's size.
MEASURE = """
import json, sys, time
from egbad_core.cli import main
start = time.perf_counter()
code = main(sys.argv[1:])
seconds = time.perf_counter() - start
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"rc": code, "seconds": seconds, "peak_mb": peak / 1024}))
"""


def measured(args: list[str]) -> dict:
    """Run ``egbad <args>`` in a fresh process; its exit code, seconds, peak RSS and JSON line."""
    done = subprocess.run([sys.executable, "-c", MEASURE, *args], capture_output=True, text=True, cwd=ROOT)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines or lines[-1]["rc"] != 0:
        raise RuntimeError(f"egbad {' '.join(args)} failed: {done.stderr[-2000:]}")
    result = dict(lines[-1])
    if len(lines) > 1:
        result["egbad"] = lines[-2]
    return result


def write_images(folder: Path, count: int, kind: str) -> None:
    """``count`` synthetic PNGs of ``kind`` into ``folder``, written by one process per core."""
    folder.mkdir(parents=True, exist_ok=True)
    step = max(1, count // 16)
    with multiprocessing.Pool() as pool:
        pool.map(_write, [(str(folder), start, min(step, count - start), kind) for start in range(0, count, step)])


def _write(job: tuple[str, int, int, str]) -> None:
    folder, start, count, kind = job
    rng = np.random.default_rng(start)
    for i in range(start, start + count):
        Image.fromarray(_picture(kind, i, rng)).save(Path(folder) / f"{i:06d}.png", compress_level=1)


def _picture(kind: str, index: int, rng: np.random.Generator) -> np.ndarray:
    """gray/spots: 64×64 noise (spots: a bright square on every other one); colour: 256×256×3
    noise; large: a smooth 512×512×3 picture with fine noise (PNG about 0.5 MB)."""
    if kind == "colour":
        return rng.normal(120, 18, (256, 256, 3)).clip(0, 255).astype(np.uint8)
    if kind == "large":
        base = Image.fromarray((rng.normal(0, 1, (64, 64, 3)) * 40 + 128).clip(0, 255).astype(np.uint8))
        big = np.asarray(base.resize((512, 512), Image.Resampling.BICUBIC))
        return (big.astype(np.int16) + rng.integers(-6, 7, big.shape)).clip(0, 255).astype(np.uint8)
    image = rng.normal(120, 18, (64, 64)).clip(0, 255)
    if kind == "spots" and index % 2:
        y, x = rng.integers(8, 48, 2)
        image[y : y + 8, x : x + 8] = 250
    return image.astype(np.uint8)


def make_folder(root: Path, train: int, test_good: int, test_spot: int) -> Path:
    """An MVTec-layout folder of synthetic 64×64 images."""
    for name, count, kind in (("train/good", train, "gray"), ("test/good", test_good, "gray"), ("test/spot", test_spot, "spots")):
        write_images(root / name, count, kind)
    return root


def scoring_section(work: Path, sizes: list[int]) -> list[dict]:
    model_data = make_folder(work / "model", 1000, 1, 1)
    model = work / "model.pt"
    measured(["train", "--data", str(model_data), "--preset", "default", "--image-size", "32", "--epochs", "1",
              "--out", str(model), "--quiet"])
    rows = []
    for size in sizes:
        folder = make_folder(work / f"score{size}", 0, size // 2, size - size // 2)
        result = measured(["detect", "--checkpoint", str(model), "--data", str(folder), "--out-dir",
                           str(work / f"out{size}"), "--quiet"])
        rows.append({"images": size, "images_per_s": size / result["seconds"], "peak_mb": result["peak_mb"],
                     "seconds": result["seconds"]})
        print(f"score {size}: {rows[-1]}", file=sys.stderr, flush=True)
        shutil.rmtree(folder)
    for row in rows:
        row["peak_vs_smallest"] = row["peak_mb"] / rows[0]["peak_mb"]
    return rows


def training_section(work: Path, sizes: list[int]) -> list[dict]:
    rows = []
    for size in sizes:
        folder = make_folder(work / f"train{size}", size, 1, 1)
        result = measured(["train", "--data", str(folder), "--preset", "default", "--image-size", "32", "--epochs", "1",
                           "--out", str(work / f"t{size}.pt"), "--quiet"])
        rows.append({"images": size, "train_images_per_s": result["egbad"]["train_images_per_s"],
                     "peak_mb": result["peak_mb"], "seconds": result["seconds"]})
        print(f"train {size}: {rows[-1]}", file=sys.stderr, flush=True)
        shutil.rmtree(folder)
    return rows


def checkpoint_section(work: Path, epochs: int, multiples: list[int]) -> list[dict]:
    """The seed preset's end-to-end rate (what ``egbad train`` reports) against the loop's own: the
    same run's images over the time spent in iterations alone."""
    import pandas as pd
    import torch

    from egbad_core.config import SEED_PRESET, replace
    from egbad_core.data.sources import DataSource
    from egbad_core.data.loading import load_training_set
    from egbad_core.events import FinishedEvent, IterationEvent
    from egbad_core.system.memory import limit_heap_growth
    from egbad_core.train.trainer import Trainer

    limit_heap_growth()
    from importlib import resources

    demo = pd.read_csv(str(resources.files("egbad_resources") / "demo_train.csv.gz"))
    rows = []
    for times in multiples:
        path = work / f"demo{times}.csv"
        pd.concat([demo] * times).to_csv(path, index=False)
        train_set = load_training_set(DataSource.parse(str(path), normal_labels="7,8"), 64)
        trainer = Trainer(train_set, replace(SEED_PRESET, train=replace(SEED_PRESET.train, epochs=epochs)), checkpoint_path=work / f"s{times}.pt")
        loop_seconds, images, last = 0.0, 0, time.perf_counter()
        finished = None
        for event in trainer.run():
            now = time.perf_counter()
            if isinstance(event, IterationEvent):  # the time since the last event: this iteration
                loop_seconds += now - last
            if isinstance(event, FinishedEvent):
                finished = event
            last = time.perf_counter()
        images = len(train_set) * finished.epochs_done
        loop_rate = images / loop_seconds
        rows.append({"images": len(train_set), "epochs": epochs, "end_to_end_images_per_s": finished.images_per_s,
                     "loop_images_per_s": loop_rate, "ratio": finished.images_per_s / loop_rate})
        print(f"checkpoint {times}×: {rows[-1]}", file=sys.stderr, flush=True)
        del trainer, train_set
        torch.set_num_threads(torch.get_num_threads())
    return rows


def memory_section(work: Path, count: int) -> dict:
    folder = work / "colour" / "train" / "good"
    write_images(folder, count, "colour")
    result = measured(["train", "--data", str(folder.parent.parent), "--preset", "patch", "--image-size", "256",
                       "--epochs", "1", "--set", "train.crops_per_image=1", "--out", str(work / "colour.pt"), "--quiet"])
    held = count * 256 * 256 * 3
    return {"images": count, "side": 256, "channels": 3, "peak_mb": result["peak_mb"], "uint8_mb": held / 2**20,
            "float32_mb": 4 * held / 2**20, "seconds": result["seconds"]}


def decode_section(work: Path, files: int) -> dict:
    from egbad_core.data.decoding import decode_workers, decoded
    from egbad_core.data.folders import list_folder

    folder = work / "large" / "train" / "good"
    write_images(folder, files, "large")
    listing = list_folder({"good": folder}, folder.parent.parent, frozenset({"good"}))
    timings = {}
    for workers in (0, decode_workers(len(listing.files))):
        os.system("sync")
        start = time.perf_counter()
        count = sum(1 for item in decoded(listing.files, 128, workers=workers) if item[3] is None)
        timings[workers] = time.perf_counter() - start
        assert count == files
    one, many = timings[0], timings[max(timings)]
    return {"files": files, "side": 512, "workers": max(timings), "one_thread_s": one, "workers_s": many, "speedup": one / many}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--score-sizes", default="1000,10000,100000")
    parser.add_argument("--train-sizes", default="1000,10000")
    parser.add_argument("--decode-files", type=int, default=2000)
    parser.add_argument("--checkpoint-epochs", type=int, default=5)
    parser.add_argument("--checkpoint-data", default="1,10", help="the demo this many times over")
    parser.add_argument("--memory-images", type=int, default=10000)
    parser.add_argument("--skip", default="", help="sections to leave out: score,train,checkpoint,decode,memory")
    parser.add_argument("--work", default=None, help="folder for the synthetic images (default: a temporary one)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "scale.json"))
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    results: dict = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                                 "python": platform.python_version()}}
    with tempfile.TemporaryDirectory(dir=args.work) as folder:
        work = Path(folder)
        if "decode" not in skip:
            results["decode"] = decode_section(work, args.decode_files)
            print(f"decode: {results['decode']}", file=sys.stderr, flush=True)
            shutil.rmtree(work / "large")
        if "memory" not in skip:
            results["memory"] = memory_section(work, args.memory_images)
            print(f"memory: {results['memory']}", file=sys.stderr, flush=True)
            shutil.rmtree(work / "colour")
        if "checkpoint" not in skip:
            results["checkpoint"] = checkpoint_section(work, args.checkpoint_epochs,
                                                       [int(m) for m in args.checkpoint_data.split(",")])
        if "train" not in skip:
            results["train"] = training_section(work, [int(s) for s in args.train_sizes.split(",")])
        if "score" not in skip:
            results["score"] = scoring_section(work, [int(s) for s in args.score_sizes.split(",")])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(table(results))
    return 0


def table(results: dict) -> str:
    lines = []
    if "score" in results:
        lines += ["| scoring (egbad detect) | images/s | peak RSS MB | peak / smallest's |", "| --- | --- | --- | --- |"]
        lines += [f"| {r['images']:,} images | {r['images_per_s']:.0f} | {r['peak_mb']:.0f} | {r['peak_vs_smallest']:.2f} |"
                  for r in results["score"]]
    if "train" in results:
        lines += ["", "| training (egbad train, 1 epoch) | images/s end to end | peak RSS MB |", "| --- | --- | --- |"]
        lines += [f"| {r['images']:,} images | {r['train_images_per_s']:.0f} | {r['peak_mb']:.0f} |" for r in results["train"]]
    if "checkpoint" in results:
        lines += ["", "| seed preset | end-to-end images/s | loop images/s | ratio |", "| --- | --- | --- | --- |"]
        lines += [f"| {r['images']:,} images × {r['epochs']} epochs | {r['end_to_end_images_per_s']:.0f} | "
                  f"{r['loop_images_per_s']:.0f} | {r['ratio']:.3f} |" for r in results["checkpoint"]]
    if "memory" in results:
        m = results["memory"]
        lines += ["", f"Training {m['images']:,} images of {m['side']}×{m['side']}×{m['channels']} (patch preset, working size "
                  f"{m['side']}): peak RSS {m['peak_mb']:.0f} MB (the images: {m['uint8_mb']:.0f} MB as uint8, "
                  f"{m['float32_mb']:.0f} MB as float32)"]
    if "decode" in results:
        d = results["decode"]
        lines += ["", f"Decoding {d['files']:,} PNGs of {d['side']}×{d['side']}: one thread {d['one_thread_s']:.1f} s, "
                  f"{d['workers']} workers {d['workers_s']:.1f} s: {d['speedup']:.2f}×"]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
