"""Checkpoints: one file with everything needed to score, resume and show a trained model.

The file is a plain dict of tensors, numbers and strings written by ``torch.save`` and read
with ``torch.load(weights_only=True)``, which refuses to unpickle arbitrary objects: opening a
checkpoint from someone else never runs code from it. Settings travel as a JSON string.
Writes are atomic (``system.files.atomic_write``), so a crash, a kill or a full disk leaves either
the old file or the new one, never half of one. The settings are one ``Preset``: the recipe the model
was trained with, its model shape as trained (channels and size from the data), which a resumed run
goes on with unchanged.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..config import ModelConfig, Normalisation, Preset, ScoreConfig, TrainConfig, from_dict, to_dict
from ..errors import EgbadError, first_line
from ..system.files import atomic_write
from .networks import Networks
from .references import PatchReference, Reference, ScoreStats

FORMAT = "egbad-inspector-checkpoint"
FORMAT_VERSION = 1
ARCHITECTURE = "egbad-dcgan"


@dataclass
class Checkpoint:
    """A trained (or partly trained) model with its settings and history."""

    networks: Networks
    settings: Preset  # the recipe as trained: settings.model is networks.config
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
        "train": to_dict(checkpoint.settings.train),
        "score": to_dict(checkpoint.settings.score),
        "normalisation": to_dict(checkpoint.settings.normalisation),
        "preset": checkpoint.settings.name,
        "description": checkpoint.settings.description,
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
        "state": {name: _cpu_state(m.state_dict()) for name, m in checkpoint.networks.items()},
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


def _cpu_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in state.items()}


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> Checkpoint:
    """Read a checkpoint of ours; anything else is refused with a plain EgbadError."""
    path = Path(path)
    payload = _payload(path)
    try:
        meta = json.loads(payload["meta"])
        config = from_dict(ModelConfig, meta["model"])
        networks = Networks(config)
        for name, module in networks.items():
            module.load_state_dict(payload["state"][name])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise EgbadError(f"{path} does not match the networks it describes ({first_line(error)}).") from None
    try:
        reference = _reference(payload.get("reference"), config)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as error:
        raise EgbadError(f"{path} holds a damaged score reference ({first_line(error)}).") from None
    settings = Preset(
        name=meta.get("preset", "default"),
        description=meta.get("description", ""),
        model=config,
        train=from_dict(TrainConfig, meta.get("train", {})),
        score=from_dict(ScoreConfig, meta.get("score", {})),
        normalisation=from_dict(Normalisation, meta.get("normalisation", {})),
    )
    stats, losses = meta.get("train_stats"), payload.get("iteration_losses")
    return Checkpoint(
        networks=networks.place(device),
        settings=settings,
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


def _payload(path: Path) -> dict[str, Any]:
    """The file's dict, once it is known to be a checkpoint of ours in a format this app reads."""
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
    return payload


def _reference(stored: dict[str, Any] | None, config: ModelConfig) -> Reference | PatchReference | None:
    """The stored reference record; raises ValueError (and the like) where it is damaged."""
    if stored is None:
        return None
    if "kind" in stored:
        return PatchReference.from_payload(stored)
    reference = Reference.from_payload(stored)
    image = (config.channels, config.image_size, config.image_size)
    if (tuple(reference.residual_mean.shape) != image or tuple(reference.residual_spread.shape) != image
            or (reference.features is not None and reference.features.dim() != 2)):
        raise ValueError("its shapes do not fit the networks")
    return reference
