"""Detection metrics and automatic thresholds. Images whose score is >= the threshold are flagged.

Ranking metrics come from scikit-learn; they are None where the labels hold one class only
(AUROC is undefined then), so callers can show "—" rather than fail. scikit-learn is imported
where it is first used: training never needs it, and it would add 70 MB to its peak memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class ScoreStats:
    """The training images' score distribution: the yardstick for readable scores."""

    mean: float
    std: float
    p99: float
    count: int

    @classmethod
    def of(cls, scores: np.ndarray) -> "ScoreStats":
        return cls(float(scores.mean()), float(scores.std()), float(np.percentile(scores, 99)), int(scores.size))

    @property
    def mean_plus_3_sigma(self) -> float:
        return self.mean + 3.0 * self.std

    def relative(self, scores: np.ndarray | float) -> np.ndarray | float:
        """Scores on a scale where 1.0 is the training images' 99th percentile."""
        return scores / self.p99 if self.p99 > 0 else scores


@dataclass(frozen=True)
class ThresholdMetrics:
    threshold: float
    n_images: int
    n_flagged: int
    precision: float | None  # None without labels
    recall: float | None
    f1: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def both_classes(is_defect: np.ndarray | None) -> bool:
    return is_defect is not None and 0 < int(np.sum(is_defect)) < len(is_defect)


def auroc(is_defect: np.ndarray | None, scores: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(is_defect, scores)) if both_classes(is_defect) else None


def auprc(is_defect: np.ndarray | None, scores: np.ndarray) -> float | None:
    """Average precision with defects as the positive class."""
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(is_defect, scores)) if both_classes(is_defect) else None


def flag(scores: np.ndarray, threshold: float) -> np.ndarray:
    return scores >= threshold


def at_threshold(is_defect: np.ndarray | None, scores: np.ndarray, threshold: float) -> ThresholdMetrics:
    """Counts, and with labels precision, recall and F1, for one threshold (cheap: no re-scoring)."""
    flagged = flag(scores, threshold)
    n_flagged = int(flagged.sum())
    if is_defect is None:
        return ThresholdMetrics(float(threshold), len(scores), n_flagged, None, None, None)
    true_positive = int(np.sum(flagged & is_defect))
    positives = int(np.sum(is_defect))
    precision = true_positive / n_flagged if n_flagged else 0.0
    recall = true_positive / positives if positives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ThresholdMetrics(float(threshold), len(scores), n_flagged, precision, recall, f1)


def best_f1_threshold(is_defect: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) of the threshold with the highest F1 on labelled scores."""
    from sklearn.metrics import precision_recall_curve

    if not both_classes(is_defect):
        raise ValueError("best-F1 threshold needs both normal and defect images")
    precision, recall, thresholds = precision_recall_curve(is_defect, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    best = int(np.argmax(f1))
    return float(thresholds[best]), float(f1[best])


def percentile_threshold(normal_scores: np.ndarray, percentile: float = 99.0) -> float:
    """A threshold from normal images alone, the common case in a factory."""
    return float(np.percentile(normal_scores, percentile))


def auto_threshold(
    method: str, is_defect: np.ndarray | None, scores: np.ndarray, train_stats: ScoreStats | None
) -> float:
    """The threshold named by ``method``: ``f1`` (needs labels), ``p99`` or ``mean3sigma``
    (need the training images' score statistics, which every checkpoint carries)."""
    if method == "f1":
        if not both_classes(is_defect):
            raise ValueError("the best-F1 threshold needs labelled normal and defect images")
        return best_f1_threshold(is_defect, scores)[0]
    if train_stats is None:
        raise ValueError("this checkpoint has no training-score statistics")
    if method == "p99":
        return train_stats.p99
    if method == "mean3sigma":
        return train_stats.mean_plus_3_sigma
    raise ValueError(f"unknown automatic threshold {method!r}")
