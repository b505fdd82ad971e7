"""Which scorer a checkpoint's images go through, and which training statistics describe its scores."""

from __future__ import annotations

import threading

import torch

from ..config import ScoreConfig, replace
from ..events import Task
from ..model.checkpoints import Checkpoint
from ..model.references import ScoreStats
from .anogan import anogan_task
from .local import patch_scoring_task
from .scores import Scores
from .whole import scoring_task


def scores_task(checkpoint: Checkpoint, pixels: torch.Tensor, method: str, config: ScoreConfig,
                keep_images: bool = True, stop: threading.Event | None = None,
                inside: torch.Tensor | None = None) -> Task[Scores | None]:
    """The scoring task of ``method`` (egbad: the checkpoint's kind of model; anogan) over pixels
    as loaded; ``inside``, a region of interest, for a patch model's maps only."""
    networks, normalisation = checkpoint.networks, checkpoint.settings.normalisation
    if method == "egbad" and networks.config.patch_model:
        return patch_scoring_task(networks, pixels, normalisation, config, checkpoint.reference, keep_images, stop,
                                  inside)
    if inside is not None:
        raise ValueError("a region of interest needs a patch model's maps")
    if method == "egbad":
        return scoring_task(networks, pixels, normalisation, config, checkpoint.reference, keep_images, stop)
    return anogan_task(networks, pixels, normalisation, config, keep_images, stop=stop)


def training_stats(checkpoint: Checkpoint, method: str, config: ScoreConfig) -> ScoreStats | None:
    """The checkpoint's training-score statistics where they describe this score: not for AnoGAN
    (another scale) nor for other score settings (λ, terms); batch size and precision do not count."""
    trained = checkpoint.settings.score
    same = replace(config, batch_size=0, mixed_precision=False) == replace(trained, batch_size=0, mixed_precision=False)
    return checkpoint.train_stats if method == "egbad" and same else None
