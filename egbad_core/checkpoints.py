"""Checkpoints: one file with everything needed to score, resume and show a trained model.

The file is a plain dict of tensors, numbers and strings written by ``torch.save`` and read
with ``torch.load(weights_only=True)``, which refuses to unpickle arbitrary objects: opening a
checkpoint from someone else never runs code from it. Settings travel as a JSON string.
Writes are atomic (temp file in the same folder, fsync, rename), so a crash or a kill leaves
either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .config import ModelConfig, Normalisation, ScoreConfig, TrainConfig, from_dict, to_dict
from .errors import EgbadError
from .models import Networks
from .metrics import ScoreStats
from .patches import PatchReference
from .reference import Reference

FORMAT = "egbad-inspector-checkpoint"
FORMAT_VERSION = 1
ARCHITECTURE = "egbad-dcgan"
SUFFIX = ".pt"


@dataclass
class Checkpoint:
    """A trained (or partly trained) model with its settings and history."""

    networks: Networks
    train: TrainConfig
    score: ScoreConfig
    normalisation: Normalisation
    preset: str = "default"
    epoch: int = 0  # completed epochs
    iteration_losses: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))  # (n, 3) D, G, E
    epoch_summaries: list[dict[str, float]] = field(default_factory=list)
    train_stats: ScoreStats | None = None
    reference: Reference | PatchReference | None = None  # the training images as the score measures against them
    data: dict[str, Any] = field(default_factory=dict)  # source kind, path, normal labels
    optimiser_states: dict[str, Any] | None = None
    rng_state: torch.Tensor | None = None
    notes: dict[str, Any] = field(default_factory=dict)  # free-form: stop reason, app version

    @property
    def normal_labels(self) -> tuple[str, ...] | None:
        labels = self.data.get("normal_labels")
        return tuple(labels) if labels else None


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> Path:
    """Write atomically; returns the final path. Raises EgbadError if the folder is not writable."""
    path = Path(path)
    meta = {
        "model": to_dict(checkpoint.networks.config),
        "train": to_dict(checkpoint.train),
        "score": to_dict(checkpoint.score),
        "normalisation": to_dict(checkpoint.normalisation),
        "preset": checkpoint.preset,
        "epoch": checkpoint.epoch,
        "epoch_summaries": checkpoint.epoch_summaries,
        "train_stats": to_dict(checkpoint.train_stats) if checkpoint.train_stats else None,
        "data": checkpoint.data,
        "notes": {**checkpoint.notes, "app_version": __version__},
    }
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": ARCHITECTURE,
        "meta": json.dumps(meta),
        "state": {name: _cpu_state(m.state_dict()) for name, m in checkpoint.networks.modules().items()},
        "iteration_losses": torch.from_numpy(np.ascontiguousarray(checkpoint.iteration_losses, dtype=np.float32)),
    }
    if checkpoint.optimiser_states is not None:
        payload["optimisers"] = checkpoint.optimiser_states
    if checkpoint.rng_state is not None:
        payload["rng_state"] = checkpoint.rng_state
    if checkpoint.reference is not None:
        payload["reference"] = checkpoint.reference.to_payload()
    atomic_write(path, lambda handle: torch.save(payload, handle))
    return path


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(handle)`` on a temp file beside ``path``, fsync it, then rename over ``path``."""
    folder = path.parent if str(path.parent) else Path(".")
    ensure_writable_folder(folder)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where the OS allows it
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def ensure_writable_folder(folder: str | Path) -> Path:
    """Create ``folder`` if needed and prove it can be written, before any long work starts."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise EgbadError(f"{folder} cannot be written ({error.strerror or error}).") from None
    return folder


def _cpu_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in state.items()}


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> Checkpoint:
    """Read a checkpoint of ours; anything else is refused with a plain EgbadError."""
    path = Path(path)
    if not path.is_file():
        raise EgbadError(f"{path} does not exist or is not a file.")
    if path.stat().st_size == 0:
        raise EgbadError(f"{path} is empty (0 bytes), not a checkpoint.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise EgbadError(
            f"{path} was refused: it holds Python objects that could run code when opened, "
            "so it is not an EGBAD Inspector checkpoint."
        ) from None
    except Exception as error:  # noqa: BLE001 - whatever the bytes are, they are not our checkpoint
        raise EgbadError(f"{path} is truncated or is not an EGBAD Inspector checkpoint.") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise EgbadError(f"{path} is not an EGBAD Inspector checkpoint.")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise EgbadError(
            f"{path} has checkpoint format version {version}, newer than this app reads ({FORMAT_VERSION}); "
            "update EGBAD Inspector."
        )
    if payload.get("architecture") != ARCHITECTURE:
        raise EgbadError(
            f"{path} holds a model of architecture {payload.get('architecture')!r}, not {ARCHITECTURE!r}."
        )
    try:
        meta = json.loads(payload["meta"])
        config = from_dict(ModelConfig, meta["model"])
        networks = Networks.build(config)
        for name, module in networks.modules().items():
            module.load_state_dict(payload["state"][name])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise EgbadError(f"{path} does not match the networks it describes ({_short(error)}).") from None
    stats = meta.get("train_stats")
    losses = payload.get("iteration_losses")
    try:
        stored = payload.get("reference")
        reference = None
        if stored is not None and "kind" in stored:
            reference = PatchReference.from_payload(stored)
        elif stored is not None:
            reference = Reference.from_payload(stored)
        image = (config.channels, config.image_size, config.image_size)
        if isinstance(reference, Reference) and (
            tuple(reference.residual_mean.shape) != image or tuple(reference.residual_spread.shape) != image
            or (reference.features is not None and reference.features.dim() != 2)
        ):
            raise ValueError("its shapes do not fit the networks")
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as error:
        raise EgbadError(f"{path} holds a damaged score reference ({_short(error)}).") from None
    return Checkpoint(
        networks=networks.to(torch.device(device)),
        train=from_dict(TrainConfig, meta.get("train", {})),
        score=from_dict(ScoreConfig, meta.get("score", {})),
        normalisation=from_dict(Normalisation, meta.get("normalisation", {})),
        preset=meta.get("preset", "default"),
        epoch=int(meta.get("epoch", 0)),
        iteration_losses=losses.numpy() if isinstance(losses, torch.Tensor) else np.zeros((0, 3), np.float32),
        epoch_summaries=list(meta.get("epoch_summaries", [])),
        train_stats=from_dict(ScoreStats, stats) if stats else None,
        reference=reference,
        data=dict(meta.get("data", {})),
        optimiser_states=payload.get("optimisers"),
        rng_state=payload.get("rng_state"),
        notes=dict(meta.get("notes", {})),
    )


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:160]
