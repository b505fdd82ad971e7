"""The peer to beat: anomalib 2.7's PaDiM on an untrained ResNet-18, on the subjects' folders.

Runs in its own virtual environment (anomalib is not a dependency of the product; its torch is the
one on this machine's disk), offline: the backbone is timm's ResNet-18 at its random initialisation
(``pre_trained=False``), so no weights are fetched. It uses anomalib's own ``PadimModel`` (what its
Engine trains and runs, without Lightning's loop): each training image's layer1–3 features at every
place, a Gaussian per place, a test image's Mahalanobis map and its worst place as its score.
Prints one JSON line per folder: image AUROC, each defect kind's AUROC, pixel AUROC, seconds.

    python -m venv /tmp/anovenv && /tmp/anovenv/bin/pip install "anomalib==2.7.*" torch==2.14.1 torchvision==0.29.1
    /tmp/anovenv/bin/python benchmarks/padim_peer.py FOLDER [FOLDER ...] [--side 256]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from anomalib.models.image.padim.torch_model import PadimModel
from PIL import Image
from sklearn.metrics import roc_auc_score

KINDS = ("scratch", "spot", "crack", "stain", "smear", "contamination")  # the last: the second painter's
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])  # anomalib's pre-processing


def _load(path: Path, side: int) -> np.ndarray:
    picture = Image.open(path).convert("RGB").resize((side, side), Image.Resampling.BILINEAR)
    return ((np.asarray(picture, dtype=np.float32) / 255.0 - MEAN) / STD).transpose(2, 0, 1).astype(np.float32)


def _mask(folder: Path, kind: str, name: str, side: int) -> np.ndarray:
    path = folder / "ground_truth" / kind / f"{Path(name).stem}_mask.png"
    if kind == "good" or not path.is_file():
        return np.zeros((side, side), bool)
    return np.asarray(Image.open(path).convert("L").resize((side, side), Image.Resampling.NEAREST)) > 127


def _batches(images: list[np.ndarray], size: int = 16):
    for start in range(0, len(images), size):
        yield torch.from_numpy(np.stack(images[start : start + size]))


def run(folder: Path, side: int) -> dict:
    torch.manual_seed(0)
    model = PadimModel(backbone="resnet18", pre_trained=False)
    started = time.perf_counter()
    model.train()
    for batch in _batches([_load(p, side) for p in sorted((folder / "train" / "good").glob("*.png"))]):
        model(batch)
    model.fit()
    model.eval()
    labels, scores, maps, masks = [], [], [], []
    for kind_folder in sorted((folder / "test").iterdir()):
        files = sorted(kind_folder.glob("*.png"))
        for batch_files in [files[i : i + 16] for i in range(0, len(files), 16)]:
            with torch.no_grad():
                out = model(torch.from_numpy(np.stack([_load(p, side) for p in batch_files])))
            scores += out.pred_score.flatten().tolist()
            maps.append(out.anomaly_map[:, 0].numpy())
            labels += [kind_folder.name] * len(batch_files)
            masks += [_mask(folder, kind_folder.name, p.name, side) for p in batch_files]
    seconds = time.perf_counter() - started
    labels, scores = np.array(labels), np.array(scores)
    good = labels == "good"
    kinds = {k: float(roc_auc_score(labels[good | (labels == k)] != "good", scores[good | (labels == k)]))
             for k in KINDS if (labels == k).any()}
    pixel = float(roc_auc_score(np.stack(masks).ravel(), np.concatenate(maps).ravel()))
    return {"subject": folder.name, "method": "anomalib 2.7 PaDiM, untrained ResNet-18", "side": side,
            "auroc": float(roc_auc_score(~good, scores)), "kinds": kinds, "pixel_auroc": pixel,
            "seconds": round(seconds, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--side", type=int, default=0, help="working size (default: the images' own)")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    for folder in map(Path, args.folders):
        side = args.side or Image.open(next((folder / "train" / "good").glob("*.png"))).size[0]
        print(json.dumps(run(folder, side)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
