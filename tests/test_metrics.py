import numpy as np
import pytest

from egbad_core.score import metrics
from egbad_core.model.references import ScoreStats

TRUTH = np.array([False, False, True, True, False, True])
SCORES = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])


def test_auroc_and_auprc_match_hand_computed_values():
    # Defect scores 0.35, 0.8, 0.9 against normal 0.1, 0.4, 0.2: 8 of the 9 pairs are
    # ordered right (0.35 < 0.4 is the one wrong), so AUROC = 8/9.
    assert metrics.auroc(TRUTH, SCORES) == pytest.approx(8 / 9)
    # Ranked by score: 0.9 D, 0.8 D, 0.4 N, 0.35 D → precision at each defect 1, 1, 3/4.
    assert metrics.auprc(TRUTH, SCORES) == pytest.approx((1 + 1 + 0.75) / 3)


def test_precision_recall_f1_at_a_threshold():
    at = metrics.at_threshold(TRUTH, SCORES, 0.4)  # flags 0.4, 0.8, 0.9: two defects, one normal
    assert at.n_flagged == 3
    assert at.precision == pytest.approx(2 / 3)
    assert at.recall == pytest.approx(2 / 3)
    assert at.f1 == pytest.approx(2 / 3)


def test_best_f1_threshold_finds_the_cut_with_the_highest_f1():
    threshold, f1 = metrics.best_f1_threshold(TRUTH, SCORES)
    # Flagging >= 0.35 catches all three defects and one normal: P 3/4, R 1, F1 6/7.
    assert threshold == pytest.approx(0.35)
    assert f1 == pytest.approx(6 / 7)


def test_metrics_without_labels_or_with_one_class_are_none():
    assert metrics.auroc(None, SCORES) is None
    assert metrics.auroc(np.zeros(6, bool), SCORES) is None
    at = metrics.at_threshold(None, SCORES, 0.5)
    assert at.n_flagged == 2 and at.f1 is None


def test_percentile_and_statistics_thresholds():
    normal = np.arange(101, dtype=float)
    assert metrics.percentile_threshold(normal, 99) == pytest.approx(99.0)
    stats = ScoreStats.of(normal)
    assert metrics.auto_threshold("p99", None, SCORES, stats) == pytest.approx(99.0)
    assert metrics.auto_threshold("mean3sigma", None, SCORES, stats) == pytest.approx(50 + 3 * normal.std())
    assert stats.relative(99.0) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        metrics.auto_threshold("f1", None, SCORES, stats)
