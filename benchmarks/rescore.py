"""Score kept checkpoints again with other score settings, without training (issue 19's tuning).

The reference is rebuilt from the subject's training images with the new settings, as training's
last step builds it, so a change to the scoring is judged on the same networks. Per subject: the
image AUROC, each defect kind's, and each term's own AUROC (its map smoothed and measured in its
units, the image's worst place), which shows what a combination of terms gains or loses.

    python benchmarks/rescore.py --texture-root /tmp/subj --keep /tmp/ck --subjects rock,reptile
                                 [--set score.line_length=9 ...] [--seed 0]

The checkpoints are quality.py's ``--keep`` ones (DIR/<subject>_<seed>.pt).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from subject_suite import per_kind
from egbad_core import session
from egbad_core.config import with_overrides
from egbad_core.events import run_to_end
from egbad_core.model.checkpoints import load_checkpoint
from egbad_core.model.references import ScoreStats
from egbad_core.score import metrics
from egbad_core.score.local import measured_terms, raw_maps
from egbad_core.score.same_place import laid_out
from egbad_core.score.tensors import batches
from egbad_core.train.references import patch_reference



def rebuilt(checkpoint, folder: Path, settings=None):
    """``checkpoint`` with ``settings`` (its own unless given), its reference and good-image scores
    built again from ``folder``'s training images as training's last step builds them."""
    settings = settings or checkpoint.settings
    config = checkpoint.networks.config
    data = run_to_end(session.load_data({"data": str(folder)}, config.load_size, config.channels,
                                        photo_scale=config.photo_scale))
    reference, scores = patch_reference(checkpoint.networks, data.train.pixels, settings)
    return dataclasses.replace(checkpoint, settings=settings, reference=reference,
                               train_stats=ScoreStats.of(scores, held_out=True))


def rescored(path: Path, folder: Path, overrides: list[str], dump: Path | None = None) -> dict:
    """One kept checkpoint's figures with its score settings changed by ``overrides``; with ``dump``,
    each term's measured maps and the images' labels saved there (.npz) to try combinations on."""
    checkpoint = load_checkpoint(path)
    settings = with_overrides(checkpoint.settings, overrides)
    checkpoint = rebuilt(checkpoint, folder, settings)
    source = session.parse_source(str(folder))
    detection = run_to_end(session.detect(session.ScoreRequest(checkpoint, threshold="f1"), source))
    labels = list(detection.images.labels)
    row = {"subject": folder.name, "auroc": metrics.auroc(detection.images.is_defect, detection.scores.score),
           "kinds": per_kind(labels, detection.scores.score)}
    maps = _term_maps(checkpoint, detection.images.pixels, settings)
    row["terms"] = {name: per_kind(labels, worst) | {"all": metrics.auroc(detection.images.is_defect, worst)}
                    for name, worst in ((n, m.reshape(len(m), -1).max(axis=1)) for n, m in maps.items())}
    if dump is not None:
        np.savez_compressed(dump, labels=np.asarray(labels), ids=np.asarray(detection.images.ids), score=detection.scores.score, **maps)
    return row


def _term_maps(checkpoint, pixels: torch.Tensor, settings) -> dict[str, np.ndarray]:
    """Each term's map alone, smoothed and in its own units (as half floats)."""
    networks, reference, score = checkpoint.networks.eval(), checkpoint.reference, settings.score
    place_bank = laid_out(reference.places) if reference.places is not None else None
    found: dict[str, list[torch.Tensor]] = {}
    with torch.inference_mode():
        for _, batch in batches(pixels, 8):
            x = networks.layout(settings.normalisation.apply(batch))
            raw = raw_maps(networks, x, score, reference, place_bank)
            for name, measured in measured_terms(raw, reference, score):
                found.setdefault(name, []).append(measured.half())
    return {name: torch.cat(parts).float().numpy() for name, parts in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texture-root", required=True, help="the subjects' folders (scripts/make_subjects.py)")
    parser.add_argument("--keep", required=True, help="the folder of kept checkpoints, <subject>_<seed>.pt")
    parser.add_argument("--subjects", required=True, help="comma-separated subject names")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], help="a score setting, as egbad train's --set")
    parser.add_argument("--dump", help="a folder to save each subject's term maps in (<subject>.npz)")
    args = parser.parse_args()
    for name in args.subjects.split(","):
        dump = Path(args.dump) / f"{name}.npz" if args.dump else None
        row = rescored(Path(args.keep) / f"{name}_{args.seed}.pt", Path(args.texture_root) / name, args.set, dump)
        fmt = lambda v: "  —  " if v is None else f"{v:.3f}"  # noqa: E731
        print(f"{name:<10} all {fmt(row['auroc'])}  " + "  ".join(f"{k} {fmt(v)}" for k, v in row["kinds"].items()))
        for term, kinds in row["terms"].items():
            print(f"  {term:<10} all {fmt(kinds['all'])}  " + "  ".join(f"{k} {fmt(v)}" for k, v in kinds.items() if k != "all"))


if __name__ == "__main__":
    main()
