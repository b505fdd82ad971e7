"""The CUDA check of issue 5, one short script for a lent GPU machine (a few minutes).

Trains the seed preset for a few epochs and scores the demo test set on the GPU, in float32 and
with bf16 mixed precision, printing images/s for both; then trains the default preset both ways
and prints the AUROC of each, so that mixed precision is shown not to hurt the scores (issue 5
allows it where the AUROC moves by less than 0.005).

    python benchmarks/gpu.py [--device cuda] [--seed-epochs 3] [--out benchmarks/out/gpu.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from egbad_core.score import metrics  # noqa: E402
from egbad_core.config import DEFAULT_PRESET, SEED_PRESET  # noqa: E402
from egbad_core.data.sources import DataSource  # noqa: E402
from egbad_core.data.loading import load_test_set, load_training_set  # noqa: E402
from egbad_core.score.whole import score_images  # noqa: E402
from egbad_core.train.trainer import Trainer  # noqa: E402


def synchronise(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run(preset, epochs: int, mixed: bool, device: str) -> dict:
    source = DataSource.parse("demo")
    train_set = load_training_set(source, preset.model.image_size)
    test_set = load_test_set(source, train_set.image_size, train_set.channels)
    train = replace(preset.train, epochs=epochs, device=device, mixed_precision=mixed)
    score = replace(preset.score, mixed_precision=mixed)
    trainer = Trainer(train_set, replace(preset, train=train, score=score))
    synchronise(device)
    start = time.perf_counter()
    for _event in trainer.run():
        pass
    synchronise(device)
    train_seconds = time.perf_counter() - start
    reference, _ = trainer.reference()
    images = test_set.pixels  # as loaded: scoring normalises each batch
    score_images(trainer.networks, images[:64], trainer.settings.normalisation, score, reference=reference)  # warm-up
    synchronise(device)
    scores = score_images(trainer.networks, images, trainer.settings.normalisation, score, keep_images=False, reference=reference)
    synchronise(device)
    return {
        "preset": preset.name, "epochs": epochs, "mixed_precision": mixed,
        "train_images_per_s": len(train_set) * epochs / train_seconds, "score_images_per_s": scores.images_per_s,
        "auroc": metrics.auroc(test_set.is_defect, scores.score),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seed-epochs", type=int, default=3)
    parser.add_argument("--default-epochs", type=int, default=DEFAULT_PRESET.train.epochs)
    parser.add_argument("--float32-only", action="store_true", help="skip bf16 (a smoke run on a CPU without AMX)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "gpu.json"))
    args = parser.parse_args()
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU"
    precisions = (False,) if args.float32_only else (False, True)
    rows = [run(SEED_PRESET, args.seed_epochs, mixed, args.device) for mixed in precisions]
    rows += [run(DEFAULT_PRESET, args.default_epochs, mixed, args.device) for mixed in precisions]
    print(f"device: {name}, torch {torch.__version__}")
    print(f"{'preset':<8} {'epochs':>6} {'bf16':>5} {'train img/s':>12} {'score img/s':>12} {'AUROC':>6}")
    for row in rows:
        print(f"{row['preset']:<8} {row['epochs']:>6} {str(row['mixed_precision']):>5} {row['train_images_per_s']:>12.1f} "
              f"{row['score_images_per_s']:>12.1f} {row['auroc']:>6.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"device": name, "torch": torch.__version__, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
