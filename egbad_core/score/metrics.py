"""Detection metrics and automatic thresholds. Images whose score is >= the threshold are flagged.

Ranking metrics come from scikit-learn; they are None where the labels hold one class only
(AUROC is undefined then), so callers can show "—" rather than fail. scikit-learn is imported
where it is first used: training never needs it, and it would add 70 MB to its peak memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.references import ScoreStats


@dataclass(frozen=True)
class ThresholdMetrics:
    """Counts, and with labels precision, recall and F1, at one threshold."""
    threshold: float
    n_images: int
    n_flagged: int
    precision: float | None  # None without labels
    recall: float | None
    f1: float | None


def both_classes(is_defect: np.ndarray | None) -> bool:
    """True where the labels hold both normal and defect images."""
    return is_defect is not None and 0 < int(np.sum(is_defect)) < len(is_defect)


def auroc(is_defect: np.ndarray | None, scores: np.ndarray) -> float | None:
    """Area under the ROC curve with defects as positives; None without both kinds."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(is_defect, scores)) if both_classes(is_defect) else None


def auprc(is_defect: np.ndarray | None, scores: np.ndarray) -> float | None:
    """Average precision with defects as the positive class."""
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(is_defect, scores)) if both_classes(is_defect) else None


def flag(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Images whose score is at or above the threshold."""
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


# ---------------------------------------------------------------------------------------- pixel level

PRO_FPR_LIMIT = 0.3  # the MVTec AD paper's: the area under the PRO curve up to 30% false positives


def pixel_auroc(maps: np.ndarray, masks: np.ndarray) -> float | None:
    """AUROC of every pixel's anomaly value against the masks (N, H, W); None without both kinds."""
    from sklearn.metrics import roc_auc_score

    truth = masks.reshape(-1).astype(bool)
    if truth.all() or not truth.any():
        return None
    values = maps.reshape(-1)
    if values.size > 4_000_000:  # a fixed subsample: the ranking of millions of pixels barely moves
        keep = np.random.default_rng(0).choice(values.size, 4_000_000, replace=False)
        truth, values = truth[keep], values[keep]
    return float(roc_auc_score(truth, values))


def pro(maps: np.ndarray, masks: np.ndarray, fpr_limit: float = PRO_FPR_LIMIT, steps: int = 300) -> float | None:
    """Area under the per-region-overlap curve up to ``fpr_limit`` false-positive rate, divided by
    ``fpr_limit`` (Bergmann et al., MVTec AD, IJCV 2021): each connected defect region counts the
    same, however large, so a missed small scratch weighs as much as a found large stain.
    None where the masks hold no defect region or no normal pixel."""
    from scipy import ndimage

    masks = masks.astype(bool)
    normal = maps[~masks]
    if normal.size == 0 or not masks.any():
        return None
    regions: list[np.ndarray] = []
    for image_map, mask in zip(maps, masks):
        labelled, count = ndimage.label(mask)
        for region in range(1, count + 1):
            regions.append(np.sort(image_map[labelled == region]))
    fprs = np.linspace(0.0, fpr_limit, steps + 1)
    thresholds = np.quantile(normal, 1.0 - fprs)  # the threshold at which that share of normal pixels is above
    overlaps = np.zeros_like(fprs)
    for values in regions:
        overlaps += 1.0 - np.searchsorted(values, thresholds, side="left") / values.size
    overlaps /= len(regions)
    return float(np.trapezoid(overlaps, fprs) / fpr_limit)
