"""A scored image set with its threshold, and the summary both faces report.

Moving the threshold only re-compares stored scores: nothing is scored again. Only the record and
what it says live here; the scoring that makes one is in ``scoring`` and ``streaming``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..data.images import ImageSet
from ..errors import EgbadError
from ..model.references import ScoreStats
from ..score import metrics
from ..score.false_alarms import FalseAlarmRate, FalseAlarms, implied, threshold_for
from ..score.scores import Scores


@dataclass
class Detection:
    """Scored images, their threshold, and the training scores that make the threshold readable.

    Where the pictures did not fit the budget, ``remake`` scores given rows again with them."""

    images: ImageSet
    scores: Scores
    threshold: float
    train_stats: ScoreStats | None = None
    checkpoint: str | None = None
    threshold_method: str = "manual"
    remake: Callable[[np.ndarray], Scores] | None = None
    map_top: float | None = None  # a whole-image model's map colour range where the maps were not kept
    photos: Any = None  # photos scored at their own resolution: photo_detection.PhotoRows (the images are thumbnails)
    pixel_samples: tuple[np.ndarray, np.ndarray, int] | None = None  # their maps' sampled pixels, labels, photos
    region: Any = None  # the region of interest the scores kept to (data.region.Region), to draw over the images
    corrections: dict[str, bool] = field(default_factory=dict)  # image id → defective, as an inspector marked it

    @property
    def truth(self) -> np.ndarray | None:
        """Each image's label (True: defect) as the folders give it, an inspector's mark where there
        is one; None where the folders say nothing."""
        given = self.images.is_defect
        if given is None or not self.corrections:
            return given
        return np.array([self.corrections.get(image_id, bool(g)) for image_id, g in zip(self.images.ids, given)])

    def mark(self, row: int, defect: bool | None) -> None:
        """An inspector's verdict on the image at ``row`` (None: back to the folder's label)."""
        image_id = self.images.ids[row]
        if defect is None:
            self.corrections.pop(image_id, None)
        else:
            self.corrections[image_id] = defect

    def pictures(self, rows: np.ndarray | list[int]) -> tuple[np.ndarray, np.ndarray] | None:
        """(reconstructions, maps) of the images at ``rows``: kept ones, or made again; None where
        neither can be had."""
        rows = np.asarray(rows, dtype=np.int64)
        scores = self.scores
        if scores.reconstructions is not None and scores.residual_maps is not None:
            return scores.reconstructions[rows], scores.residual_maps[rows]
        if self.remake is None or not len(rows):
            return None
        again = self.remake(rows)
        return again.reconstructions, again.residual_maps

    @property
    def flagged(self) -> np.ndarray:
        return metrics.flag(self.scores.score, self.threshold)

    def relative(self) -> np.ndarray | None:
        """Scores where 1.0 is the training images' 99th percentile, or None if unknown."""
        return self.train_stats.relative(self.scores.score) if self.train_stats else None

    def set_auto_threshold(self, method: str) -> float:
        """Set the threshold by ``method`` (f1, p99, mean3sigma); raises ValueError where it cannot be had."""
        self.threshold = metrics.auto_threshold(method, self.truth, self.scores.score, self.train_stats)
        self.threshold_method = method
        return self.threshold

    def choose_threshold(self, threshold: float | str | FalseAlarmRate | None) -> float:
        """A number, the name of an automatic method (f1, p99, mean3sigma), a false-alarm rate, or
        None for the sensible default; raises EgbadError where none can be set."""
        self.threshold, self.threshold_method = chosen_threshold(threshold, self.truth, self.scores.score,
                                                                 self.train_stats)
        return self.threshold

    def false_alarms(self) -> FalseAlarms | None:
        """What the threshold implies for good parts, where the checkpoint keeps good images' scores."""
        stats = self.train_stats
        return implied(stats, self.threshold)

    def at_threshold(self) -> metrics.ThresholdMetrics:
        return metrics.at_threshold(self.truth, self.scores.score, self.threshold)

    def ranking(self) -> tuple[float, float] | None:
        """(AUROC, AUPRC) where the labels hold both kinds of image, else None; they do not
        depend on the threshold, so a view computes them once."""
        truth = self.truth
        if not metrics.both_classes(truth):
            return None
        return metrics.auroc(truth, self.scores.score), metrics.auprc(truth, self.scores.score)

    def pixel_metrics(self) -> dict[str, Any]:
        """Pixel AUROC and PRO of the anomaly maps against the defect masks, over the images whose
        mask is known; all None where the folder has no masks."""
        images, maps = self.images, self.scores.residual_maps
        if self.pixel_samples is not None:  # photos: each one's own pixels, sampled
            values, labels, photos = self.pixel_samples
            return pixel_summary(values, labels, images.mask_notes, photos)
        if images.masks is None or maps is None or images.mask_known is None or not images.mask_known.any():
            return pixel_summary(None, None, images.mask_notes)
        known = images.mask_known
        return pixel_summary(maps[known], images.masks[known], images.mask_notes)

    def map_range(self) -> tuple[float, float]:
        """The map values a picture spans: for a local model, in the score's units, clear at what
        normal images' worst places reach on average and full colour half again above the threshold
        (or the training images' 99th percentile, if higher); for a whole-image model, its residual
        heatmap from 0 to the 99.9th percentile (of up to about 1,000 maps, evenly spaced)."""
        scores = self.scores
        if scores.local:  # a local model: the map's maximum is the score
            stats = self.train_stats
            low = stats.mean if stats is not None else float(np.percentile(scores.score, 10))
            unusual = stats.p99 if stats is not None else float(np.percentile(scores.score, 90))
            if np.isfinite(self.threshold):
                unusual = max(unusual, self.threshold)
            return low, max(unusual + 0.5 * (unusual - low), low + 1e-6)
        maps = scores.residual_maps
        if maps is None or not maps.size:
            return 0.0, self.map_top or 1.0
        sample = maps[:: max(1, len(maps) // 1000)]  # at most about 1,000 maps: 100,000 took 2 s
        return 0.0, float(np.percentile(sample, 99.9))

    def worst_places(self) -> np.ndarray | None:
        """(N, 2) row and column of each image's worst place, in its file's own pixels."""
        places = self.scores.places()
        if places is None:
            return None
        side = self.images.image_size
        if self.images.sizes is None:
            return places.astype(np.int64)
        originals = np.asarray(self.images.sizes, dtype=np.float64)  # (N, 2) height, width
        return np.floor((places + 0.5) * originals / side).astype(np.int64)

    def summary(self) -> dict[str, Any]:
        truth = self.truth
        at, alarms = self.at_threshold(), self.false_alarms()
        return {
            "method": self.scores.method,
            "checkpoint": self.checkpoint,
            "data": self.images.source,
            "n_images": len(self.images),
            "n_flagged": at.n_flagged,
            "n_defects": int(truth.sum()) if truth is not None else None,
            "threshold": at.threshold,
            "threshold_method": self.threshold_method,
            "relative_threshold": float(self.train_stats.relative(self.threshold)) if self.train_stats else None,
            "auroc": metrics.auroc(truth, self.scores.score),
            "auprc": metrics.auprc(truth, self.scores.score),
            "precision": at.precision,
            "recall": at.recall,
            "f1": at.f1,
            "lambda": self.scores.lam,
            "seconds": self.scores.seconds,
            "images_per_s": self.scores.images_per_s,
            "false_alarms": None if alarms is None else alarms.to_dict(),
            "train_score_stats": None if self.train_stats is None else
            {k: v for k, v in self.train_stats.__dict__.items() if k != "scores"},
            "label_counts": self.images.label_counts(),
            "corrected": len(self.corrections),  # images whose label an inspector's mark replaced
            **self.pixel_metrics(),
            "skipped": [str(s) for s in self.images.skipped],
        }


def pixel_summary(maps: np.ndarray | None, masks: np.ndarray | None, notes: list[str],
                  photos: int | None = None) -> dict[str, Any]:
    """Pixel AUROC and PRO of anomaly maps against their images' masks, the count, and what was
    done to the masks; None values where there are no maps with masks of their size. Without
    ``photos`` the two are that many photos' pixel samples, side by side: pixel AUROC only, no PRO."""
    if maps is None or masks is None or not len(maps) or maps.shape[-2:] != masks.shape[-2:]:
        return {"pixel_auroc": None, "pro": None, "pixel_images": 0, "mask_notes": list(notes)}
    if photos:
        return {"pixel_auroc": metrics.pixel_auroc(maps, masks), "pro": None, "pixel_images": photos,
                "mask_notes": list(notes)}
    return {"pixel_auroc": metrics.pixel_auroc(maps, masks), "pro": metrics.pro(maps, masks),
            "pixel_images": int(maps.shape[0]), "mask_notes": list(notes)}


def chosen_threshold(wanted: float | str | FalseAlarmRate | None, is_defect: np.ndarray | None, scores: np.ndarray,
                     stats: ScoreStats | None) -> tuple[float, str]:
    """The threshold ``wanted`` names (a number, an automatic method, a false-alarm rate, or None:
    best F1 where labels of both kinds exist, else the normal images' 99th percentile) and how it
    was set, in words; raises EgbadError where it cannot be had."""
    if isinstance(wanted, (int, float)):
        return float(wanted), "manual"
    if isinstance(wanted, FalseAlarmRate):
        if stats is None:
            raise EgbadError("cannot set the threshold by a false-alarm rate: the checkpoint's good-image scores "
                             "are not of this score (another method or other score settings).")
        return threshold_for(stats.scores, wanted.rate), str(wanted)
    method = wanted or ("f1" if metrics.both_classes(is_defect) else "p99")
    if method == "p99" and stats is None and wanted is None:
        raise EgbadError("there are no labels and the checkpoint has no training-score statistics; give --threshold.")
    try:
        return metrics.auto_threshold(method, is_defect, scores, stats), method
    except ValueError as error:
        raise EgbadError(f"cannot set the threshold automatically: {error}.") from None


def unlabelled_threshold(wanted: float | str | FalseAlarmRate | None, stats: ScoreStats | None) -> tuple[float, str]:
    """The threshold for images that come without labels (a watched folder, an exported model):
    the training images' 99th percentile unless ``wanted`` names another; no best F1."""
    return chosen_threshold("p99" if wanted is None else wanted, None, np.empty(0), stats)

