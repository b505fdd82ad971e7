"""Detection quality: presets × seeds on the demo task (or your data), with simple baselines.

Trains each preset with each seed, scores the test set with the trained checkpoint, and prints
a table (preset, seed, epochs, training seconds, AUROC, AUPRC, best F1) beside two baselines
computed here on the same split: PCA reconstruction error (20 components) and the distance to
the nearest training image. Writes the table as JSON too.

    python benchmarks/quality.py                       # default and seed presets, seeds 0 1 2
    python benchmarks/quality.py --presets default --seeds 0 --set train.epochs=5
    python benchmarks/quality.py --data path/to/mvtec_like_folder

The textures suite (issue 11) makes the procedural texture folders (scripts/make_textures.py),
trains the preset ``auto`` picks on each, and reports image AUROC, pixel AUROC, PRO, training
seconds and images/s per texture beside PCA-40, nearest-image and nearest-patch baselines:

    python benchmarks/quality.py --suite textures [--materials bricks,gravel,grass] [--seeds 0]

The subjects suite (issue 19) runs one half of benchmarks/subjects.py's photographs, textures and
aligned parts from five Debian packages (benchmarks/subject_suite.py says what it reports):

    python benchmarks/quality.py --suite subjects --photos PHOTOS --half tuning [--subjects a,b]

The same suite on photographed surfaces: ``--photos DIR`` makes each folder from DIR/<material>.png
(tiled to 512×512, in gray, as many texture photographs are) instead of the procedural material.
The photographs this project measures on are Extreme Tux Racer's terrain textures, from Debian's
package ``extremetuxracer-data``, fetched for the benchmark only and never committed:

    apt-get download extremetuxracer-data && dpkg-deb -x extremetuxracer-data_*.deb /tmp/etr
    python benchmarks/quality.py --suite textures --photos /tmp/etr/usr/share/games/etr/terrains \
        --texture-root benchmarks/out/photos --materials pebbles04,grass01,pave02,rock07,sand01,dirt01
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
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
sys.path.insert(0, str(ROOT / "benchmarks"))

import baselines as simple  # noqa: E402
from subjects import HALVES  # noqa: E402
from egbad_core import session
from egbad_core.score import metrics  # noqa: E402
from egbad_core.events import run_to_end  # noqa: E402
from egbad_core.config import get_preset, with_overrides  # noqa: E402
from egbad_core.data.sources import DataSource  # noqa: E402
from egbad_core.data.loading import load_test_set, load_training_set  # noqa: E402
from egbad_core.run.scoring import run_detection  # noqa: E402
from egbad_core.events import FinishedEvent  # noqa: E402
from egbad_core.train.trainer import Trainer  # noqa: E402


def baselines(source: DataSource, size: int) -> list[dict]:
    train = load_training_set(source, size)
    test = load_test_set(source, size, train.channels)
    x_train = train.unit(slice(None)).reshape(len(train), -1)
    x_test = test.unit(slice(None)).reshape(len(test), -1)
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


def texture_rows(root: Path, material: str, seeds: list[int], overrides: list[str], device: str,
                 photos: str | None = None) -> list[dict]:
    """Baselines and the automatic preset on one texture folder."""
    folder = root / material
    if not folder.is_dir():
        made_of = ["--photos", photos, "--gray"] if photos else []
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_textures.py"), str(root), "--materials", material,
                        *made_of], check=True, capture_output=True)
    source = session.parse_source(str(folder))
    rows = []
    data = run_to_end(session.load_data({"data": str(folder)}, 128))
    train, test = data.train, data.test
    truth, masks = test.is_defect, test.masks
    flat_train, flat_test = train.unit(slice(None)).reshape(len(train), -1), test.unit(slice(None)).reshape(len(test), -1)
    started = time.perf_counter()
    patch_scores, patch_maps = simple.nearest_patch(torch.from_numpy(train.unit(slice(None))), torch.from_numpy(test.unit(slice(None))))
    patch_seconds = time.perf_counter() - started
    for name, score, maps in (("PCA-40", simple.pca_error(flat_train, flat_test, 40), None),
                              ("nearest training image", simple.nearest_image(flat_train, flat_test), None),
                              ("nearest training patch (8×8 pixels)", patch_scores, patch_maps)):
        rows.append({"texture": material, "method": f"baseline: {name}", "seed": None,
                     "auroc": metrics.auroc(truth, score),
                     "pixel_auroc": metrics.pixel_auroc(maps, masks) if maps is not None else None,
                     "pro": metrics.pro(maps, masks) if maps is not None else None,
                     "train_seconds": None, "images_per_s": len(test) / patch_seconds if maps is not None else None})
    from subject_suite import train_and_detect

    for seed in seeds:
        preset, reason, checkpoint, seconds, detection = train_and_detect(source, seed, overrides, device)
        summary = detection.summary()
        rows.append({"texture": material, "method": f"EGBAD {preset.name} (auto)", "seed": seed,
                     "auroc": summary["auroc"], "pixel_auroc": summary["pixel_auroc"], "pro": summary["pro"],
                     "train_seconds": round(seconds, 1), "images_per_s": summary["images_per_s"],
                     "auroc_residual": metrics.auroc(truth, detection.scores.residual),
                     "auroc_discrimination": metrics.auroc(truth, detection.scores.discrimination), "why": reason})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def texture_suite(args: argparse.Namespace) -> int:
    root = Path(args.texture_root)
    rows = []
    for material in args.materials.split(","):
        rows += texture_rows(root, material, [int(s) for s in args.seeds.split(",")], args.set, args.device, args.photos)
    fmt = lambda v, spec: format(v, spec) if v is not None else "—"  # noqa: E731
    header = f"{'texture':<8} {'method':<40} {'seed':>4} {'AUROC':>6} {'pixel':>6} {'PRO':>6} {'train s':>8} {'img/s':>7}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['texture']:<8} {row['method']:<40} {fmt(row['seed'], '>4')} {fmt(row['auroc'], '>6.3f')} "
              f"{fmt(row['pixel_auroc'], '>6.3f')} {fmt(row['pro'], '>6.3f')} {fmt(row['train_seconds'], '>8.1f')} "
              f"{fmt(row['images_per_s'], '>7.1f')}")
    ours = [r["auroc"] for r in rows if r["method"].startswith("EGBAD")]
    if ours:
        print(f"EGBAD (auto): mean AUROC {np.mean(ours):.3f}, lowest {np.min(ours):.3f}")
    result = {"machine": _machine(), "suite": "textures", "photos": args.photos, "overrides": args.set, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=float))
    return 0


def _machine() -> str:
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"


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
    parser.add_argument("--suite", choices=("digits", "textures", "subjects"), default="digits")
    parser.add_argument("--half", choices=HALVES, default="tuning", help="subjects suite: which half")
    parser.add_argument("--subjects", help="subjects suite: only these, by name")
    parser.add_argument("--keep", help="subjects suite: a folder to save each trained model in")
    parser.add_argument("--materials", default="bricks,gravel,grass,stone,fabric,wood")
    parser.add_argument("--texture-root", default=str(ROOT / "benchmarks" / "out" / "textures"))
    parser.add_argument("--photos", help="textures suite: a folder of photographs, one per material (see above)")
    args = parser.parse_args()
    if args.suite == "subjects":
        from subject_suite import subject_suite

        if args.texture_root.endswith("textures"):
            args.texture_root = str(ROOT / "benchmarks" / "out" / "subjects")
        rows = subject_suite(args)
        out = args.out.replace("quality.json", f"subjects-{args.half}.json")
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps({"machine": _machine(), "suite": "subjects", "half": args.half,
                                         "overrides": args.set, "rows": rows}, indent=2, default=float))
        return 0
    if args.suite == "textures":
        if args.out.endswith("quality.json"):
            args.out = args.out.replace("quality.json", "textures.json")
        return texture_suite(args)

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
        "machine": _machine(),
        "data": args.data, "overrides": args.set, "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
