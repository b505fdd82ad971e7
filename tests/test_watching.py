"""Live inspection: images scored as they land in a watched folder (issue 21)."""

import csv
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from conftest import digit_like, read_until
from egbad_core import session
from egbad_core.events import InspectedEvent, NoteEvent, run_to_end
from egbad_core.run.watching import Arrivals

SETTLE = 0.1


def _digit(path, label, seed=0):
    Image.fromarray(digit_like(label, np.random.default_rng(seed))).save(path)


class _Watch:
    """watch_task in a thread; what it said, as it says it."""

    def __init__(self, checkpoint, plan, threshold=None):
        self.events, self.stop = [], threading.Event()
        request = session.ScoreRequest(session.load_checkpoint(checkpoint), threshold=threshold)
        self.thread = threading.Thread(target=lambda: self.events.append(
            ("done", run_to_end(session.watch_task(request, plan, self.stop), self.events.append))))
        self.thread.start()

    def wait_for(self, condition, timeout=60.0):
        deadline = time.monotonic() + timeout
        while not condition(self.events):
            assert time.monotonic() < deadline, f"not met in {timeout} s: {self.events}"
            assert self.thread.is_alive(), f"the watch ended: {self.events}"
            time.sleep(0.02)

    def close(self):
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()
        return self.events[-1][1]


def _scored(events):
    return [e.image_id for e in events if isinstance(e, InspectedEvent)]


def _notes(events):
    return [e.message for e in events if isinstance(e, NoteEvent)]


def test_images_are_scored_as_they_land_and_a_restart_scores_only_the_new(tiny_checkpoint, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "in" / "inspected"
    folder.mkdir()
    _digit(folder / "before.png", 7)  # there before the watch began: scored too
    plan = session.WatchPlan(folder, out, tmp_path / "maps", tmp_path / "flagged", settle=SETTLE)
    watch = _Watch(tiny_checkpoint, plan, threshold=0.0)  # every image flagged: the copies are made
    watch.wait_for(lambda events: _scored(events) == ["before.png"])
    _digit(folder / "a.png", 8, 1)
    (folder / "notes.txt").write_text("not an image")
    (folder / "half.png").write_bytes((folder / "a.png").read_bytes()[:60])  # a writer that stalls, then ends
    watch.wait_for(lambda events: "a.png" in _scored(events) and any("half.png cannot be decoded" in n for n in _notes(events)))
    _digit(folder / "half.png", 2, 2)  # written again, whole: read anew
    watch.wait_for(lambda events: "half.png" in _scored(events))
    assert watch.close() == (3, 3)
    notes = _notes(watch.events)
    assert notes[0].startswith(f"Watching {folder}; rows go to {out / 'scores.csv'}. Flagging at a score of 0 (manual)") and "notes.txt is not an image file: skipped." in notes
    with open(out / "scores.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["id"] for row in rows] == ["before.png", "a.png", "half.png"] and all(r["flagged"] == "True" for r in rows)
    assert sorted(p.name for p in (tmp_path / "flagged").iterdir()) == ["a.png", "before.png", "half.png"]
    assert len(list((tmp_path / "maps").glob("*.npy"))) == 3
    events = [e for e in watch.events if isinstance(e, InspectedEvent)]
    assert all(SETTLE <= e.latency < 30 for e in events) and all(e.worst is not None for e in events)

    _digit(folder / "later.png", 7, 3)  # landed while no watch ran
    again = _Watch(tiny_checkpoint, plan)
    again.wait_for(lambda events: _scored(events) == ["later.png"])
    time.sleep(5 * SETTLE)
    assert again.close()[0] == 1 and _scored(again.events) == ["later.png"]  # nothing scored twice
    assert len((out / "scores.csv").read_text().splitlines()) == 5  # one header, four rows


def test_a_file_still_being_written_waits_until_it_stops_changing(tmp_path):
    arrivals = Arrivals(tmp_path, set(), settle=0.2)
    path = tmp_path / "part.png"
    path.write_bytes(b"x" * 10)
    assert arrivals.ready() == ([], [])  # first seen
    time.sleep(0.12)
    with open(path, "ab") as stream:
        stream.write(b"y" * 10)  # still growing: its clock starts again
    assert arrivals.ready()[0] == []
    time.sleep(0.12)
    assert arrivals.ready()[0] == []  # 0.12 s unchanged: not yet
    time.sleep(0.12)
    assert arrivals.ready()[0] == [path]


def test_a_folder_that_goes_away_is_waited_for(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    arrivals = Arrivals(folder, set(), settle=0.0)
    folder.rmdir()
    assert arrivals.ready() == ([], [f"{folder} is gone; waiting for it to come back."])
    assert arrivals.ready() == ([], [])  # said once
    folder.mkdir()
    assert arrivals.ready() == ([], [f"{folder} is back; watching it again."])


def test_egbad_watch_prints_a_line_per_image_and_stops_on_ctrl_c(tiny_checkpoint, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    child = subprocess.Popen([sys.executable, "-m", "egbad_core.cli", "watch", str(folder), "--checkpoint",
                              str(tiny_checkpoint), "--settle", "0.1", "--device", "cpu"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "Ctrl-C to stop" in read_until(child.stderr, "Watching")[-1]
        _digit(folder / "one.png", 2)
        line = child.stdout.readline()
        assert line.startswith("one.png\t") and ("FLAGGED" in line or "\tok\t" in line) and "score" in line
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0 and "1 image scored" in err and "Traceback" not in err


def test_a_missing_folder_is_one_sentence_and_exit_2(tiny_checkpoint, tmp_path, capsys):
    from egbad_core.cli import main

    assert main(["watch", str(tmp_path / "nowhere"), "--checkpoint", str(tiny_checkpoint)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere is not a folder to watch" in err[0]


def _video(path, frames=6):
    cv2 = pytest.importorskip("cv2")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (64, 64))
    assert writer.isOpened()
    for i in range(frames):
        digit = np.kron(digit_like(7 if i % 2 else 2, np.random.default_rng(i)), np.ones((2, 2), np.uint8))  # 56 px
        frame = np.zeros((64, 64, 3), np.uint8)
        frame[4:60, 4:60] = digit[:, :, None]
        writer.write(frame)
    writer.release()
    return path


def test_a_video_is_scored_frame_by_frame_and_a_restart_skips_the_frames_scored(tiny_checkpoint, tmp_path):
    video = _video(tmp_path / "line.avi")
    plan = session.WatchPlan(tmp_path, tmp_path / "out", flagged_to=tmp_path / "flagged")
    request = session.ScoreRequest(session.load_checkpoint(tiny_checkpoint), threshold=0.0)
    events = []
    assert run_to_end(session.video_task(request, str(video), plan, every=2), events.append) == (3, 3)
    assert _scored(events) == ["line-frame000001", "line-frame000003", "line-frame000005"]
    assert _notes(events)[-1] == f"{video} ended after 6 frames."
    assert sorted(p.name for p in (tmp_path / "flagged").iterdir())[0] == "line-frame000001.png"
    assert run_to_end(session.video_task(request, str(video), plan)) == (3, 3)  # only the three not scored yet
    assert len((tmp_path / "out" / "scores.csv").read_text().splitlines()) == 7


def test_a_video_source_that_cannot_be_opened_is_one_sentence(tiny_checkpoint, tmp_path, capsys):
    pytest.importorskip("cv2")
    from egbad_core.cli import main

    assert main(["watch", "--video", str(tmp_path / "nope.avi"), "--checkpoint", str(tiny_checkpoint)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.avi cannot be opened" in err[0]
