"""Speed and memory beside the seed's own code, measured in one run on one machine.

Prints a table and writes JSON:
  * training images/s, ``--preset seed`` against the seed's loop as written (seed_baseline.py);
  * scoring images/s, EGBAD as the product does it against the seed's scoring as written
    (batches of 5, training mode, autograd on), the best of three passes each;
  the seed's code runs in a child process with the C allocator as it comes, ours here with the
  allocator set as ``egbad`` and ``egbad-gui`` set it;
  * scoring images/s of ``egbad detect``'s whole path (the streaming task, its rows, grid and summary
    written) against the same seed scoring, each image decoded and scored once;
  * EGBAD against the project's own AnoGAN scorer (500 latent steps), per image;
  * peak resident memory of ``egbad train --data demo --preset seed`` and of the seed's loop,
    each in a fresh process.

    python benchmarks/speed.py [--epochs 2] [--anogan-images 8] [--out benchmarks/out/speed.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import seed_baseline  # noqa: E402
from egbad_core import session  # noqa: E402
from egbad_core.config import SEED_PRESET, ScoreConfig  # noqa: E402
from egbad_core.events import run_to_end  # noqa: E402
from egbad_core.system.memory import limit_heap_growth  # noqa: E402
from egbad_core.data.sources import DataSource  # noqa: E402
from egbad_core.data.loading import load_test_set, load_training_set  # noqa: E402
from egbad_core.score.anogan import score_anogan  # noqa: E402
from egbad_core.score.whole import score_images  # noqa: E402
from egbad_core.train.trainer import Trainer  # noqa: E402


def demo_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The demo split as the seed reads it: float32 (N, 28, 28), values 0–255."""
    from importlib import resources

    folder = resources.files("egbad_resources")
    arrays = []
    for split in ("train", "test"):
        frame = pd.read_csv(str(folder / f"demo_{split}.csv.gz"), dtype=np.float32)
        arrays.append(frame.iloc[:, 1:].values.astype("float32").reshape(-1, 28, 28))
    return arrays[0], arrays[1]


def peak_rss_mb(command: list[str]) -> float:
    """Peak resident memory of a fresh child process, in MB."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if after <= before:
        raise RuntimeError("a child's peak memory was hidden by an earlier, larger child; run this section first")
    return after / 1024


def seed_speeds(epochs: int, repeats: int) -> dict[str, float]:
    """The seed's training and scoring seconds, in a process of their own with the C allocator as
    the seed left it: the fixed mmap threshold the product sets slowed the seed's scoring by a third."""
    train28, test28 = demo_arrays()
    G, E, D, train_seconds = seed_baseline.train(train28, epochs=epochs)
    score_seconds = min(seed_baseline.score(G, E, D, test28)[1] for _ in range(repeats))
    return {"train_seconds": train_seconds, "train_images": len(train28) * epochs,
            "score_seconds": score_seconds, "score_images": len(test28)}


SEED_MEMORY_SCRIPT = """
import sys; sys.path.insert(0, 'benchmarks')
import speed, seed_baseline
train, test = speed.demo_arrays()
G, E, D, _ = seed_baseline.train(train, epochs=1)
seed_baseline.score(G, E, D, test)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--anogan-images", type=int, default=8)
    parser.add_argument("--anogan-steps", type=int, default=500)
    parser.add_argument("--score-repeats", type=int, default=3)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "speed.json"))
    parser.add_argument("--seed-part", action="store_true", help=argparse.SUPPRESS)  # the child below
    args = parser.parse_args()
    if args.seed_part:
        print(json.dumps(seed_speeds(args.epochs, args.score_repeats)))
        return 0
    rows: dict[str, dict] = {}

    # Memory first: getrusage reports the largest child so far, so the smaller one must not follow a larger one.
    if not args.skip_memory:
        with tempfile.TemporaryDirectory() as folder:
            ours = peak_rss_mb([sys.executable, "-m", "egbad_core.cli", "train", "--data", "demo", "--preset", "seed",
                                "--epochs", "1", "--out", f"{folder}/m.pt", "--quiet"])
        seed = peak_rss_mb([sys.executable, "-c", SEED_MEMORY_SCRIPT])
        rows["peak memory, one epoch (MB)"] = {"seed": seed, "ours": ours, "ratio": ours / seed}

    child = subprocess.run([sys.executable, __file__, "--seed-part", "--epochs", str(args.epochs),
                            "--score-repeats", str(args.score_repeats)], check=True, capture_output=True, text=True)
    seed = json.loads(child.stdout.strip().splitlines()[-1])

    limit_heap_growth()  # as egbad and egbad-gui start: the speeds below are the product's
    source = DataSource.parse("demo")
    train_set = load_training_set(source, 64)
    test_set = load_test_set(source, 64)
    trainer = Trainer(train_set, replace(SEED_PRESET, train=replace(SEED_PRESET.train, epochs=args.epochs)))
    start = time.perf_counter()
    for _event in trainer.run():
        pass
    ours_seconds = time.perf_counter() - start
    images = len(train_set) * args.epochs
    rows["training images/s, preset seed"] = {
        "seed": seed["train_images"] / seed["train_seconds"], "ours": images / ours_seconds,
        "ratio": seed["train_seconds"] / ours_seconds,
    }

    pixels = test_set.pixels  # as loaded: scoring normalises each batch
    score_images(trainer.networks, pixels[:64], trainer.settings.normalisation)  # warm-up, as the seed's first batch is
    ours_score_seconds = float("inf")  # the best of --score-repeats, as the seed's
    for _ in range(args.score_repeats):
        ours_scores = score_images(trainer.networks, pixels, trainer.settings.normalisation, ScoreConfig(batch_size=256))
        ours_score_seconds = min(ours_score_seconds, ours_scores.seconds)
    rows["scoring images/s, EGBAD"] = {
        "seed": seed["score_images"] / seed["score_seconds"], "ours": len(test_set) / ours_score_seconds,
        "ratio": seed["score_seconds"] / ours_score_seconds,
    }

    # What `egbad detect` does with the same model: the streaming path, rows, grid and summary written.
    checkpoint = trainer.checkpoint()
    with tempfile.TemporaryDirectory() as out:
        request = session.ScoreRequest(checkpoint, config=replace(checkpoint.settings.score, batch_size=256))
        detect_seconds = float("inf")
        for _ in range(args.score_repeats):
            started = time.perf_counter()
            run_to_end(session.detect_into(request, source, Path(out) / "results"))
            detect_seconds = min(detect_seconds, time.perf_counter() - started)
    rows["scoring images/s, egbad detect (rows, grid, summary)"] = {
        "seed": seed["score_images"] / seed["score_seconds"], "ours": len(test_set) / detect_seconds,
        "ratio": len(test_set) / detect_seconds / (seed["score_images"] / seed["score_seconds"]),
    }

    few = pixels[: args.anogan_images]
    anogan = score_anogan(trainer.networks, few, trainer.settings.normalisation,
                          ScoreConfig(anogan_steps=args.anogan_steps, batch_size=len(few)), keep_images=False)
    per_image_anogan = anogan.seconds / len(few)
    per_image_egbad = ours_score_seconds / len(test_set)
    rows[f"seconds per image, AnoGAN ({args.anogan_steps} steps) vs EGBAD"] = {
        "seed": per_image_anogan, "ours": per_image_egbad, "ratio": per_image_anogan / per_image_egbad,
    }

    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    print(f"machine: {machine}")
    print(f"{'what':<52} {'baseline':>10} {'ours':>10} {'ratio':>8}")
    for name, row in rows.items():
        print(f"{name:<52} {row['seed']:>10.4g} {row['ours']:>10.4g} {row['ratio']:>7.2f}×")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
