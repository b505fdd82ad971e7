"""Pixel AUROC per defect kind from a run's written maps, with the defects whose paint could not be
seen left out of a second figure (issue 20's benchmark).

``scripts/make_subjects.py`` records in ``defects.csv`` how much each painted defect changed its
image inside the mask (mean grey levels). A smear, which blurs what is under it, changes nothing
where the surface is smooth at its scale (2,048-px wood: 0.2–0.6 grey levels): its mask marks
pixels equal to a good photo's, which no detector can find and no person could either. Both
figures are reported; the faint defects are named.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from egbad_core.run.maps import safe_name
from egbad_core.run.photos import pixel_sample
from egbad_core.score import metrics
from make_subjects import CHANGES_FILE

FAINT = 1.0  # grey levels: a defect whose mask changed less than this on average is not counted as seen


def changes(folder: Path) -> dict[str, float]:
    """Each defect image's visible change in grey levels, by its file under the folder; empty for a
    folder made before the record was kept."""
    path = folder / CHANGES_FILE
    if not path.is_file():
        return {}
    with open(path, newline="") as rows:
        return {row["file"]: float(row["change"]) for row in csv.DictReader(rows)}


def pixel_figures(folder: Path, maps: Path) -> dict:
    """Pixel AUROC over every test image's map in ``maps`` (``<safe name>.npy``, as ``egbad detect
    --maps`` writes them), each kind's (its defect pixels against every image's other pixels), and
    the same over the defects that changed their image by FAINT grey levels or more (each kind's
    figure is over those alone)."""
    seen = changes(folder)
    values, truths, kinds, faint = [], [], [], []
    for image in sorted((folder / "test").glob("*/*.png")):
        kind = image.parent.name
        relative = image.relative_to(folder).as_posix()
        anomaly_map = np.load(maps / f"{safe_name(relative)}.npy").astype(np.float32)
        mask = np.zeros(anomaly_map.shape, bool)
        if kind != "good":
            drawn = Image.open(folder / "ground_truth" / kind / f"{image.stem}_mask.png").convert("L")
            mask = np.asarray(drawn.resize(anomaly_map.shape[::-1], Image.Resampling.NEAREST)) > 127
            if seen.get(relative, FAINT) < FAINT:
                faint.append(f"{relative} ({seen[relative]:.1f})")
                kind = "faint"
        sampled, truth = pixel_sample(anomaly_map, mask)  # as the app samples a photo's pixels
        values.append(sampled)
        truths.append(truth)
        kinds.append(np.where(truths[-1], kind, "other"))
    value, truth, kind = np.concatenate(values), np.concatenate(truths), np.concatenate(kinds)
    normal = ~truth

    def auroc(positive: np.ndarray) -> float | None:
        chosen = positive | normal
        return metrics.auroc(truth[chosen], value[chosen]) if positive.any() else None

    per_kind = {str(name): auroc(kind == name) for name in np.unique(kind[truth]) if name != "faint"}
    return {"pixel_auroc": auroc(truth), "pixel_auroc_seen": auroc(truth & (kind != "faint")),
            "pixel_kinds": per_kind, "faint": faint}
