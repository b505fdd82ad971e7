"""The task protocol (events) and the pictures both faces draw."""

import threading

import numpy as np

from egbad_core.events import ProgressEvent, Throttle, run_to_end, stopped
from egbad_core.pictures import colour_bar, heatmap, overlay, to_rgb8, triptych


def counting(total: int, stop: threading.Event | None = None):
    for done in range(1, total + 1):
        if stopped(stop):
            return None
        yield ProgressEvent("counting", done, total)
    return total * 10


def test_run_to_end_hands_out_every_event_and_returns_the_tasks_result():
    seen = []
    assert run_to_end(counting(3), seen.append) == 30
    assert [e.done for e in seen] == [1, 2, 3]


def test_a_stop_is_honoured_at_the_next_yield():
    stop = threading.Event()
    task = counting(5, stop)
    assert next(task).done == 1
    stop.set()
    assert run_to_end(task) is None


def test_the_throttle_lets_the_last_report_through_whatever_the_interval():
    throttle = Throttle(interval_s=3600)
    assert throttle.ready(1, 10)  # the first
    assert not throttle.ready(2, 10)
    assert throttle.ready(10, 10)  # the last, always


def test_heatmaps_run_dark_to_bright_and_share_a_top():
    maps = np.array([[[0.0, 1.0], [2.0, 4.0]]])
    drawn = heatmap(maps, top=2.0)
    assert drawn.shape == (1, 2, 2, 3) and drawn.dtype == np.uint8
    assert drawn[0, 0, 0].sum() < drawn[0, 0, 1].sum() < drawn[0, 1, 0].sum()
    assert (drawn[0, 1, 0] == drawn[0, 1, 1]).all()  # at and beyond the top: the same brightest colour


def test_an_overlay_is_clear_below_low_and_coloured_above_high():
    image = np.full((2, 2, 3), 100, np.uint8)
    drawn = overlay(image, np.array([[0.0, 0.0], [5.0, 10.0]]), low=1.0, high=5.0)
    assert (drawn[0] == 100).all() and not (drawn[1] == 100).all()


def test_a_triptych_is_real_reconstruction_and_map_side_by_side():
    gray = np.zeros((1, 8, 8))
    tile = triptych(gray, gray + 1, np.ones((8, 8)), top=1.0)
    assert tile.shape == (8, 3 * 8 + 4, 3)
    assert (tile[:, :8] == 0).all() and (tile[:, 10:18] == 255).all()
    assert to_rgb8(np.ones((3, 2, 2))).shape == (2, 2, 3)
    bar = colour_bar(20, 4)
    assert bar.shape == (20, 4, 3) and bar[0].sum() > bar[-1].sum()
