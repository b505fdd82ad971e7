"""The one surface the window and the command line drive the engine through.

Each long job is a task (``events``): a generator of events that honours a stop given as a
``threading.Event`` and returns its result. The command line runs tasks to their end on its own
thread; the window runs them in a worker thread and forwards their events. Whatever both faces
need (which images at which size, which trainer, where the checkpoint goes, which score
settings, what is written on export) is decided here once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from . import __version__
from .checkpoints import Checkpoint, ensure_writable_folder, load_checkpoint, save_checkpoint
from .config import PRESETS, Preset, ScoreConfig, TrainConfig, get_preset, with_overrides
from .data import IMAGE_SUFFIXES, DataSource, ImageSet, SkippedFile, load_training_set, scoring_images_task, training_images_task
from .detection import Detection, detection_task, skipped_lines
from .device import describe_device, resolve_device
from .errors import EgbadError
from .events import DeviceEvent, FinishedEvent, Task, run_to_end
from .export import write_grid, write_maps, write_scores_csv, write_summary
from .distributed import ALONE, World
from .memory import limit_heap_growth
from .streaming import streaming_detection_task
from .training import Trainer

RESULT_FILES = ("scores.csv", "grid.png", "summary.json")  # what ``write_results`` leaves in a folder
PATCH_MIN_SIDE = 96  # images at least this large (median side) may get a patch model
ALIGNED = 0.06  # a mean image keeping this share of the variation or more: aligned images, scored whole
# (random crops of one texture keep about 1/64 of it when 64 images are surveyed: 1–2% on the benchmark)
MAX_WORKING_SIZE = 128  # the largest side a patch model keeps images at (scoring speed: RESULTS.md)
SURVEY_SIZE = 64  # the side images are looked at when the preset is chosen


@dataclass
class LoadedData:
    """Training and test images from one source, loaded at one size."""

    request: dict[str, Any]  # what the user asked for: DataSource.parse's arguments
    source: DataSource
    train: ImageSet
    test: ImageSet | None  # None where the source has no test images
    test_problem: str | None  # why there are none, in a sentence
    choice: Preset | None = None  # what the automatic preset picked for this data, loaded at its size
    reason: str = ""  # and why, in a sentence

    @property
    def skipped(self) -> list[SkippedFile]:
        return self.train.skipped + (self.test.skipped if self.test is not None else [])


def library_versions() -> str:
    """The engine's libraries, for an About box."""
    import torch
    import torchvision

    return f"PyTorch {torch.__version__} · torchvision {torchvision.__version__}"


# ---------------------------------------------------------------------------------------- data


def parse_source(data: str, test_data: str | None = None, normal_labels: str | None = None,
                 test_labels: str | None = None) -> DataSource:
    """A DataSource from what a user typed; raises EgbadError for a path that does not exist."""
    return DataSource.parse(data, test_data, normal_labels, test_labels)


def load_data(request: dict[str, Any], image_size: int | None, channels: int | None = None,
              stop: threading.Event | None = None) -> Task[LoadedData | None]:
    """Training and test images of ``request`` (DataSource.parse's arguments) at ``image_size``,
    or with ``image_size`` None at the size of the preset ``auto`` picks for them (``choice``).

    First yields the device the work will run on. A source without test images still loads:
    ``test_problem`` says why there are none. Raises EgbadError where the training data is unusable."""
    yield DeviceEvent(describe_device(resolve_device("auto")))
    source = DataSource.parse(**request)
    choice, reason = None, ""
    if image_size is None:
        choice, reason = choose_preset("auto", source=source)
        image_size = choice.model.load_size
    train = yield from training_images_task(source, image_size, channels, stop)
    if train is None:
        return None
    try:
        test = yield from scoring_images_task(source, image_size, train.channels, stop)
        problem = None
    except EgbadError as error:
        test, problem = None, str(error)
    if test is None and problem is None:  # stopped
        return None
    return LoadedData(request, source, train, test, problem, choice, reason or "")


def test_images(source: DataSource, checkpoint: Checkpoint, loaded: ImageSet | None = None,
                stop: threading.Event | None = None) -> Task[ImageSet | None]:
    """The source's test images at the checkpoint's size and channels (``loaded`` where it fits)."""
    config = checkpoint.networks.config
    if loaded is not None and (loaded.image_size, loaded.channels) == (config.load_size, config.channels):
        return loaded
    source = source.with_normal_labels(checkpoint.normal_labels)
    return (yield from scoring_images_task(source, config.load_size, config.channels, stop))


test_images.__test__ = False  # a task, not a test, for pytest's collection


# ---------------------------------------------------------------------------------------- training


@dataclass(frozen=True)
class PresetChoice:
    """What ``--preset auto`` picked for a data source, and why, in a sentence for the user."""

    name: str
    working_size: int | None  # for the patch preset: the side images are kept at
    reason: str


def choose_automatically(source: DataSource) -> PresetChoice:
    """The preset for this data: ``patch`` for folders of images of at least PATCH_MIN_SIDE pixels
    whose parts do not line up from one image to the next (textures, surfaces), ``default`` for
    small or aligned images (digits, aligned parts and cells). Raises EgbadError for unusable data."""
    if source.kind != "folder":
        return PresetChoice("default", None, "MNIST-style CSV data: small aligned images, scored whole")
    side, alignment = survey_folder(source)
    if side < PATCH_MIN_SIDE:
        return PresetChoice("default", None, f"the images are about {side} px a side: small enough to score whole")
    if alignment >= ALIGNED:
        return PresetChoice("default", None, f"the images line up with one another (their mean image keeps "
                            f"{alignment:.0%} of their variation): a whole-image model")
    working = min(MAX_WORKING_SIZE, 1 << (side.bit_length() - 1))
    return PresetChoice("patch", working, f"the images are about {side} px a side and do not line up with one "
                        f"another (their mean image keeps {alignment:.0%} of their variation), as textures and "
                        f"surfaces do: a patch model, images kept at {working}×{working}")


def survey_folder(source: DataSource, count: int = 64) -> tuple[int, float]:
    """(median side in pixels, alignment) of up to ``count`` training images. Alignment is the share
    of the images' pixel variation that their mean image keeps: near 1/count for random crops of a
    texture, a large share for aligned parts."""
    import numpy as np

    from .data import decode_image, training_folder

    files = sorted(p for p in training_folder(Path(source.path)).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    arrays, sides = [], []
    for path in files[:count]:
        try:
            array, (height, width) = decode_image(path, SURVEY_SIZE)
        except EgbadError:
            continue
        arrays.append(array.mean(axis=0) / 255.0)
        sides.append(min(height, width))
    if len(arrays) < 2:
        return (int(np.median(sides)) if sides else 0), 1.0
    stack = np.stack(arrays)
    spread = float(stack.var(axis=(1, 2)).mean())
    kept = float(stack.mean(axis=0).var())
    return int(np.median(sides)), (kept / spread if spread > 0 else 1.0)


def choose_preset(name: str, image_size: int | None = None, overrides: list[str] | tuple[str, ...] = (),
                  source: DataSource | None = None) -> tuple[Preset, str | None]:
    """A preset with ``--image-size`` and ``--set SECTION.NAME=VALUE`` applied, and for ``auto``
    the sentence that says which it picked and why (``source`` needed then); raises EgbadError."""
    reason = None
    if name == "auto":
        if source is None:
            raise ValueError("the automatic choice needs the data source")
        choice = choose_automatically(source)
        name, reason = choice.name, f"Preset auto: {choice.name}, because {choice.reason}."
        image_size = image_size or choice.working_size
    preset = get_preset(name)
    if image_size:  # a patch model's working size; a whole-image model's one size
        side = {"working_size": image_size} if preset.model.patch_model else {"image_size": image_size}
        preset = replace(preset, model=replace(preset.model, **side))
        preset.model.validate()
    return (with_overrides(preset, list(overrides)) if overrides else preset), reason


def data_name(source: DataSource) -> str:
    """A short name of the data for file names: ``demo``, a CSV's stem, a folder's name."""
    if source.kind == "demo":
        return "demo"
    name = Path(source.path).name
    for suffix in (".gz", ".csv"):
        name = name.removesuffix(suffix)
    return name or "model"


def default_checkpoint_path(source: DataSource, folder: str | Path) -> Path:
    """``folder/<data>-<date>-<time>.pt``: the checkpoint a new run writes unless told otherwise."""
    return Path(folder) / f"{data_name(source)}-{datetime.now():%Y%m%d-%H%M%S}.pt"


def make_trainer(
    source: DataSource,
    checkpoint_path: str | Path | None,
    preset: Preset | None = None,
    train: TrainConfig | None = None,
    score: ScoreConfig | None = None,
    resume: Checkpoint | None = None,
    epochs: int | None = None,
    device: str | None = None,
    train_set: ImageSet | None = None,
    world: World = ALONE,
) -> Trainer:
    """A new Trainer for ``preset`` (with ``train`` and ``score`` settings), or one that resumes
    ``resume`` up to ``epochs`` in total. ``train_set`` is used where it was loaded at the size the
    model needs; otherwise the training images are loaded again at that size.

    Raises EgbadError for unusable data or settings, or a checkpoint folder that cannot be written."""
    if checkpoint_path is not None:
        ensure_writable_folder(Path(checkpoint_path).parent)  # before any data is loaded or epoch spent
    if resume is not None:
        config = resume.networks.config
        source = source.with_normal_labels(resume.normal_labels)
        if train_set is None or (train_set.image_size, train_set.channels) != (config.load_size, config.channels):
            train_set = load_training_set(source, config.load_size, config.channels)
        return Trainer.resume(resume, train_set, epochs, checkpoint_path, device, world)
    if preset is None:
        raise ValueError("a new run needs a preset")
    if train_set is None or train_set.image_size != preset.model.load_size:
        train_set = load_training_set(source, preset.model.load_size)
    data_info = {"kind": source.kind, "path": source.path, "normal_labels": list(source.normal_labels or [])}
    return Trainer(train_set, preset, train, score, checkpoint_path, data_info, world)


def training(trainer: Trainer, stop: threading.Event | None = None) -> Task[FinishedEvent]:
    """The trainer's run as a task, after a DeviceEvent that says where it runs and from which epoch."""
    yield DeviceEvent(describe_device(trainer.device), trainer.epoch)
    return (yield from trainer.run(stop))


# ---------------------------------------------------------------------------------------- detection


def score_settings(checkpoint: Checkpoint, **changes: Any) -> ScoreConfig:
    """The checkpoint's score settings with ``changes`` (None values ignored); raises EgbadError."""
    config = replace(checkpoint.score, **{k: v for k, v in changes.items() if v is not None})
    config.validate()
    return config


def detect(
    checkpoint: Checkpoint,
    source: DataSource,
    method: str = "egbad",
    config: ScoreConfig | None = None,
    threshold: float | str | None = None,
    checkpoint_path: str | None = None,
    images: ImageSet | None = None,
    stop: threading.Event | None = None,
) -> Task[Detection | None]:
    """Load the source's test images at the model's size (unless ``images`` fit already), score
    them and set the threshold; None if stopped. Raises EgbadError for unusable data or settings."""
    images = yield from test_images(source, checkpoint, images, stop)
    if images is None:
        return None
    return (yield from detection_task(checkpoint, images, method, config, threshold, checkpoint_path, stop))


# Score a source of any size into a folder a chunk at a time, rows written as they are scored: what
# ``egbad detect`` runs; the window, which shows every image, uses ``detect``.
detect_into = streaming_detection_task


def export(detection: Detection, what: str, path: str | Path, only_flagged: bool = False) -> Path:
    """Write one result file: ``grid`` (PNG), ``csv`` (scores) or ``summary`` (JSON); atomically."""
    if what == "grid":
        return write_grid(path, detection, only_flagged=only_flagged)
    if what == "csv":
        return write_scores_csv(path, detection)
    if what == "summary":
        return write_summary(path, detection.summary())
    raise ValueError(f"unknown export {what!r}")


def write_results(detection: Detection, folder: str | Path, only_flagged: bool = False) -> dict[str, Any]:
    """Every result file into ``folder`` (RESULT_FILES); returns the summary that was written."""
    folder = ensure_writable_folder(folder)
    export(detection, "csv", folder / "scores.csv")
    export(detection, "grid", folder / "grid.png", only_flagged)
    export(detection, "summary", folder / "summary.json")
    return detection.summary()


__all__ = [
    "__version__", "PRESETS", "Checkpoint", "PresetChoice", "choose_automatically", "Detection", "DataSource", "ImageSet", "LoadedData", "Trainer",
    "choose_preset", "data_name", "default_checkpoint_path", "describe_device", "detect", "detect_into", "ensure_writable_folder",
    "export", "library_versions", "limit_heap_growth", "load_checkpoint", "load_data", "make_trainer", "parse_source", "resolve_device",
    "run_to_end", "save_checkpoint", "score_settings", "skipped_lines", "test_images", "training", "write_maps", "write_results",
]
