"""How often a threshold flags a good part, from the good images a checkpoint was measured on.

A threshold in score units means little to the person who sets it; "about 1 in 400 good parts
flagged" is what they decide by. An image's score is its worst place (or its score against the
training set's nearest), a maximum, so the good images' scores are fitted by the distribution of
maxima (Gumbel's, by its moments), which reaches rates rarer than the few dozen images it is
fitted to can show; beside it, how many of those images score above the threshold and the exact
(Clopper–Pearson) 95% interval of the rate that count alone allows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import EgbadError

if TYPE_CHECKING:
    from ..model.references import ScoreStats

EULER_GAMMA = 0.5772156649015329
CONFIDENCE = 0.95


@dataclass(frozen=True)
class FalseAlarmRate:
    """A threshold asked for by the share of good parts it should flag (0 < rate < 1)."""

    rate: float

    def __str__(self) -> str:
        return f"about {one_in(self.rate)} good parts flagged"


@dataclass(frozen=True)
class FalseAlarms:
    """What a threshold implies for good parts."""

    threshold: float
    rate: float  # the fitted share of good parts at or above the threshold
    above: int  # of the good images measured, how many score at or above it
    total: int
    low: float  # the 95% interval of the rate from ``above`` of ``total`` alone
    high: float
    held_out: bool  # the good images were held out of the model's banks (else its training images)

    def sentence(self) -> str:
        source = "held-out good images" if self.held_out else "training images"
        if self.above == 0:
            count = f"none of them scores this high, which alone puts the rate below {one_in(self.high)} (95%)"
        else:
            count = (f"{self.above} of them score this high: 95% between {one_in(self.low)} and "
                     f"{one_in(self.high)}")
        return f"About {one_in(self.rate)} good parts flagged (fitted to {self.total} {source}; {count})."

    def to_dict(self) -> dict[str, float | int | bool]:
        return {"rate": self.rate, "above": self.above, "of": self.total, "interval_95": [self.low, self.high],
                "held_out": self.held_out, "said": self.sentence()}


def one_in(rate: float) -> str:
    """'1 in 400' (two significant figures), or a percentage where it is more than one in ten."""
    if rate <= 0:
        return "none"
    if rate >= 0.1:
        return f"{100 * rate:.0f}%"
    n = 1.0 / rate
    digits = max(0, int(math.floor(math.log10(n))) - 1)
    return f"1 in {int(round(n, -digits)):,}"


def _gumbel(scores: np.ndarray) -> tuple[float, float]:
    """Location and scale of the maxima's distribution with the scores' mean and spread."""
    scale = max(float(scores.std()) * math.sqrt(6.0) / math.pi, 1e-12)
    return float(scores.mean()) - EULER_GAMMA * scale, scale


def _interval(above: int, total: int) -> tuple[float, float]:
    from scipy.stats import beta

    tail = (1.0 - CONFIDENCE) / 2
    low = 0.0 if above == 0 else float(beta.ppf(tail, above, total - above + 1))
    high = 1.0 if above == total else float(beta.ppf(1 - tail, above + 1, total - above))
    return low, high


def implied(stats: "ScoreStats | None", threshold: float) -> FalseAlarms | None:
    """What ``threshold`` implies for good parts, from the good-image scores a checkpoint keeps;
    None for a checkpoint that keeps none (written before issue 21)."""
    return None if stats is None else false_alarms(stats.scores, threshold, stats.held_out)


def false_alarms(scores: np.ndarray | tuple[float, ...], threshold: float, held_out: bool) -> FalseAlarms | None:
    """What ``threshold`` implies for good parts, from good images' ``scores``; None without any."""
    values = np.asarray(scores, dtype=np.float64)
    if values.size < 2 or not math.isfinite(threshold):
        return None
    location, scale = _gumbel(values)
    rate = -math.expm1(-math.exp(-(threshold - location) / scale))  # 1 − exp(−exp(−z)), exact near 0
    above = int((values >= threshold).sum())
    return FalseAlarms(float(threshold), rate, above, int(values.size), *_interval(above, int(values.size)), held_out)


def threshold_for(scores: np.ndarray | tuple[float, ...], rate: float) -> float:
    """The threshold at which the fitted share of good parts flagged is ``rate``."""
    values = np.asarray(scores, dtype=np.float64)
    if values.size < 2:
        raise EgbadError("this checkpoint keeps no good images' scores to set a threshold by its false-alarm "
                         "rate (it was written before they were kept); train it again, or give the threshold.")
    location, scale = _gumbel(values)
    return location - scale * math.log(-math.log1p(-rate))


def parse_rate(text: str) -> FalseAlarmRate:
    """'1/400', '1 in 400', '0.25%' or '0.0025' as a rate; a plain sentence where it is none."""
    cleaned = text.strip().lower().replace(",", "")
    try:
        if match := re.fullmatch(r"(\d+(?:\.\d+)?)\s*(?:/|in)\s*(\d+(?:\.\d+)?)", cleaned):
            rate = float(match[1]) / float(match[2])
        elif cleaned.endswith("%"):
            rate = float(cleaned[:-1]) / 100
        else:
            rate = float(cleaned)
    except (ValueError, ZeroDivisionError):
        rate = float("nan")
    if not 0 < rate < 1:
        raise EgbadError(f"the false-alarm rate {text!r} is not a share of good parts between 0 and 1 "
                         "(for example 1/400, 0.25% or 0.0025).")
    return FalseAlarmRate(rate)
