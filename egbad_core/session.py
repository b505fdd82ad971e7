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
from .config import PRESETS, Preset, ScoreConfig
from .data.images import ImageSet, SkippedFile, skipped_lines
from .data.loading import load_training_set, scoring_images_task, training_images_task
from .data.folders import example_picture
from .data.region import Region, folder_region, polygon_region, read_region, remove_region, save_region
from .data.sources import DataSource
from .deploy.onnx_export import Exported, export_onnx, usual_photo_size
from .errors import EgbadError
from .events import DeviceEvent, FinishedEvent, Task, run_to_end
from .model.checkpoints import Checkpoint, load_checkpoint, save_checkpoint
from .run.corrections import CORRECTIONS_NAME, read_corrections, write_corrections
from .run.detection import Detection
from .run.grid import write_grid
from .run.maps import write_maps
from .run.photo_detection import PhotoView, image_view, photo_detection_task, photo_view
from .run.results import write_scores_csv, write_summary
from .run.scoring import ScoreRequest, detection_task
from .run.streaming import RESULT_FILES, streaming_detection_task
from .run.video import video_task
from .run.watching import WatchPlan, watch_task
from .score.explained import POOR_FIT, describe_fit
from .score.false_alarms import FalseAlarmRate, one_in, parse_rate
from .system.device import describe_device, resolve_device
from .system.distributed import ALONE, World
from .system.files import ensure_writable_folder
from .system.memory import limit_heap_growth, release_free_memory
from .train.choice import PresetChoice, choose_automatically, choose_preset
from .train.trainer import Trainer


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
              stop: threading.Event | None = None, photo_scale: float = 0.0) -> Task[LoadedData | None]:
    """Training and test images of ``request`` (DataSource.parse's arguments) at ``image_size``,
    or with ``image_size`` None at the size of the preset ``auto`` picks for them (``choice``).
    Photos kept at ``photo_scale`` of their own pixels (or at the automatic choice's) are held so
    for training; their test photos are loaded as thumbnails at the working size (they are
    scored one at a time, ``detect``).

    First yields the device the work will run on. A source without test images still loads:
    ``test_problem`` says why there are none. Raises EgbadError where the training data is unusable."""
    yield DeviceEvent(describe_device(resolve_device("auto")))
    source = DataSource.parse(**request)
    choice, reason = None, ""
    if image_size is None:
        choice, reason = choose_preset("auto", source=source)
        image_size, photo_scale = choice.model.load_size, choice.model.photo_scale
    train = yield from training_images_task(source, image_size, channels, stop, photo_scale)
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
    settings: Preset | None = None,
    resume: Checkpoint | None = None,
    epochs: int | None = None,
    device: str | None = None,
    train_set: ImageSet | None = None,
    world: World = ALONE,
) -> Trainer:
    """A new Trainer for ``settings`` (the whole recipe, as the panel or the command line made it),
    or one that resumes ``resume`` with its own settings up to ``epochs`` in total. ``train_set`` is
    used where it was loaded at the size the model needs; otherwise the training images are loaded
    again at that size.

    Raises EgbadError for unusable data or settings, or a checkpoint folder that cannot be written."""
    if checkpoint_path is not None:
        ensure_writable_folder(Path(checkpoint_path).parent)  # before any data is loaded or epoch spent
    if resume is not None:
        config = resume.networks.config
        source = source.with_normal_labels(resume.normal_labels)
        if train_set is None or not train_set.fits(config.load_size, config.channels, config.photo_scale):
            train_set = load_training_set(source, config.load_size, config.channels, config.photo_scale)
        return Trainer.resume(resume, train_set, epochs, checkpoint_path, device, world)
    if settings is None:
        raise ValueError("a new run needs its settings")
    model = settings.model
    if train_set is None or not train_set.fits(model.load_size, None, model.photo_scale):
        train_set = load_training_set(source, model.load_size, scale=model.photo_scale)
    data_info = {"kind": source.kind, "path": source.path, "normal_labels": list(source.normal_labels or [])}
    return Trainer(train_set, settings, checkpoint_path, data_info, world)


def training_set_task(source: DataSource, settings: Preset | None = None, resume: Checkpoint | None = None,
                      stop: threading.Event | None = None) -> Task[ImageSet | None]:
    """The training images at the size and channels ``make_trainer`` needs for ``settings`` (or to
    resume ``resume``), as a task: a ProgressEvent per file of a folder; None if stopped."""
    if resume is not None:
        config = resume.networks.config
        source = source.with_normal_labels(resume.normal_labels)
        return (yield from training_images_task(source, config.load_size, config.channels, stop, config.photo_scale))
    if settings is None:
        raise ValueError("a new run needs its settings")
    return (yield from training_images_task(source, settings.model.load_size, None, stop, settings.model.photo_scale))


def training(trainer: Trainer, stop: threading.Event | None = None) -> Task[FinishedEvent]:
    """The trainer's run as a task, after a DeviceEvent that says where it runs and from which epoch."""
    yield DeviceEvent(describe_device(trainer.device), trainer.epoch)
    return (yield from trainer.run(stop))


# ---------------------------------------------------------------------------------------- detection


def score_settings(checkpoint: Checkpoint, **changes: Any) -> ScoreConfig:
    """The checkpoint's score settings with ``changes`` (None values ignored); raises EgbadError."""
    config = replace(checkpoint.settings.score, **{k: v for k, v in changes.items() if v is not None})
    config.validate()
    return config


def region_of_interest(source: DataSource | None, checkpoint: Checkpoint, path: str | Path | None = None) -> Region | None:
    """The region of interest scoring keeps to: the mask at ``path``, or the folder's own roi.png;
    None where there is neither, or where the folder's own meets a model that draws no map (it
    scores whole images). Raises EgbadError for a mask that cannot be used, or one asked for by
    name with such a model."""
    region = read_region(path) if path else (folder_region(source) if source is not None else None)
    if region is not None and not checkpoint.networks.config.patch_model:
        if path:
            raise EgbadError(f"A region of interest needs a model that draws an anomaly map (the patch preset); "
                             f"{Path(path).name} cannot be used with this one, which scores whole images.")
        return None
    return region


def detect(request: ScoreRequest, source: DataSource, images: ImageSet | None = None,
           stop: threading.Event | None = None) -> Task[Detection | None]:
    """Load the source's test images at the model's size (unless ``images`` fit already), score
    them and set the threshold; None if stopped. Raises EgbadError for unusable data or settings."""
    config = request.checkpoint.networks.config
    corrections = read_corrections(source)  # an inspector's marks: the labels the metrics count
    if config.full_resolution:  # one photo at a time, kept as thumbnails
        detection = yield from photo_detection_task(request, source, config.load_size, stop)
    else:
        images = yield from test_images(source, request.checkpoint, images, stop)
        detection = None if images is None else (yield from detection_task(request, images, stop, corrections))
    if detection is not None and config.full_resolution:
        detection.corrections = corrections
        detection.choose_threshold(request.threshold)
    return detection


def mark_image(detection: Detection, source: DataSource, row: int, defect: bool | None) -> Path:
    """An inspector's verdict on one image, kept beside the data (``corrections.csv``) and counted
    in the detection's metrics from now on; raises EgbadError where it cannot be kept."""
    detection.mark(row, defect)
    return write_corrections(source, detection.corrections)



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


__all__ = [
    "__version__", "POOR_FIT", "PRESETS", "RESULT_FILES", "Checkpoint", "PresetChoice", "choose_automatically", "Detection",
    "DataSource", "ImageSet", "LoadedData", "ScoreRequest", "Trainer", "choose_preset", "data_name",
    "default_checkpoint_path", "describe_device", "describe_fit", "detect", "detect_into", "ensure_writable_folder", "export",
    "library_versions", "limit_heap_growth", "photo_view", "PhotoView", "Region", "region_of_interest", "folder_region", "example_picture", "polygon_region", "save_region", "remove_region", "release_free_memory", "load_checkpoint", "load_data", "make_trainer", "parse_source",
    "resolve_device", "run_to_end", "save_checkpoint", "score_settings", "skipped_lines", "test_images", "training",
    "training_set_task",
    "write_maps", "FalseAlarmRate", "one_in", "parse_rate", "WatchPlan", "watch_task", "Exported", "export_onnx", "usual_photo_size", "CORRECTIONS_NAME", "mark_image", "image_view",
    "video_task",
]
