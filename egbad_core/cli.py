"""``egbad``: the engine without a window. ``egbad train`` and ``egbad detect``.

Problems a user can cause end with one plain sentence on stderr and exit code 2, never a
traceback. A run's figures end stdout as one JSON line, for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .config import AUTO_THRESHOLDS, PRESETS, SCORING_METHODS, get_preset, replace, with_overrides
from .errors import EgbadError
from .memory import limit_heap_growth

EXIT_USER_ERROR = 2
EXIT_NOT_COMPLETED = 1
DEFAULT_CHECKPOINT_DIR = Path("checkpoints")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="egbad", description="Train EGBAD on good images and flag defects.")
    parser.add_argument("--version", action="version", version=f"egbad {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model on normal images and write a checkpoint")
    _data_arguments(train)
    train.add_argument("--preset", default="default", choices=sorted(PRESETS), help="recipe (default: %(default)s)")
    train.add_argument("--epochs", type=int, help="epochs in total (a resumed run counts its earlier ones)")
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr-g", type=float, help="learning rate of G")
    train.add_argument("--lr-d", type=float, help="learning rate of D")
    train.add_argument("--lr-e", type=float, help="learning rate of E")
    train.add_argument("--refine-epochs", type=int, help="encoder refinement epochs after the GAN epochs")
    train.add_argument("--image-size", type=int, help="side the images are resized to (a power of two)")
    train.add_argument("--seed", type=int)
    train.add_argument("--mixed-precision", action="store_true", help="bf16 autocast (fast on recent GPUs)")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.NAME=VALUE",
                       help="any preset option, e.g. score.lam=0.5 or train.cycle_weight=0 (repeatable)")
    train.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    train.add_argument("--resume", metavar="CKPT", help="continue training this checkpoint")
    train.add_argument("--out", metavar="CKPT", help="checkpoint to write (default: checkpoints/<data>-<time>.pt)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    detect = commands.add_parser("detect", help="score images with a checkpoint and write the results")
    detect.add_argument("--checkpoint", required=True, metavar="CKPT")
    _data_arguments(detect)
    detect.add_argument("--test-labels", help="CSV: labels to score, e.g. 2,7,8 (default: all)")
    detect.add_argument("--method", choices=SCORING_METHODS, default="egbad")
    group = detect.add_mutually_exclusive_group()
    group.add_argument("--threshold", type=float, help="flag images whose score is at least this")
    group.add_argument(
        "--auto-threshold", choices=AUTO_THRESHOLDS,
        help="best F1 (needs labels), or the training images' 99th percentile or mean + 3σ",
    )
    detect.add_argument("--lam", type=float, help="λ, the weight of the discrimination term")
    detect.add_argument("--anogan-steps", type=int, help="latent-search steps per image for --method anogan")
    detect.add_argument("--batch-size", type=int, help="images per forward pass")
    detect.add_argument("--mixed-precision", action="store_true", help="bf16 autocast (fast on recent GPUs)")
    detect.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    detect.add_argument("--grid", choices=("all", "flagged"), default="all", help="which images grid.png shows")
    detect.add_argument("--out-dir", required=True, metavar="DIR")
    detect.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="demo, an MNIST-style CSV, or an MVTec-layout folder")
    parser.add_argument("--test-data", metavar="CSV", help="CSV: a separate file of test images")
    parser.add_argument("--normal-labels", help="CSV: labels of good images, e.g. 7,8")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    limit_heap_growth()
    try:
        return {"train": train_command, "detect": detect_command}[args.command](args)
    except EgbadError as error:
        print(f"egbad: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except RuntimeError as error:  # torch.cuda.OutOfMemoryError is a RuntimeError
        if "out of memory" not in str(error).lower():
            raise
        print(f"egbad: the device ran out of memory; lower --batch-size (it was {args.batch_size or 'the preset default'}).", file=sys.stderr)
        return EXIT_USER_ERROR


# ----------------------------------------------------------------------------------------


def train_command(args: argparse.Namespace) -> int:
    from .checkpoints import ensure_writable_folder, load_checkpoint
    from .data import DataSource, load_training_set
    from .training import EpochEvent, FinishedEvent, IterationEvent, Trainer, WarningEvent

    source = DataSource.parse(args.data, args.test_data, args.normal_labels)
    out = Path(args.out) if args.out else DEFAULT_CHECKPOINT_DIR / f"{_data_name(source)}-{datetime.now():%Y%m%d-%H%M%S}.pt"
    ensure_writable_folder(out.parent)  # before any data is loaded or any epoch is spent
    resumed = load_checkpoint(args.resume) if args.resume else None
    if resumed is not None:
        source = source.with_normal_labels(resumed.normal_labels)
    channels = resumed.networks.config.channels if resumed else None
    preset = get_preset(resumed.preset if resumed and resumed.preset in PRESETS else args.preset)
    if args.image_size and not resumed:
        preset = replace(preset, model=replace(preset.model, image_size=args.image_size))
        preset.model.validate()
    if args.set and not resumed:
        preset = with_overrides(preset, args.set)
    image_size = resumed.networks.config.image_size if resumed else preset.model.image_size
    train_set = load_training_set(source, image_size, channels)
    _report_skipped(train_set.skipped)
    data_info = {"kind": source.kind, "path": source.path, "normal_labels": list(source.normal_labels or [])}
    if resumed is not None:
        trainer = Trainer.resume(resumed, train_set, args.epochs, out, args.device)
    else:
        changes = {
            k: v
            for k, v in {
                "epochs": args.epochs, "batch_size": args.batch_size, "lr_g": args.lr_g, "lr_d": args.lr_d,
                "lr_e": args.lr_e, "seed": args.seed, "device": args.device, "refine_epochs": args.refine_epochs,
                "mixed_precision": True if args.mixed_precision else None,
            }.items()
            if v is not None
        }
        trainer = Trainer(train_set, preset, replace(preset.train, **changes), checkpoint_path=out, data_info=data_info)
    _info(
        f"Training {preset.name} preset on {train_set.describe()} from {source.describe()}, "
        f"device {trainer.device}, epochs {trainer.epoch + 1}–{trainer.train_config.total_epochs}.",
    )
    bar = _progress_bar(args.quiet, (trainer.train_config.total_epochs - trainer.epoch) * trainer.batches_per_epoch(), "train")
    stop = threading.Event()
    finished: FinishedEvent | None = None
    events = trainer.run(stop)
    try:
        for event in events:
            if isinstance(event, IterationEvent):
                bar.update(1)
                bar.set_postfix_str(
                    f"epoch {event.epoch}/{trainer.train_config.total_epochs} D {event.d_loss:.3f} G {event.g_loss:.3f} "
                    f"E {event.e_loss:.3f} {event.images_per_s:.0f} img/s",
                    refresh=False,
                )
            elif isinstance(event, EpochEvent):
                bar.write(
                    f"epoch {event.epoch}/{event.epochs}: D {event.d_loss:.4f} G {event.g_loss:.4f} "
                    f"E {event.e_loss:.4f}, {event.seconds:.1f} s, {event.images_per_s:.0f} img/s",
                    file=sys.stderr,
                )
            elif isinstance(event, WarningEvent):
                bar.write(f"warning: {event.message}", file=sys.stderr)
            elif isinstance(event, FinishedEvent):
                finished = event
    except KeyboardInterrupt:
        stop.set()
        finished = next(e for e in events if isinstance(e, FinishedEvent))
    finally:
        bar.close()
    assert finished is not None
    _info(finished.message)
    result = {
        "status": finished.reason,
        "epochs": finished.epochs_done,
        "seconds": round(finished.seconds, 3),
        "train_images_per_s": round(finished.images_per_s, 2),
        "checkpoint": finished.checkpoint,
        "device": str(trainer.device),
        "preset": preset.name,
        "n_train_images": len(train_set),
        "skipped": [str(s) for s in train_set.skipped],
    }
    print(json.dumps(result))
    return 0 if finished.reason == "completed" else EXIT_NOT_COMPLETED


def detect_command(args: argparse.Namespace) -> int:
    from .checkpoints import ensure_writable_folder, load_checkpoint
    from .data import DataSource, load_test_set
    from .detection import run_detection
    from .device import resolve_device
    from .export import write_grid, write_scores_csv, write_summary

    device = resolve_device(args.device)
    out_dir = ensure_writable_folder(args.out_dir)
    checkpoint = load_checkpoint(args.checkpoint, device)
    source = DataSource.parse(args.data, args.test_data, args.normal_labels, args.test_labels)
    source = source.with_normal_labels(checkpoint.normal_labels)
    config = checkpoint.networks.config
    images = load_test_set(source, config.image_size, config.channels)
    _report_skipped(images.skipped)
    changes = {k: v for k, v in {"lam": args.lam, "anogan_steps": args.anogan_steps, "batch_size": args.batch_size}.items() if v is not None}
    if args.mixed_precision:
        changes["mixed_precision"] = True
    score_config = replace(checkpoint.score, **changes)
    score_config.validate()
    total = len(images)
    bar = _progress_bar(args.quiet, total, f"score ({args.method})")
    done = [0]

    def progress(n: int, _total: int) -> None:
        bar.update(n - done[0])
        done[0] = n

    threshold: float | str | None = args.threshold if args.threshold is not None else args.auto_threshold
    try:
        detection = run_detection(checkpoint, images, args.method, score_config, threshold, args.checkpoint, progress)
    finally:
        bar.close()
    write_scores_csv(out_dir / "scores.csv", detection)
    write_grid(out_dir / "grid.png", detection, only_flagged=args.grid == "flagged")
    summary = detection.summary()
    write_summary(out_dir / "summary.json", summary)
    _info(
        f"{summary['n_flagged']} of {summary['n_images']} images flagged at threshold {summary['threshold']:.2f}"
        + (f"; AUROC {summary['auroc']:.3f}, AUPRC {summary['auprc']:.3f}" if summary["auroc"] is not None else "")
        + f". Results in {out_dir}/ (scores.csv, grid.png, summary.json)."
    )
    print(json.dumps(summary, default=float))
    return 0


# ----------------------------------------------------------------------------------------


def _data_name(source: Any) -> str:
    if source.kind == "demo":
        return "demo"
    name = Path(source.path).name
    for suffix in (".gz", ".csv"):
        name = name.removesuffix(suffix)
    return name or "model"


def _info(text: str) -> None:
    print(text, file=sys.stderr)


def _report_skipped(skipped: list) -> None:
    from .detection import skipped_lines

    if skipped:
        _info(f"Skipped {len(skipped)} file(s) that could not be used:")
        for line in skipped_lines(skipped):
            _info(f"  {line}")


def _progress_bar(quiet: bool, total: int, what: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=what, unit="it", disable=quiet, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)


if __name__ == "__main__":
    raise SystemExit(main())
