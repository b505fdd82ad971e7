"""``egbad``: the engine without a window: ``egbad train``, ``detect``, ``watch`` and ``export-model``.

Everything it does goes through ``session``, the surface the window uses too. Problems a user
can cause end with one plain sentence on stderr and exit code 2, never a traceback. A run's
figures end stdout as one JSON line, for scripts. Ctrl-C or SIGTERM during training stops after the
current iteration, writes the stopped checkpoint and the JSON line, and exits with code 1; during
scoring it stops after the batch, keeping the rows written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from . import __version__
from .config import PRESETS, SCORING_METHODS
from .console import info, progress_bar, signals_stop, threshold_arguments, threshold_of
from .errors import EgbadError
from .system.memory import limit_heap_growth

EXIT_USER_ERROR = 2
EXIT_NOT_COMPLETED = 1  # training stopped (Ctrl-C) or diverged: the JSON line says which
EXIT_INTERRUPTED = 130  # the shell's code for a Ctrl-C that ended the program
DEFAULT_CHECKPOINT_DIR = Path("checkpoints")


def build_parser() -> argparse.ArgumentParser:
    """The ``egbad`` parser: ``train`` and ``detect`` with their options."""
    parser = argparse.ArgumentParser(prog="egbad", description="Train EGBAD on good images and flag defects.")
    parser.add_argument("--version", action="version", version=f"egbad {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model on normal images and write a checkpoint")
    _data_arguments(train)
    train.add_argument("--preset", default="auto", choices=["auto", *sorted(PRESETS)],
                       help="recipe; auto picks by the data and says why (default: %(default)s)")
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
    threshold_arguments(detect)
    detect.add_argument("--lam", type=float, help="λ, the weight of the discrimination term")
    detect.add_argument("--anogan-steps", type=int, help="latent-search steps per image for --method anogan")
    detect.add_argument("--batch-size", type=int, help="images per forward pass")
    detect.add_argument("--mixed-precision", action="store_true", help="bf16 autocast (fast on recent GPUs)")
    detect.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    detect.add_argument("--grid", choices=("all", "flagged"), default="all", help="which images grid.png shows")
    detect.add_argument("--out-dir", required=True, metavar="DIR")
    detect.add_argument("--maps", metavar="DIR", help="write each image's anomaly map: a PNG overlay and the raw .npy")
    detect.add_argument("--roi", metavar="PNG", help="a region of interest: white where the part is inspected "
                        "(default: roi.png in the data folder, where there is one)")
    detect.add_argument("--quiet", action="store_true", help="no progress bar")
    _line_commands(commands)
    return parser


def _line_commands(commands) -> None:
    """``watch`` and ``export-model``: a model on the line."""
    watch = commands.add_parser("watch", help="score each image as it lands in a folder, until Ctrl-C")
    watch.add_argument("folder", nargs="?", help="the folder images are written into (its own files, not its subfolders)")
    watch.add_argument("--video", metavar="SRC", help="instead: a camera's index (0), a stream's URL or a video file")
    watch.add_argument("--every", type=int, default=1, metavar="N", help="with --video: score every N-th frame")
    watch.add_argument("--checkpoint", required=True, metavar="CKPT")
    watch.add_argument("--out-dir", metavar="DIR", help="where scores.csv grows (default: FOLDER/inspected)")
    watch.add_argument("--flagged-to", metavar="DIR", help="copy each flagged image here")
    watch.add_argument("--maps", metavar="DIR", help="write each image's anomaly map: a PNG overlay and the raw .npy")
    watch.add_argument("--roi", metavar="PNG", help="a region of interest (default: roi.png in the folder)")
    watch.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    watch.add_argument("--settle", type=float, default=0.5, metavar="S",
                       help="seconds a file must stay unchanged before it is read (default: %(default)s)")
    threshold_arguments(watch, labelled=False)

    export = commands.add_parser("export-model", help="write a model as ONNX that scores without this app")
    export.add_argument("--checkpoint", required=True, metavar="CKPT")
    export.add_argument("--format", choices=("onnx",), default="onnx")
    export.add_argument("--out", required=True, metavar="DIR", help="folder for model.onnx and model.json")
    export.add_argument("--photo-size", metavar="WxH", help="a photo model: the size of the photos it will score, "
                        "in their own pixels (e.g. 2448x2048); the exported model takes that size")
    threshold_arguments(export, labelled=False)


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="demo, an MNIST-style CSV, or an MVTec-layout folder")
    parser.add_argument("--test-data", metavar="CSV", help="CSV: a separate file of test images")
    parser.add_argument("--normal-labels", help="CSV: labels of good images, e.g. 7,8")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``egbad`` with ``argv``; the exit code (0 done, 1 training not completed, 2 a problem with the input, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    limit_heap_growth()
    try:
        return {"train": train_command, "detect": detect_command, "watch": watch_command,
                "export-model": export_command}[args.command](args)
    except EgbadError as error:
        if os.environ.get("RANK", "0") == "0":  # under torchrun every process meets it; one says it
            print(f"egbad: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:  # outside training's own stop (loading, scoring), or a second Ctrl-C
        print("egbad: interrupted; nothing more was written.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RuntimeError as error:  # torch.cuda.OutOfMemoryError is a RuntimeError
        if "out of memory" not in str(error).lower():
            raise
        print(f"egbad: the device ran out of memory; lower --batch-size (it was {args.batch_size or 'the preset default'}).", file=sys.stderr)
        return EXIT_USER_ERROR


# ----------------------------------------------------------------------------------------


def train_command(args: argparse.Namespace) -> int:
    """``egbad train``: load, train with a progress bar, end stdout with the run's JSON line."""
    from .system import distributed

    with distributed.joined(args.device or "auto") as (world, device):  # under torchrun: this process's rank
        return _train(args, world, None if world.alone else device)


def _train(args: argparse.Namespace, world, device: str | None) -> int:
    from tqdm import tqdm

    from . import session

    say = info if world.main else (lambda text: None)  # one process speaks for all
    if not world.main:
        args.quiet = True
    source = session.parse_source(args.data, args.test_data, args.normal_labels)
    stop = threading.Event()
    with signals_stop(stop, lambda: tqdm.write("Stopping after this iteration (Ctrl-C again to quit at once)…",
                                                 file=sys.stderr)):  # reading the images or training them
        trainer, reason = _trainer(args, source, world, device, stop)
        if trainer is None:
            say("Stopped at your request while reading the training images; nothing was trained.")
            if world.main:
                print(json.dumps({"status": "stopped", "epochs": 0, "checkpoint": None}), flush=True)
            return EXIT_NOT_COMPLETED
        total = (trainer.settings.train.total_epochs - trainer.epoch) * trainer.batches_per_epoch()
        bar = progress_bar(args.quiet, total, "train")
        try:
            return _train_to_end(source, world, trainer, reason, stop, bar)
        finally:
            bar.close()


def _train_to_end(source, world, trainer, reason: str | None, stop: threading.Event, bar) -> int:
    from . import session
    from .events import FinishedEvent

    say = info if world.main else (lambda text: None)
    above_bar = (lambda text: bar.write(text, file=sys.stderr)) if world.main else (lambda text: None)
    train_set = trainer.train_set
    if reason:  # said once the data has loaded: a problem with it stays the one line on stderr
        above_bar(reason)
    if world.main:
        _report_skipped(train_set.skipped)
    total_epochs = trainer.settings.train.total_epochs
    above_bar(f"Training {trainer.settings.name} preset on {train_set.describe()} from {source.describe()}, "
              f"device {trainer.device}, epochs {trainer.epoch + 1}–{total_epochs}.")
    finished: FinishedEvent = session.run_to_end(session.training(trainer, stop),
                                                 _training_drawer(bar, world, total_epochs))
    bar.close()
    say(finished.message)
    if finished.fit is not None:
        fit = session.describe_fit(finished.fit)
        say(f"{fit[0].upper()}{fit[1:]}, over the training inputs.")
    result = {
        "status": finished.reason,
        "epochs": finished.epochs_done,
        "seconds": round(finished.seconds, 3),
        "train_images_per_s": round(finished.images_per_s, 2),
        "checkpoint": finished.checkpoint,
        "device": str(trainer.device),
        "preset": trainer.settings.name,
        "n_train_images": len(train_set),
        "skipped": [str(s) for s in train_set.skipped],
        "processes": world.size,
        "reconstruction_r2": None if finished.fit is None else round(finished.fit, 4),
        "photos_held": train_set.held or None,  # photos at their own resolution: in memory or a mapped file, and how large
    }
    if world.main:
        print(json.dumps(result), flush=True)
    return 0 if finished.reason == "completed" else EXIT_NOT_COMPLETED


def _trainer(args: argparse.Namespace, source, world, device: str | None, stop: threading.Event):
    """(the Trainer the arguments ask for, the automatic choice's sentence or None); (None, None)
    where a stop came while the training images were read (a folder's: with a progress bar)."""
    from . import session

    out = Path(args.out) if args.out else session.default_checkpoint_path(source, DEFAULT_CHECKPOINT_DIR)
    session.ensure_writable_folder(out.parent)  # before any data is loaded or any epoch is spent
    resumed = session.load_checkpoint(args.resume) if args.resume else None
    settings, reason = None, None
    if resumed is None:
        preset, reason = session.choose_preset(args.preset, args.image_size, args.set, source)
        changes = {
            "epochs": args.epochs, "batch_size": args.batch_size, "lr_g": args.lr_g, "lr_d": args.lr_d,
            "lr_e": args.lr_e, "seed": args.seed, "device": device or args.device, "refine_epochs": args.refine_epochs,
            "mixed_precision": True if args.mixed_precision else None,
        }
        settings = replace(preset, train=replace(preset.train, **{k: v for k, v in changes.items() if v is not None}))
    train_set = _read(session.training_set_task(source, settings, resumed, stop), args.quiet or not world.main)
    if train_set is None:
        return None, None
    if resumed is not None:
        return session.make_trainer(source, out, resume=resumed, epochs=args.epochs, device=device or args.device,
                                    train_set=train_set, world=world), None
    return session.make_trainer(source, out, settings, train_set=train_set, world=world), reason


def _read(task, quiet: bool):
    """A loading task run to its end, with a progress bar from its first file on (a bad argument or
    an in-memory table shows none)."""
    from .events import ProgressEvent, run_to_end

    bars = []

    def draw(event: object) -> None:
        if isinstance(event, ProgressEvent):
            if not bars:
                bars.append(progress_bar(quiet, event.total, "read"))
            bars[0].update(event.done - bars[0].n)

    try:
        return run_to_end(task, draw)
    finally:
        for bar in bars:
            bar.close()


def _training_drawer(bar, world, total_epochs: int):
    """What the progress bar shows of each training event (nothing on the processes that do not speak)."""
    from .events import EpochEvent, IterationEvent, WarningEvent, losses_text

    def draw(event: object) -> None:
        if not world.main:
            return
        match event:
            case IterationEvent():
                bar.update(1)
                bar.set_postfix_str(
                    f"epoch {event.epoch}/{total_epochs} {losses_text(event.d_loss, event.g_loss, event.e_loss)} "
                    f"{event.images_per_s:.0f} img/s",
                    refresh=False,
                )
            case EpochEvent():
                bar.write(
                    f"epoch {event.epoch}/{event.epochs}: {losses_text(event.d_loss, event.g_loss, event.e_loss, 4)}, "
                    f"{event.seconds:.1f} s, {event.images_per_s:.0f} img/s",
                    file=sys.stderr,
                )
            case WarningEvent():
                bar.write(f"warning: {event.message}", file=sys.stderr)

    return draw


def detect_command(args: argparse.Namespace) -> int:
    """``egbad detect``: score a folder or CSV with a checkpoint and write the results (and maps)."""
    from .system import distributed

    with distributed.joined(args.device or "auto") as (world, device):  # under torchrun: this process's shard
        return _detect(args, world, device)


def _detect(args: argparse.Namespace, world, device_name: str | None) -> int:
    from . import session
    from .events import ProgressEvent

    if not world.main:
        args.quiet = True
    device = session.resolve_device(device_name)
    out_dir = session.ensure_writable_folder(args.out_dir)
    checkpoint = session.load_checkpoint(args.checkpoint, device)
    source = session.parse_source(args.data, args.test_data, args.normal_labels, args.test_labels)
    score_config = session.score_settings(
        checkpoint, lam=args.lam, anogan_steps=args.anogan_steps, batch_size=args.batch_size,
        mixed_precision=True if args.mixed_precision else None,
    )
    bar = progress_bar(args.quiet, None, f"score ({args.method})")

    def draw(event: object) -> None:
        if isinstance(event, ProgressEvent) and event.what == "scoring":
            if bar.total != event.total:
                bar.total = event.total
            bar.update(event.done - bar.n)

    threshold = threshold_of(args)
    stop = threading.Event()
    with signals_stop(stop, lambda: bar.write("Stopping after this batch (Ctrl-C again to quit at once)…", file=sys.stderr)):
        try:
            region = session.region_of_interest(source, checkpoint, args.roi) if args.method == "egbad" else None
            request = session.ScoreRequest(checkpoint, args.method, score_config, threshold, args.checkpoint, region)
            summary = session.run_to_end(session.detect_into(
                request, source, out_dir, args.maps, only_flagged=args.grid == "flagged", stop=stop, world=world), draw)
        finally:
            bar.close()
    if not world.main:
        return 0 if summary is not None else EXIT_NOT_COMPLETED
    if summary is None:
        info(f"Scoring stopped at your request; the rows scored so far are in {out_dir / 'scores.csv'}.")
        return EXIT_NOT_COMPLETED
    _report_skipped(summary["skipped"])
    said = [summary["folder_changes"], summary["region_of_interest"] and f"Region of interest: {summary['region_of_interest']}.",
            summary.get("same_place")]
    for note in summary["mask_notes"] + [line for line in said if line]:
        info(note)
    pixel = ""
    if summary["pixel_auroc"] is not None:
        pro = "" if summary["pro"] is None else f", PRO {summary['pro']:.3f}"  # photos: sampled pixels, no regions
        pixel = f"; pixel AUROC {summary['pixel_auroc']:.3f}{pro} over {summary['pixel_images']} images with masks"
    info(
        f"{summary['n_flagged']} of {summary['n_images']} images flagged at threshold {summary['threshold']:.2f}"
        + (f"; AUROC {summary['auroc']:.3f}, AUPRC {summary['auprc']:.3f}" if summary["auroc"] is not None else "")
        + pixel + f". Results in {out_dir}/ ({', '.join(session.RESULT_FILES)})"
        + (f"; anomaly maps in {args.maps}/." if args.maps else ".")
    )
    if summary.get("false_alarms"):
        info(summary["false_alarms"]["said"])
    print(json.dumps(summary, default=float))
    return 0


# ----------------------------------------------------------------------------------------


def _report_skipped(skipped: list) -> None:
    from .data.images import skipped_lines

    if skipped:
        info(f"Skipped {len(skipped)} file(s) that could not be used:")
        for line in skipped_lines(skipped):
            info(f"  {line}")


def watch_command(args: argparse.Namespace) -> int:
    """``egbad watch``: score each image as it lands, a line each, until Ctrl-C (exit 0)."""
    from . import session
    from .events import InspectedEvent, NoteEvent

    folder = Path(args.folder or ".")
    if args.video is None and (args.folder is None or not folder.is_dir()):
        raise EgbadError(f"{args.folder} is not a folder to watch." if args.folder else "give a folder to watch, or --video.")
    checkpoint = session.load_checkpoint(args.checkpoint, session.resolve_device(args.device))
    region = session.region_of_interest(None if args.video else session.parse_source(str(folder)), checkpoint, args.roi)
    request = session.ScoreRequest(checkpoint, threshold=threshold_of(args), checkpoint_path=args.checkpoint, region=region)
    plan = session.WatchPlan(folder, Path(args.out_dir or folder / "inspected"), args.maps and Path(args.maps),
                             args.flagged_to and Path(args.flagged_to), settle=args.settle)
    stop = threading.Event()
    task = (session.video_task(request, args.video, plan, stop, max(1, args.every)) if args.video
            else session.watch_task(request, plan, stop))
    device, opened = session.describe_device(checkpoint.networks.device), []

    def said(event: object) -> None:
        if isinstance(event, NoteEvent):
            info(event.message + ("" if opened else f" Scoring on {device}; Ctrl-C to stop."))
            opened.append(True)
        elif isinstance(event, InspectedEvent):
            print(event.line(), flush=True)

    with signals_stop(stop, lambda: info("Stopping after this image…")):
        scored, flagged = session.run_to_end(task, said)
    info(f"{scored} image{'' if scored == 1 else 's'} scored, {flagged} flagged this run.")
    return 0


def _photo_size(text: str | None) -> tuple[int, int] | None:
    """``--photo-size``'s WIDTHxHEIGHT as (height, width)."""
    if text is None:
        return None
    width, sep, height = text.lower().replace("×", "x").partition("x")
    if not (sep and width.strip().isdigit() and height.strip().isdigit() and int(width) > 0 and int(height) > 0):
        raise EgbadError(f"--photo-size must be WIDTHxHEIGHT in pixels, such as 2448x2048, not {text!r}.")
    return int(height), int(width)


def export_command(args: argparse.Namespace) -> int:
    """``egbad export-model``: the checkpoint as ONNX, checked against the app's scores."""
    from . import session
    checkpoint = session.load_checkpoint(args.checkpoint, session.resolve_device("cpu"))
    photo = checkpoint.networks.config.full_resolution
    info(f"Exporting {args.checkpoint} as ONNX (about {'a few minutes: its check scores a whole photo' if photo else 'a minute'})…")
    done = session.export_onnx(checkpoint, args.out, threshold_of(args), args.checkpoint, _photo_size(args.photo_size))
    checked = ("not checked: onnxruntime is not installed (pip install \".[deploy]\")" if done.difference is None
               else f"scores as the app does (largest relative difference {done.difference:.1g})")
    info(f"Wrote {done.model} and {done.spec}; {checked}.")
    print(json.dumps({"model": str(done.model), "spec": str(done.spec), "difference": done.difference,
                      "seconds": round(done.seconds, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
