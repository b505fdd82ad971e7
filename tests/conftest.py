"""Shared fixtures: tiny data sets and a tiny trained model, so the suite runs in seconds."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from egbad_core.config import DEFAULT_PRESET, ModelConfig, Preset, TrainConfig, replace

torch.set_num_threads(2)

TINY = Preset(
    name="default",  # a known name, so resumed checkpoints find their preset
    description="tiny networks for fast tests",
    model=ModelConfig(image_size=16, width=8, latent_size=4),
    train=TrainConfig(epochs=1, batch_size=8, device="cpu", preview_images=4),
    score=replace(DEFAULT_PRESET.score, batch_size=16),  # the default's score, reference and all
)


def digit_like(label: int, rng: np.random.Generator) -> np.ndarray:
    """A 28×28 uint8 image whose shape depends on the label (a bar at a label-given place)."""
    image = np.zeros((28, 28), np.uint8)
    row = 4 + 2 * (label % 10)
    image[row : row + 3, 4:24] = 255
    image += rng.integers(0, 20, size=(28, 28), dtype=np.uint8)
    return image


def write_mnist_csv(path: Path, labels: list[int], seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    pixels = np.stack([digit_like(label, rng).ravel() for label in labels])
    columns = [f"{r}x{c}" for r in range(1, 29) for c in range(1, 29)]
    frame = pd.DataFrame(pixels, columns=columns)
    frame.insert(0, "label", labels)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def mnist_csv(tmp_path: Path) -> Path:
    """24 rows: labels 7 and 8 (normal) and 2 (defect)."""
    return write_mnist_csv(tmp_path / "digits.csv", [7, 8, 2] * 8)


def write_folder(root: Path, train: int = 12, good: int = 4, defects: int = 4, colour: bool = False) -> Path:
    """An MVTec-layout folder of 40×30 textures; defects carry a bright spot."""
    rng = np.random.default_rng(1)

    def texture(spot: bool) -> Image.Image:
        base = (rng.normal(100, 10, size=(30, 40, 3)) if colour else rng.normal(100, 10, size=(30, 40))).clip(0, 255)
        if spot:
            base[10:18, 15:25] = 250
        return Image.fromarray(base.astype(np.uint8))

    for folder, count, spot in (("train/good", train, False), ("test/good", good, False), ("test/spot", defects, True)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            texture(spot).save(root / folder / f"{i:03d}.png")
    return root


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_folder(tmp_path / "parts")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny model trained for one epoch on the tiny CSV, written once for the session."""
    from egbad_core.data.sources import DataSource
    from egbad_core.data.loading import load_training_set
    from egbad_core.train.trainer import Trainer

    folder = tmp_path_factory.mktemp("tiny")
    csv = write_mnist_csv(folder / "digits.csv", [7, 8, 2] * 8)
    source = DataSource.parse(str(csv), normal_labels="7,8")
    train_set = load_training_set(source, TINY.model.image_size)
    path = folder / "tiny.pt"
    trainer = Trainer(train_set, TINY, checkpoint_path=path, data_info={"normal_labels": ["7", "8"]})
    for _ in trainer.run():
        pass
    return path




def read_until(stream, prefix: str) -> list[str]:
    """Lines of a child's text stream up to and including the first that starts with ``prefix``
    (all of them if it ends first): a kill or a signal timed by what the child says, not a sleep."""
    lines = []
    for line in iter(stream.readline, ""):
        lines.append(line)
        if line.startswith(prefix):
            break
    return lines


def open_window(qtbot, tmp_path: Path):
    """The window with its settings and checkpoints in ``tmp_path``, shown, once the demo (which
    loads after the first paint) is in."""
    from PySide6.QtCore import QSettings

    from egbad_gui import window_settings
    from egbad_gui.app import build_window

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue(window_settings.CHECKPOINT_FOLDER_KEY, str(tmp_path / "checkpoints"))
    window = build_window(settings)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.data_loaded, timeout=60_000):
        pass
    return window
