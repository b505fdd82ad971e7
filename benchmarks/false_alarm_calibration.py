"""Is the false-alarm rate a checkpoint promises the one its good parts see? (issue 21)

A threshold set by rate (``--false-alarm-rate 1/N``) is fitted to the good-image scores a checkpoint
keeps: a patch model's reference images held out of its banks, a whole-image model's training
images each left out of its own nearest search. This scores a source's test images and, for each
asked rate, prints the rate fitted (with its 95% interval) beside the share of the good test
images that reach the threshold.

    python benchmarks/false_alarm_calibration.py CKPT SOURCE [CKPT SOURCE ...]
"""

from __future__ import annotations

import json
import sys

import numpy as np

from egbad_core import session
from egbad_core.events import run_to_end
from egbad_core.score.false_alarms import false_alarms, threshold_for

RATES = (0.2, 0.1, 0.05, 0.02, 0.01)


def calibration(checkpoint_path: str, source: str) -> dict:
    checkpoint = session.load_checkpoint(checkpoint_path)
    detection = run_to_end(session.detect(session.ScoreRequest(checkpoint, threshold="f1"), session.parse_source(source)))
    good = detection.scores.score[~detection.images.is_defect]
    stats = checkpoint.train_stats
    rows = []
    for rate in RATES:
        threshold = threshold_for(stats.scores, rate)
        fitted = false_alarms(stats.scores, threshold, stats.held_out)
        rows.append({"asked": rate, "fitted": round(fitted.rate, 4), "interval_95": [round(fitted.low, 4), round(fitted.high, 4)],
                     "observed": round(float(np.mean(good >= threshold)), 4), "observed_count": int(np.sum(good >= threshold))})
    return {"checkpoint": checkpoint_path, "source": source, "held_out": stats.held_out, "fitted_to": stats.count,
            "good_test_images": int(len(good)), "rates": rows}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or len(argv) % 2:
        print(__doc__)
        return 2
    for checkpoint_path, source in zip(argv[::2], argv[1::2]):
        found = calibration(checkpoint_path, source)
        print(json.dumps(found))
        print(f"{source}: fitted to {found['fitted_to']} {'held-out' if found['held_out'] else 'training'} images, "
              f"{found['good_test_images']} good test images")
        for row in found["rates"]:
            low, high = row["interval_95"]
            print(f"  asked 1 in {1 / row['asked']:.0f}: fitted {row['fitted']:.3f} (95% {low:.3f}–{high:.3f}), "
                  f"observed {row['observed']:.3f} ({row['observed_count']}/{found['good_test_images']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
