"""Detection quality: presets × seeds on the demo task (or your data), with simple baselines.

Trains each preset with each seed, scores the test set with the trained checkpoint, and prints
a table (preset, seed, epochs, training seconds, AUROC, AUPRC, best F1) beside two baselines
computed here on the same split: PCA reconstruction error (20 components) and the distance to
the nearest training image. Writes the table as JSON too.

    python benchmarks/quality.py                       # default and seed presets, seeds 0 1 2
    python benchmarks/quality.py --presets default --seeds 0 --set train.epochs=5
    python benchmarks/quality.py --data path/to/mvtec_like_folder
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.neighbors import NearestNeighbors

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from egbad_core import metrics  # noqa: E402
from egbad_core.config import get_preset, with_overrides  # noqa: E402
from egbad_core.data import DataSource, load_test_set, load_training_set  # noqa: E402
from egbad_core.detection import run_detection  # noqa: E402
from egbad_core.training import FinishedEvent, Trainer  # noqa: E402


def baselines(source: DataSource, size: int) -> list[dict]:
    train = load_training_set(source, size)
    test = load_test_set(source, size, train.channels)
    x_train = train.pixels.flatten(1).numpy()
    x_test = test.pixels.flatten(1).numpy()
    truth = test.is_defect
    pca = PCA(n_components=min(20, len(x_train) - 1), random_state=0).fit(x_train)
    pca_error = ((x_test - pca.inverse_transform(pca.transform(x_test))) ** 2).sum(axis=1)
    nearest = NearestNeighbors(n_neighbors=1).fit(x_train).kneighbors(x_test)[0][:, 0]
    ink = x_test.sum(axis=1)
    rows = []
    for name, score in (("PCA-20 reconstruction", pca_error), ("nearest training image", nearest), ("ink (pixel sum)", ink)):
        rows.append({
            "preset": f"baseline: {name}", "seed": None, "epochs": None, "train_seconds": None,
            "auroc": float(roc_auc_score(truth, score)), "auprc": float(average_precision_score(truth, score)),
            "best_f1": metrics.best_f1_threshold(truth, score)[1],
        })
    return rows


def run_one(source: DataSource, preset, seed: int, device: str) -> dict:
    preset = replace(preset, train=replace(preset.train, seed=seed, device=device))
    train_set = load_training_set(source, preset.model.image_size)
    trainer = Trainer(train_set, preset)
    start = time.perf_counter()
    finished = [e for e in trainer.run() if isinstance(e, FinishedEvent)][0]
    seconds = time.perf_counter() - start
    checkpoint = trainer.checkpoint()
    test_set = load_test_set(source, train_set.image_size, train_set.channels)
    detection = run_detection(checkpoint, test_set, "egbad", threshold="f1")
    summary = detection.summary()
    truth = test_set.is_defect
    extra = {
        "auroc_residual": metrics.auroc(truth, detection.scores.residual),
        "auroc_discrimination": metrics.auroc(truth, detection.scores.discrimination),
    }
    return {
        "preset": preset.name, "seed": seed, "epochs": finished.epochs_done, "train_seconds": round(seconds, 1),
        "auroc": summary["auroc"], "auprc": summary["auprc"], "best_f1": summary["f1"], **extra,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="default,seed")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--data", default="demo")
    parser.add_argument("--test-data")
    parser.add_argument("--normal-labels")
    parser.add_argument("--test-labels")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", action="append", default=[], help="override, e.g. train.epochs=5")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "quality.json"))
    parser.add_argument("--no-baselines", action="store_true")
    args = parser.parse_args()

    torch.set_num_threads(torch.get_num_threads())
    source = DataSource.parse(args.data, args.test_data, args.normal_labels, args.test_labels)
    rows = [] if args.no_baselines else baselines(source, 28 if source.kind != "folder" else 64)
    for name in args.presets.split(","):
        preset = with_overrides(get_preset(name), args.set)
        for seed in (int(s) for s in args.seeds.split(",")):
            rows.append(run_one(source, preset, seed, args.device))
            print(json.dumps(rows[-1]), flush=True)

    header = f"{'preset':<32} {'seed':>4} {'epochs':>6} {'train s':>8} {'AUROC':>6} {'AUPRC':>6} {'best F1':>7}"
    print(header)
    print("-" * len(header))
    for row in rows:
        fmt = lambda v, spec: format(v, spec) if v is not None else "—"  # noqa: E731
        print(f"{row['preset']:<32} {fmt(row['seed'], '>4')} {fmt(row['epochs'], '>6')} {fmt(row['train_seconds'], '>8.1f')} "
              f"{row['auroc']:>6.3f} {row['auprc']:>6.3f} {row['best_f1']:>7.3f}")
    for name in args.presets.split(","):
        values = [r["auroc"] for r in rows if r["preset"] == name]
        if values:
            print(f"{name}: mean AUROC {np.mean(values):.3f}, lowest {np.min(values):.3f}")
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "data": args.data, "overrides": args.set, "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
