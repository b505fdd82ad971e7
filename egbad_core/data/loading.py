"""The one interface to every source: the images to train on and the images to score, as tasks."""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path

from ..errors import EgbadError
from ..events import Task, run_to_end
from .csv_files import read_csv
from .folders import NORMAL_FOLDER, list_folder, read_folder, scoring_listing, training_folder
from .images import ImageSet
from .sources import DataSource


def training_images_task(
    source: DataSource, image_size: int, channels: int | None = None, stop: threading.Event | None = None,
    scale: float = 0.0,
) -> Task[ImageSet | None]:
    """The normal images to train on, resized to ``image_size`` (a folder's photos with ``scale``:
    kept at that share of their own pixels), as a task (None if stopped).

    ``channels`` None lets the data decide (3 only if some image has colour). Raises EgbadError
    naming the file or folder where the data cannot be used."""
    if scale and source.kind != "folder":
        raise EgbadError("photos are kept at their own resolution only from a folder of image files, "
                         f"not from {source.kind} data; leave the photo scale at 0.")
    if source.kind == "demo":
        return read_csv(_demo_file("train"), image_size, channels, source.normal_labels, source.normal_labels)
    if source.kind == "csv":
        return read_csv(Path(source.path), image_size, channels, source.normal_labels, source.normal_labels)
    root = Path(source.path)
    listing = list_folder({NORMAL_FOLDER: training_folder(root)}, root, frozenset({NORMAL_FOLDER}))
    return (yield from read_folder(listing, image_size, channels, stop, scale))


def scoring_images_task(
    source: DataSource, image_size: int, channels: int | None = None, stop: threading.Event | None = None,
) -> Task[ImageSet | None]:
    """The images to score, resized to ``image_size``, with their labels where the source has them,
    as a task (None if stopped). Photos at their own resolution are scored a photo at a time
    (``folders.image_chunks``), never held together."""
    if source.kind == "demo":
        return read_csv(_demo_file("test"), image_size, channels, source.test_labels, source.normal_labels)
    if source.kind == "csv":
        path = Path(source.test_path or source.path)
        return read_csv(path, image_size, channels, source.test_labels, source.normal_labels)
    return (yield from read_folder(scoring_listing(source), image_size, channels, stop))


def load_training_set(source: DataSource, image_size: int, channels: int | None = None, scale: float = 0.0) -> ImageSet:
    """``training_images_task`` run to its end on this thread."""
    return run_to_end(training_images_task(source, image_size, channels, scale=scale))


def load_test_set(source: DataSource, image_size: int, channels: int | None = None) -> ImageSet:
    """``scoring_images_task`` run to its end on this thread."""
    return run_to_end(scoring_images_task(source, image_size, channels))


def _demo_file(split: str) -> Path:
    return Path(str(resources.files("egbad_resources") / f"demo_{split}.csv.gz"))
