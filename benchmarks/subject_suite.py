"""The subjects suite of quality.py (issue 19): one half of benchmarks/subjects.py, made into folders
by scripts/make_subjects.py, each trained with the automatic choice and default settings and scored
beside the baselines.

Per subject: image AUROC, the AUROC of each defect kind (its images against the good ones), pixel
AUROC, PRO, the R² of G(E(x)) on the good test images (score/explained.py; a patch model's over its
tiles), training seconds and images/s; baselines: the nearest training patch, and for aligned parts
each pixel's mean and spread over the training images. The nearest patch looks every 4 px at 128 px
and every 8 px at 256 px (its search is what costs).

    python benchmarks/quality.py --suite subjects --photos PHOTOS --half report [--subjects a,b] [--seeds 0]
                                 [--no-baselines] [--keep DIR (the checkpoints, as DIR/<subject>_<seed>.pt)]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import baselines as simple
from subjects import half
from egbad_core import session
from egbad_core.events import run_to_end
from egbad_core.score import metrics
from egbad_core.score.explained import explained, variation_sums

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("scratch", "spot", "crack", "stain", "smear", "contamination")  # the last: the second painter's


def per_kind(labels: list[str], scores: np.ndarray) -> dict[str, float | None]:
    """Each defect kind's AUROC: its images against the good ones."""
    labels = np.asarray(labels)
    good = labels == "good"
    found = {}
    for kind in KINDS:
        chosen = good | (labels == kind)
        found[kind] = metrics.auroc(labels[chosen] != "good", scores[chosen]) if (labels == kind).any() else None
    return found


def tile_fit(images: np.ndarray, reconstructions: np.ndarray, tile: int) -> float | None:
    """R² of reconstructions (N, C, S, S) in [0, 1], each ``tile``-px tile measured against its own mean."""
    x, r = torch.from_numpy(images).float(), torch.from_numpy(reconstructions).float()
    n, c, s, _ = x.shape
    tile = min(tile, s)
    cut = s - s % tile

    def tiles(a: torch.Tensor) -> torch.Tensor:
        a = a[..., :cut, :cut].reshape(n, c, cut // tile, tile, cut // tile, tile)
        return a.permute(0, 2, 4, 1, 3, 5).reshape(-1, c, tile, tile)

    return explained(*variation_sums(tiles(x), tiles(r)))


def _baseline_rows(name: str, kind: str, train, test) -> list[dict]:
    unit_train, unit_test = torch.from_numpy(train.unit(slice(None))), torch.from_numpy(test.unit(slice(None)))
    stride = max(simple.STRIDE, train.image_size // 32)  # at 256 px every 8 px: 200 test images in a minute, not four
    found = [("nearest training patch (8×8 px)", lambda a, b: simple.nearest_patch(a, b, stride))]
    if kind == "aligned":
        found.append(("each pixel's mean and spread", simple.pixel_spread))
    rows = []
    for method, score in found:
        started = time.perf_counter()
        scores, maps = score(unit_train, unit_test)
        rows.append({"subject": name, "kind": kind, "method": f"baseline: {method}", "seed": None,
                     "auroc": metrics.auroc(test.is_defect, scores), "kinds": per_kind(test.labels, scores),
                     "pixel_auroc": metrics.pixel_auroc(maps, test.masks), "pro": metrics.pro(maps, test.masks),
                     "r2": None, "train_seconds": None, "images_per_s": len(test) / (time.perf_counter() - started)})
    return rows


def train_and_detect(source, seed: int, overrides: list[str], device: str):
    """What a user gets with the automatic choice: (preset, its reason, checkpoint, training seconds,
    the Detection of the source's test images at the best-F1 threshold)."""
    preset, reason = session.choose_preset("auto", None, [*overrides, f"train.seed={seed}", f"train.device={device}"], source)
    started = time.perf_counter()
    trainer = session.make_trainer(source, None, preset)
    run_to_end(trainer.run())
    checkpoint = trainer.checkpoint()
    seconds = time.perf_counter() - started
    detection = run_to_end(session.detect(session.ScoreRequest(checkpoint, threshold="f1"), source))
    return preset, reason, checkpoint, seconds, detection


def _egbad_row(name: str, kind: str, folder: Path, seed: int, overrides: list[str], device: str,
               keep: str | None = None) -> dict:
    preset, reason, checkpoint, seconds, detection = train_and_detect(session.parse_source(str(folder)), seed,
                                                                      overrides, device)
    if keep:  # for looking at its maps and reconstructions afterwards
        session.save_checkpoint(Path(keep) / f"{name}_{seed}.pt", checkpoint)
    summary, scores, images = detection.summary(), detection.scores, detection.images
    good = np.flatnonzero(~images.is_defect)
    fit = None
    if scores.reconstructions is not None:
        fit = tile_fit(images.unit(good), scores.reconstructions[good], checkpoint.networks.config.image_size)
    return {"subject": name, "kind": kind, "method": f"EGBAD {preset.name} (auto)", "seed": seed,
            "auroc": summary["auroc"], "kinds": per_kind(images.labels, scores.score),
            "pixel_auroc": summary["pixel_auroc"], "pro": summary["pro"], "r2": fit,
            "r2_training": checkpoint.notes.get("reconstruction_r2"),
            "auroc_residual": metrics.auroc(images.is_defect, scores.residual),
            "auroc_discrimination": metrics.auroc(images.is_defect, scores.discrimination),
            "train_seconds": round(seconds, 1), "images_per_s": summary["images_per_s"], "why": reason}


def subject_suite(args) -> int:
    root = Path(args.texture_root)
    chosen = [s for s in half(args.half) if not args.subjects or s.name in args.subjects.split(",")]
    rows = []
    for subject in chosen:
        folder = root / subject.name
        if not folder.is_dir():
            subprocess.run([sys.executable, str(ROOT / "scripts" / "make_subjects.py"), args.photos, str(root),
                            "--subjects", subject.name], check=True)
        if not args.no_baselines:
            data = run_to_end(session.load_data({"data": str(folder)}, 256 if subject.kind == "aligned" else 128))
        made = [] if args.no_baselines else _baseline_rows(subject.name, subject.kind, data.train, data.test)
        rows += made
        for row in made:
            print(json.dumps(row, default=float), flush=True)
        for seed in (int(s) for s in args.seeds.split(",")):
            rows.append(_egbad_row(subject.name, subject.kind, folder, seed, args.set, args.device, args.keep))
            print(json.dumps(rows[-1], default=float), flush=True)
    _print_table(rows)
    return rows


def _print_table(rows: list[dict]) -> None:
    fmt = lambda v, spec: format(v, spec) if v is not None else "—"  # noqa: E731
    header = (f"{'subject':<10} {'method':<36} {'AUROC':>6} " + " ".join(f"{k[:6]:>6}" for k in KINDS)
              + f" {'pixel':>6} {'PRO':>6} {'R²':>6} {'train s':>8} {'img/s':>6}")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['subject']:<10} {row['method'][:36]:<36} {fmt(row['auroc'], '>6.3f')} "
              + " ".join(fmt(row['kinds'][k], '>6.3f') for k in KINDS)
              + f" {fmt(row['pixel_auroc'], '>6.3f')} {fmt(row['pro'], '>6.3f')} {fmt(row['r2'], '>6.2f')} "
              f"{fmt(row['train_seconds'], '>8.1f')} {fmt(row['images_per_s'], '>6.1f')}")
    ours = [r["auroc"] for r in rows if r["method"].startswith("EGBAD")]
    if ours:
        print(f"EGBAD (auto): mean AUROC {np.mean(ours):.3f}, lowest {np.min(ours):.3f}")
