"""Small defects in large photos (issue 20): each subject of ``scripts/make_large_photos.py`` trained
twice with ``auto`` and default settings, once with the photos resized to the working size (the
path before issue 20) and once at their own resolution (``model.photo_scale=1``), both scored by
``egbad detect``'s run into a folder; image AUROC, per defect kind, pixel AUROC (photos: every
defect pixel and every 64th other one), megapixels/s, training seconds.

    python scripts/make_large_photos.py PHOTOS /tmp/large --half tuning
    python benchmarks/large_photos.py /tmp/large --half tuning [--subjects elephants] [--out F.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from egbad_core import session  # noqa: E402
from egbad_core.events import run_to_end  # noqa: E402
from make_large_photos import LARGE_SUBJECTS  # noqa: E402
from subject_suite import per_kind  # noqa: E402

WAYS = (("resized to the working size", ["model.photo_scale=0"]), ("at their own resolution (auto)", []))


def _row(folder: Path, way: str, overrides: list[str], device: str) -> dict:
    source = session.parse_source(str(folder))
    preset, reason = session.choose_preset("auto", None, [*overrides, "train.seed=0", f"train.device={device}"], source)
    started = time.perf_counter()
    trainer = session.make_trainer(source, None, preset)
    run_to_end(trainer.run())
    checkpoint, seconds = trainer.checkpoint(), time.perf_counter() - started
    with tempfile.TemporaryDirectory() as out:
        summary = run_to_end(session.detect_into(session.ScoreRequest(checkpoint, threshold="f1"), source, out))
        with open(Path(out) / "scores.csv", newline="") as rows:
            table = list(csv.DictReader(rows))
    labels = [row["label"] for row in table]
    scores = np.array([float(row["score"]) for row in table])
    return {"subject": folder.name, "way": way, "auroc": summary["auroc"], "kinds": per_kind(labels, scores),
            "pixel_auroc": summary["pixel_auroc"], "train_seconds": round(seconds, 1),
            "images_per_s": summary["images_per_s"], "megapixels_per_s": summary.get("megapixels_per_s"),
            "photos_held": trainer.train_set.held or None, "why": reason}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="where make_large_photos.py wrote the folders")
    parser.add_argument("--half", choices=("tuning", "report"), default="tuning")
    parser.add_argument("--subjects", help="only these, by name")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out")
    args = parser.parse_args()
    names = set(args.subjects.split(",")) if args.subjects else None
    rows = []
    for subject in LARGE_SUBJECTS:
        if subject.half != args.half or (names and subject.name not in names):
            continue
        for way, overrides in WAYS:
            rows.append(_row(Path(args.root) / subject.name, way, overrides, args.device))
            print(json.dumps(rows[-1], default=float), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"half": args.half, "rows": rows}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
