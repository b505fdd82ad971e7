"""The false-alarm rate a threshold implies, and a threshold set by one (issue 21)."""

import json
import math

import numpy as np
import pytest

from egbad_core.cli import main
from egbad_core.errors import EgbadError
from egbad_core.model.checkpoints import load_checkpoint
from egbad_core.score.false_alarms import false_alarms, one_in, parse_rate, threshold_for


def test_a_gumbel_sample_gives_back_its_tail_and_the_threshold_its_rate():
    scores = np.random.default_rng(0).gumbel(2.0, 0.5, 4000)
    threshold = 2.0 - 0.5 * math.log(-math.log1p(-0.01))  # the true 1% point
    found = false_alarms(scores, threshold, held_out=True)
    assert found.rate == pytest.approx(0.01, rel=0.25)
    assert found.above == int((scores >= threshold).sum()) and found.total == 4000
    assert found.low < found.above / found.total < found.high
    assert threshold_for(scores, found.rate) == pytest.approx(threshold, rel=1e-9)  # one the other's inverse


def test_no_good_image_above_the_threshold_bounds_the_rate_by_the_count():
    scores = np.linspace(1.0, 2.0, 50)
    found = false_alarms(scores, 5.0, held_out=True)
    assert found.above == 0 and found.low == 0.0
    assert found.high == pytest.approx(1 - 0.025 ** (1 / 50), rel=1e-6)  # the exact 95% bound for 0 of 50
    said = found.sentence()
    assert said.startswith("About 1 in ") and "50 held-out good images" in said and "none of them" in said
    assert false_alarms(scores[:1], 1.0, True) is None and false_alarms(scores, float("inf"), True) is None


@pytest.mark.parametrize("text", ["1/400", "1 in 400", "0.25%", "0.0025", " 1/400 "])
def test_a_rate_is_read_as_people_write_it(text):
    assert parse_rate(text).rate == pytest.approx(0.0025)


@pytest.mark.parametrize("text", ["abc", "0", "2", "1/0", "150%"])
def test_a_rate_that_is_no_share_of_parts_is_refused_in_a_sentence(text):
    with pytest.raises(EgbadError, match="is not a share of good parts"):
        parse_rate(text)


def test_rates_are_said_as_one_in_so_many():
    assert one_in(0.0025) == "1 in 400" and one_in(1 / 1234) == "1 in 1,200" and one_in(0.3) == "30%"


def test_a_checkpoint_keeps_its_good_images_scores_and_detect_sets_the_threshold_by_a_rate(tiny_checkpoint, tmp_path, capsys):
    stats = load_checkpoint(tiny_checkpoint).train_stats
    assert len(stats.scores) == stats.count and list(stats.scores) == sorted(stats.scores)
    assert stats.mean == pytest.approx(float(np.mean(stats.scores))) and not stats.held_out  # a whole-image model's
    from conftest import write_mnist_csv

    csv = write_mnist_csv(tmp_path / "d.csv", [7, 8, 2] * 4)
    out = tmp_path / "out"
    code = main(["detect", "--checkpoint", str(tiny_checkpoint), "--data", str(csv), "--normal-labels", "7,8",
                 "--out-dir", str(out), "--quiet", "--false-alarm-rate", "1/20"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["threshold"] == pytest.approx(threshold_for(stats.scores, 0.05))
    assert summary["false_alarms"]["rate"] == pytest.approx(0.05) and summary["threshold_method"] == "about 1 in 20 good parts flagged"
    assert "About 1 in 20 good parts flagged" in capsys.readouterr().err
    assert main(["detect", "--checkpoint", str(tiny_checkpoint), "--data", str(csv), "--out-dir", str(out),
                 "--quiet", "--false-alarm-rate", "7"]) == 2
