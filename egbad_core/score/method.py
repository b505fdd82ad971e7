"""Which scorer a checkpoint's images go through, and which training statistics describe its scores."""

from __future__ import annotations

import threading
from typing import TypeVar

import torch

from ..config import ScoreConfig, replace
from ..events import Task
from ..model.checkpoints import Checkpoint
from ..model.references import ScoreStats
from ..system.memory import heap_for_scoring
from .anogan import anogan_task
from .local import Overlays, patch_scoring_task
from .scores import Scores
from .whole import scoring_task

T = TypeVar("T")


def scores_task(checkpoint: Checkpoint, pixels: torch.Tensor, method: str, config: ScoreConfig,
                keep_images: bool = True, stop: threading.Event | None = None,
                over: Overlays | None = None) -> Task[Scores | None]:
    """The scoring task of ``method`` (egbad: the checkpoint's kind of model; anogan) over pixels
    as loaded; ``over``, a region of interest or a photo's windows' cuts, for a patch model's maps
    only."""
    networks, normalisation = checkpoint.networks, checkpoint.settings.normalisation
    if method == "egbad" and networks.config.patch_model:
        task = patch_scoring_task(networks, pixels, normalisation, config, checkpoint.reference, keep_images, stop, over)
    elif over is not None:
        raise ValueError("a region of interest needs a patch model's maps")
    elif method == "egbad":
        task = scoring_task(networks, pixels, normalisation, config, checkpoint.reference, keep_images, stop)
    else:
        task = anogan_task(networks, pixels, normalisation, config, keep_images, stop=stop)
    return reusing_heap(task)


def reusing_heap(task: Task[T]) -> Task[T]:
    """``task`` run with the allocator set for scoring (``system.memory.heap_for_scoring``)."""
    with heap_for_scoring():
        return (yield from task)


def training_stats(checkpoint: Checkpoint, method: str, config: ScoreConfig) -> ScoreStats | None:
    """The checkpoint's training-score statistics where they describe this score: not for AnoGAN
    (another scale) nor for other score settings (λ, terms); batch size and precision do not count."""
    trained = checkpoint.settings.score
    same = replace(config, batch_size=0, mixed_precision=False) == replace(trained, batch_size=0, mixed_precision=False)
    return checkpoint.train_stats if method == "egbad" and same else None
