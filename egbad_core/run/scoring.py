"""Scoring an image set held in memory (what the window shows) into a Detection, and what every
scoring run is asked (``ScoreRequest``), the window's and ``egbad detect``'s alike."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import torch

from ..config import ScoreConfig
from ..data.images import ImageSet
from ..data.region import Region
from ..errors import EgbadError
from ..events import Task, run_to_end
from ..model.checkpoints import Checkpoint
from ..model.inference import folded
from ..model.references import ScoreStats
from ..score.false_alarms import FalseAlarmRate
from ..score.local import Overlays
from ..score.method import scores_task, training_stats
from ..score.scores import Scores
from .detection import Detection

# Reconstructions and maps a Detection keeps for drawing, at most (bytes); beyond it (100,000 images
# of 64 px would take 3.3 GB) each picture is made again when it is drawn: one forward pass.
PICTURE_BUDGET = 1 << 30


@dataclass(frozen=True)
class ScoreRequest:
    """What a scoring run is asked: the model, the method, the score settings and the threshold."""

    checkpoint: Checkpoint
    method: str = "egbad"  # egbad (the checkpoint's kind of model) or anogan
    config: ScoreConfig | None = None  # None: the checkpoint's own score settings
    threshold: float | str | FalseAlarmRate | None = None  # a number, an automatic method (f1, p99, mean3sigma), a rate; None: the default
    checkpoint_path: str | None = None  # named in the results
    region: Region | None = None  # a region of interest: only its places are scored (patch models)

    @property
    def settings(self) -> ScoreConfig:
        return self.config or self.checkpoint.settings.score

    def frozen(self) -> "ScoreRequest":
        """The same request with the networks folded for scoring once, for a run of many chunks
        (folding them again for each chunk cost a second in six on the demo)."""
        return replace(self, checkpoint=replace(self.checkpoint, networks=folded(self.checkpoint.networks)))

    def task(self, pixels: torch.Tensor, keep_images: bool = True, stop: threading.Event | None = None,
             over: Overlays | None = None) -> Task[Scores | None]:
        """The scoring task over pixels as loaded, with what lies over them where given: the region
        of interest (``inside_of``), or a photo's windows' cuts (``run.photos``)."""
        return scores_task(self.checkpoint, pixels, self.method, self.settings, keep_images, stop, over)

    def inside_of(self, shape: tuple[int, int]) -> Overlays | None:
        """The region of interest laid over images of ``shape`` (height, width); None where there is none."""
        return None if self.region is None else Overlays(torch.from_numpy(self.region.at(shape)))

    def stats(self) -> ScoreStats | None:
        """The training statistics that describe these scores (None where none do)."""
        return training_stats(self.checkpoint, self.method, self.settings)

    def detection(self, images: ImageSet, scores: Scores) -> Detection:
        """A Detection of ``images`` with no threshold yet."""
        return Detection(images, scores, float("inf"), self.stats(), self.checkpoint_path, region=self.region)


def keeps_pictures(images: ImageSet) -> bool:
    """Whether every image's reconstruction and map fit in PICTURE_BUDGET as float32."""
    return len(images) * (images.channels + 1) * images.image_size**2 * 4 <= PICTURE_BUDGET


def check_fits(request: ScoreRequest, images: ImageSet) -> None:
    """Raises EgbadError where the images are not of the size and channels the model takes."""
    config = request.checkpoint.networks.config
    side = config.load_size
    if config.full_resolution:
        raise EgbadError("This model scores photos at their own resolution, a photo at a time from their folder, "
                         "not images already loaded at one size.")
    if images.channels != config.channels or images.image_size != side:
        raise EgbadError(
            f"{images.source} gives {images.image_size}×{images.image_size}×{images.channels} images; "
            f"the checkpoint expects {side}×{side}×{config.channels}."
        )


def detection_task(request: ScoreRequest, images: ImageSet, stop: threading.Event | None = None,
                   corrections: dict[str, bool] | None = None) -> Task[Detection | None]:
    """Score ``images`` and set the threshold (by their labels with an inspector's ``corrections``),
    as a task (progress events; the Detection, or None if ``stop`` was set). Raises EgbadError
    where the images do not fit the model or no threshold can be set."""
    check_fits(request, images)
    keep = keeps_pictures(images)
    scores = yield from request.task(images.pixels, keep, stop, request.inside_of(images.pixels.shape[-2:]))
    if scores is None:
        return None
    detection = request.detection(images, scores)
    if not keep:
        detection.remake = partial(_remade, request, images.pixels)
        sample = np.linspace(0, len(images) - 1, min(len(images), 256)).astype(np.int64)
        detection.map_top = float(np.percentile(detection.remake(sample).residual_maps, 99.9))
    detection.corrections = dict(corrections or {})
    detection.choose_threshold(request.threshold)
    return detection


def _remade(request: ScoreRequest, pixels: torch.Tensor, rows: np.ndarray) -> Scores:
    """Scores of the images at ``rows`` again, with their pictures."""
    return run_to_end(request.task(pixels[torch.from_numpy(np.asarray(rows, dtype=np.int64))], True, None,
                                   request.inside_of(pixels.shape[-2:])))


def run_detection(checkpoint: Checkpoint, images: ImageSet, method: str = "egbad",
                  config: ScoreConfig | None = None, threshold: float | str | None = None) -> Detection:
    """``detection_task`` run to its end on this thread."""
    return run_to_end(detection_task(ScoreRequest(checkpoint, method, config, threshold), images))
