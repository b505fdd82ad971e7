"""The one task protocol, and the window's tasks run without a window."""

import threading

import numpy as np
import pytest
import torch

from conftest import TINY, write_mnist_csv
from egbad_core import session
from egbad_core.events import EpochEvent, FinishedEvent, IterationEvent, ProgressEvent, run_to_end
from egbad_gui import tasks


def events_and_result(task):
    seen = []
    result = run_to_end(task, seen.append)
    return seen, result


def test_loss_batches_keep_every_loss_in_order_and_let_other_events_through():
    def fake_run():
        for i in range(5):
            yield IterationEvent(1, i + 1, 5, i + 1, float(i), 0.0, 0.0, 1.0, 1.0)
        yield EpochEvent(1, 1, 2.0, 0.0, 0.0, 1.0, 1.0, 0.0, None)
        yield IterationEvent(2, 1, 5, 6, 5.0, 0.0, 0.0, 1.0, 1.0)
        return "result"

    seen, result = events_and_result(tasks.batched_losses(fake_run(), interval_s=3600))
    assert result == "result"
    assert [type(e).__name__ for e in seen] == ["LossBatch", "EpochEvent", "LossBatch"]
    assert seen[0].losses[:, 0].tolist() == [0, 1, 2, 3, 4] and seen[0].latest.batch == 5
    assert seen[2].losses[:, 0].tolist() == [5.0]


def test_the_train_task_runs_without_a_window_and_returns_the_written_checkpoint(tmp_path, monkeypatch):
    from egbad_core import config

    monkeypatch.setitem(config.PRESETS, "default", TINY)
    csv = write_mnist_csv(tmp_path / "d.csv", [7, 8] * 8)
    data = run_to_end(tasks.load_data({"data": str(csv)}, TINY.model.image_size, None, 0.0, threading.Event()))
    path = str(tmp_path / "m.pt")
    seen, (finished, written) = events_and_result(
        tasks.train(data, path, TINY, None, threading.Event()))
    assert type(seen[0]).__name__ == "DeviceEvent" and "CPU" in seen[0].device
    assert finished.reason == "completed" and finished.checkpoint == path
    assert written.epoch == 1 and len(written.iteration_losses) == sum(len(e.losses) for e in seen
                                                                        if isinstance(e, tasks.LossBatch))


def test_loading_scoring_and_training_honour_a_stop_the_same_way(tmp_path, image_folder, tiny_checkpoint):
    stop = threading.Event()
    stop.set()
    assert run_to_end(session.load_data({"data": str(image_folder)}, 16, None, stop)) is None
    checkpoint = session.load_checkpoint(tiny_checkpoint)
    csv = write_mnist_csv(tmp_path / "d.csv", [7, 8, 2] * 4)
    source = session.parse_source(str(csv), normal_labels="7,8")
    assert run_to_end(session.detect(session.ScoreRequest(checkpoint), source, stop=stop)) is None
    trainer = session.make_trainer(source, None, TINY)
    seen, finished = events_and_result(session.training(trainer, stop))
    assert finished.reason == "stopped" and isinstance(seen[-1], FinishedEvent)


def test_scoring_reports_progress_batch_by_batch(tiny_checkpoint, tmp_path):
    checkpoint = session.load_checkpoint(tiny_checkpoint)
    csv = write_mnist_csv(tmp_path / "d.csv", [7, 8, 2] * 12)
    source = session.parse_source(str(csv), normal_labels="7,8")
    config = session.score_settings(checkpoint, batch_size=10)
    seen, detection = events_and_result(session.detect(session.ScoreRequest(checkpoint, config=config), source))
    progress = [(e.done, e.total) for e in seen if isinstance(e, ProgressEvent)]
    assert progress == [(10, 36), (20, 36), (30, 36), (36, 36)]
    assert len(detection.scores) == 36


def test_torchvisions_resize_gives_the_hand_written_resize_numbers():
    from torch.nn import functional as F

    from egbad_core.data.csv_files import resize_tensor as _resize_tensor

    images = torch.rand(5, 1, 28, 28)
    before = F.interpolate(images, size=(32, 32), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    torch.testing.assert_close(_resize_tensor(images, 32), before, rtol=0, atol=1e-6)
    assert np.isclose(float(_resize_tensor(images, 16).mean()), float(images.mean()), atol=0.02)


def test_the_default_checkpoint_name_is_the_same_for_both_faces(tmp_path):
    demo = session.parse_source("demo")
    assert session.default_checkpoint_path(demo, tmp_path).name.startswith("demo-")
    csv = write_mnist_csv(tmp_path / "parts.v2.csv", [7, 8])
    name = session.default_checkpoint_path(session.parse_source(str(csv)), tmp_path).name
    assert name.startswith("parts.v2-") and name.endswith(".pt")


@pytest.mark.parametrize("what", ["grid", "csv", "summary"])
def test_the_export_task_writes_its_file(tiny_checkpoint, tmp_path, what):
    checkpoint = session.load_checkpoint(tiny_checkpoint)
    csv = write_mnist_csv(tmp_path / "d.csv", [7, 8, 2] * 2)
    detection = run_to_end(session.detect(session.ScoreRequest(checkpoint), session.parse_source(str(csv), normal_labels="7,8")))
    path = tmp_path / f"out.{what}"
    assert run_to_end(tasks.export(detection, what, str(path), False, threading.Event())) == str(path)
    assert path.stat().st_size > 0
