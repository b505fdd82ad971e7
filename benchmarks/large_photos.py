"""Small defects in large photos (issue 20): each subject of ``scripts/make_large_photos.py`` trained
twice with ``auto`` and default settings, once with the photos resized to the working size (the
path before issue 20) and once at their own resolution (``model.photo_scale=1``), both scored by
``egbad detect``'s run into a folder; image AUROC, per defect kind, pixel AUROC (photos: every
defect pixel and every 64th other one), megapixels/s, training seconds; each kind's pixel AUROC, and the pixel AUROC over the defects whose
paint changed the photo visibly (``visible.py``: a smear on a surface smooth at its scale does not).

    python scripts/make_large_photos.py PHOTOS /tmp/large --half tuning
    python benchmarks/large_photos.py /tmp/large --half tuning [--subjects elephants] [--out F.json]
                                      [--keep DIR] [--own-only] [--rebuild]

``--rebuild`` builds a kept model's reference again with the code as it is (as training's last step
builds it), to judge a change to the reference on the same networks.
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
from egbad_core.model.checkpoints import load_checkpoint, save_checkpoint  # noqa: E402
from make_large_photos import LARGE_SUBJECTS  # noqa: E402
from rescore import rebuilt  # noqa: E402
from subject_suite import per_kind  # noqa: E402
from visible import pixel_figures  # noqa: E402

WAYS = (("resized to the working size", ["model.photo_scale=0"]), ("at their own resolution (auto)", []))


def _row(folder: Path, way: str, overrides: list[str], device: str, kept: Path | None = None,
         rebuild: bool = False) -> dict:
    """One subject trained one way and scored; with ``kept`` (a checkpoint file), that model is scored
    instead of training one (its reference built again with ``rebuild``), or the one trained is
    written there (``--keep``)."""
    source = session.parse_source(str(folder))
    preset, reason = session.choose_preset("auto", None, [*overrides, "train.seed=0", f"train.device={device}"], source)
    started, held, rebuilding = time.perf_counter(), None, None
    if kept is not None and kept.is_file():
        checkpoint, seconds, reason = load_checkpoint(kept), None, f"scored {kept}"
        if rebuild:
            checkpoint, reason = rebuilt(checkpoint, folder), f"scored {kept}, its reference built again"
            rebuilding = round(time.perf_counter() - started, 1)
    else:
        trainer = session.make_trainer(source, None, preset)
        run_to_end(trainer.run())
        checkpoint, seconds, held = trainer.checkpoint(), time.perf_counter() - started, trainer.train_set.held or None
        if kept is not None:
            save_checkpoint(kept, checkpoint)
    with tempfile.TemporaryDirectory() as out:
        maps = Path(out) / "maps"
        summary = run_to_end(session.detect_into(session.ScoreRequest(checkpoint, threshold="f1"), source, out, maps))
        with open(Path(out) / "scores.csv", newline="") as rows:
            table = list(csv.DictReader(rows))
        pixels = pixel_figures(folder, maps)
    labels = [row["label"] for row in table]
    scores = np.array([float(row["score"]) for row in table])
    return {"subject": folder.name, "way": way, "auroc": summary["auroc"], "kinds": per_kind(labels, scores),
            **pixels, "train_seconds": seconds and round(seconds, 1),
            "reference_seconds": rebuilding,
            "images_per_s": summary["images_per_s"], "megapixels_per_s": summary.get("megapixels_per_s"),
            "photos_held": held, "why": reason}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="where make_large_photos.py wrote the folders")
    parser.add_argument("--half", choices=("tuning", "report"), default="tuning")
    parser.add_argument("--subjects", help="only these, by name")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out")
    parser.add_argument("--keep", type=Path, help="a folder: each model trained is kept there (<subject>_<way>.pt), "
                        "and one already there is scored instead of training it again")
    parser.add_argument("--own-only", action="store_true", help="only the photos at their own resolution")
    parser.add_argument("--rebuild", action="store_true", help="a kept model's reference built again (see above)")
    args = parser.parse_args()
    names = set(args.subjects.split(",")) if args.subjects else None
    rows = []
    for subject in LARGE_SUBJECTS:
        if subject.half != args.half or (names and subject.name not in names):
            continue
        for number, (way, overrides) in enumerate(WAYS):
            if args.own_only and overrides:
                continue
            kept = args.keep / f"{subject.name}_{number}.pt" if args.keep else None
            rows.append(_row(Path(args.root) / subject.name, way, overrides, args.device, kept, args.rebuild))
            print(json.dumps(rows[-1], default=float), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"half": args.half, "rows": rows}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
