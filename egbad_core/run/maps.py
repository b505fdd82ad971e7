"""Each image's anomaly map as a picture and as numbers: ``<name>.png`` laid over the image and the
raw ``<name>.npy``, at the image file's own size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..data.decoding import IMAGE_SUFFIXES
from ..pictures import overlay, to_rgb8
from ..system.files import atomic_write, ensure_writable_folder
from .detection import Detection


def write_maps(folder: str | Path, detection: Detection) -> Path:
    """One overlay PNG and one raw map per image of ``detection``, from what the run holds: the map
    and the image as the model saw them, resized to the file's own size (no file is read again)."""
    folder = ensure_writable_folder(folder)
    scores, images = detection.scores, detection.images
    if scores.residual_maps is None:
        raise ValueError("the scores were computed without keeping maps")
    low, high = detection.map_range()
    for index, image_id in enumerate(images.ids):
        anomaly_map = scores.residual_maps[index].astype(np.float32)
        picture = to_rgb8(images.unit(index))
        if images.sizes is not None:
            height, width = images.sizes[index]
            anomaly_map = np.asarray(Image.fromarray(anomaly_map, mode="F").resize((width, height), Image.Resampling.BILINEAR))
        picture = np.asarray(Image.fromarray(picture).resize(anomaly_map.shape[::-1], Image.Resampling.BICUBIC))
        name = safe_name(image_id)
        drawn = overlay(picture, anomaly_map, low, high)
        atomic_write(folder / f"{name}.png", lambda stream: Image.fromarray(drawn).save(stream, format="PNG"))
        atomic_write(folder / f"{name}.npy", lambda stream: np.save(stream, anomaly_map))
    return folder


def safe_name(image_id: str) -> str:
    """``test/crack/003.png`` → ``test_crack_003``, ``digits.csv#row7`` → ``digits.csv_row7``: one
    flat folder of maps, names still unique."""
    path = Path(image_id)
    stem = str(path.with_suffix("")) if path.suffix.lower() in IMAGE_SUFFIXES else image_id
    return "".join(c if c.isalnum() or c in "-." else "_" for c in stem.replace("#", "_"))
