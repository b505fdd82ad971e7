"""What a trained model measures new images against, as records a checkpoint stores.

Built by the scoring stage when a checkpoint is written (``score.whole_reference``,
``score.local_reference``) and read back by ``checkpoints``: only the records live here, so reading
a checkpoint needs no scorer. ``ScoreStats`` is the training images' own score distribution, the
yardstick for thresholds and readable scores.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch


@dataclass(frozen=True)
class ScoreStats:
    """The training images' score distribution: the yardstick for readable scores."""

    mean: float
    std: float
    p99: float
    count: int
    # The scores themselves, sorted (checkpoints before issue 21 have none): the false-alarm rate a
    # threshold implies. A patch model's are of held-out images its banks never saw; a whole-image
    # model's of its training images, each left out of its own nearest-neighbour search.
    scores: tuple[float, ...] = ()
    held_out: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", tuple(float(s) for s in self.scores))  # a checkpoint's list

    @classmethod
    def of(cls, scores: np.ndarray, held_out: bool = False) -> "ScoreStats":
        return cls(float(scores.mean()), float(scores.std()), float(np.percentile(scores, 99)), int(scores.size),
                   tuple(np.sort(np.asarray(scores, dtype=np.float64)).tolist()), held_out)

    @property
    def mean_plus_3_sigma(self) -> float:
        return self.mean + 3.0 * self.std

    def relative(self, scores: np.ndarray | float) -> np.ndarray | float:
        """Scores on a scale where 1.0 is the training images' 99th percentile."""
        return scores / self.p99 if self.p99 > 0 else scores


@dataclass
class Reference:
    """The training images as a trained model sees them: what the score's terms measure against."""

    residual_mean: torch.Tensor  # (C, S, S) mean of the smoothed residual x − x'
    residual_spread: torch.Tensor  # (C, S, S) its standard deviation, floored
    features: torch.Tensor | None  # (M, F) D's pooled stage features of up to MEMORY_IMAGES training images
    residual_scale: float  # spread of R over the training images (1 where terms are not standardised)
    discrimination_scale: float

    def to_payload(self) -> dict[str, torch.Tensor]:
        payload = {
            "residual_mean": self.residual_mean, "residual_spread": self.residual_spread,
            "scales": torch.tensor([self.residual_scale, self.discrimination_scale], dtype=torch.float64),
        }
        if self.features is not None:
            payload["features"] = self.features
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, torch.Tensor]) -> "Reference":
        scales = payload["scales"].tolist()
        return cls(payload["residual_mean"].float(), payload["residual_spread"].float(), payload.get("features"),
                   float(scales[0]), float(scales[1]))

    def to(self, device: torch.device) -> "Reference":
        features = self.features.to(device) if self.features is not None else None
        return Reference(self.residual_mean.to(device), self.residual_spread.to(device), features,
                         self.residual_scale, self.discrimination_scale)


@dataclass
class PatchReference:
    """What a patch model's maps are measured against: the memory banks and each term's spread.

    Each term's mean and spread are those of a held-out training image's worst place (the maximum of
    its smoothed map), so a map reads as "how far beyond a normal image's worst place", in the same
    units whichever term it comes from. Checkpoints written before the moments term carry the mean
    and spread over all places instead (their scores move a little: the map is now smoothed before
    it is measured, not after)."""

    features: torch.Tensor  # (M, F) the coreset of training features
    residual_mean: float
    residual_spread: float
    discrimination_mean: float
    discrimination_spread: float
    moments: torch.Tensor | None = None  # (K, 2C) the coreset of training places' pixel moments
    moment_mean: float = 0.0
    moment_spread: float = 1.0
    # (M, D, h, w) aligned sets: the training images' moments place by place, kept instead of a moment bank
    places: torch.Tensor | None = None
    place_mean: float = 0.0
    place_spread: float = 1.0
    # (2, D) textures: each line direction's mean and spread over the training images (score/lines.py),
    # and (L, D) the coreset of training places' lines in those units
    lines: torch.Tensor | None = None
    line_mean: float = 0.0
    line_spread: float = 1.0
    line_memory: torch.Tensor | None = None
    # (2, D, h, w) aligned photos: each place of the frame's moments, their mean and spread over the
    # bank photos (score/frame_place.py), for photos of ``frame_size`` (height, width) only
    frame: torch.Tensor | None = None
    frame_size: tuple[int, int] = (0, 0)
    frame_mean: float = 0.0
    frame_spread: float = 1.0
    frame_template: torch.Tensor | None = None  # (h, w) the reduced copy each photo's pose is found against
    # (S, 18) textures: the coreset of training places' tone layouts (score/moments.py ``local_shapes``),
    # a term of its own; checkpoints of the seventeenth session hold them in the moments' bank instead
    shapes: torch.Tensor | None = None
    shape_mean: float = 0.0
    shape_spread: float = 1.0

    def to_payload(self) -> dict[str, torch.Tensor]:
        stats = [self.residual_mean, self.residual_spread, self.discrimination_mean, self.discrimination_spread]
        payload = {"kind": torch.tensor([1]), "features": self.features}
        if self.moments is not None:
            payload["moments"] = self.moments
            stats += [self.moment_mean, self.moment_spread]
        payload["stats"] = torch.tensor(stats, dtype=torch.float64)
        if self.places is not None:  # half precision: 150 images' places at 256 px are 11 MB, not 22
            payload["places"] = self.places.half()
            payload["place_stats"] = torch.tensor([self.place_mean, self.place_spread], dtype=torch.float64)
        if self.lines is not None:  # "even_": the contrast over its spread along the line (an older "lines" is not read)
            payload["even_lines"] = self.lines
            payload["even_line_bank"] = self.line_memory
            payload["even_line_stats"] = torch.tensor([self.line_mean, self.line_spread], dtype=torch.float64)
        if self.frame is not None:  # half precision, as the places: 2,048-px photos' are 19 MB, not 38
            payload["frame"] = self.frame.half()
            payload["frame_stats"] = torch.tensor([self.frame_mean, self.frame_spread, *self.frame_size], dtype=torch.float64)
            if self.frame_template is not None:
                payload["frame_template"] = self.frame_template
        if self.shapes is not None:
            payload["shape_bank"] = self.shapes
            payload["shape_stats"] = torch.tensor([self.shape_mean, self.shape_spread], dtype=torch.float64)
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, torch.Tensor]) -> "PatchReference":
        stats = [float(v) for v in payload["stats"].tolist()]
        moments = payload.get("moments")
        if len(stats) != (4 if moments is None else 6) or payload["features"].dim() != 2 or (
                moments is not None and moments.dim() != 2):
            raise ValueError("its shapes do not fit a patch model")
        reference = cls(payload["features"].float(), *stats[:4], moments.float() if moments is not None else None, *stats[4:])
        places = payload.get("places")
        if places is not None:
            if places.dim() != 4 or places.shape[0] < 1 or "place_stats" not in payload:
                raise ValueError("its same-place moments are not a stack of training images' places")
            mean, spread = (float(v) for v in payload["place_stats"].tolist())
            reference = replace(reference, places=places.float(), place_mean=mean, place_spread=spread)
        # An older opt-in line term's statistics ("lines") measured the contrast alone, which the
        # line term no longer gives: such a checkpoint scores without it.
        lines = payload.get("even_lines")
        if lines is not None:
            bank = payload.get("even_line_bank")
            if (lines.dim() != 2 or lines.shape[0] != 2 or "even_line_stats" not in payload or bank is None
                    or bank.dim() != 2 or bank.shape[1] != lines.shape[1]):
                raise ValueError("its line statistics are not each direction's mean and spread with a bank of places")
            mean, spread = (float(v) for v in payload["even_line_stats"].tolist())
            reference = replace(reference, lines=lines.float(), line_mean=mean, line_spread=spread, line_memory=bank.float())
        frame = payload.get("frame")
        if frame is not None:
            if frame.dim() != 4 or frame.shape[0] != 2 or "frame_stats" not in payload:
                raise ValueError("its frame statistics are not each place's mean and spread")
            mean, spread, height, width = payload["frame_stats"].tolist()
            template = payload.get("frame_template")
            reference = replace(reference, frame=frame.float(), frame_size=(int(height), int(width)), frame_mean=mean,
                                frame_spread=spread, frame_template=None if template is None else template.float())
        shapes = payload.get("shape_bank")
        if shapes is not None:
            if shapes.dim() != 2 or "shape_stats" not in payload or moments is None:
                raise ValueError("its tone layouts are not a bank of places beside a bank of moments")
            mean, spread = (float(v) for v in payload["shape_stats"].tolist())
            reference = replace(reference, shapes=shapes.float(), shape_mean=mean, shape_spread=spread)
        return reference

    def to(self, device: torch.device) -> "PatchReference":
        def moved(t: torch.Tensor | None) -> torch.Tensor | None:
            return t.to(device) if t is not None else None

        return replace(self, features=self.features.to(device), moments=moved(self.moments), places=moved(self.places),
                       lines=moved(self.lines), line_memory=moved(self.line_memory), frame=moved(self.frame),
                       frame_template=moved(self.frame_template), shapes=moved(self.shapes))

    @property
    def line_bank(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The line term's directions' units and bank of places, as ``score.lines.line_map`` takes them."""
        return None if self.lines is None else (self.lines, self.line_memory)
