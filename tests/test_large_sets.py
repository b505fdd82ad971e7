"""Large image sets: uint8 holding, worker decoding, chunked scoring with rows written as they go,
checkpoints rationed, references from a bounded sample."""

from __future__ import annotations

import csv
import os
import time

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, write_folder
from egbad_core.data import decoding as data_module
from egbad_core.run import streaming
from egbad_core.run.scoring import ScoreRequest
from egbad_core.train import trainer as training
from egbad_core.model.checkpoints import load_checkpoint
from egbad_core.config import Normalisation, replace
from egbad_core.data.sources import DataSource
from egbad_core.data.decoding import decoded
from egbad_core.data.folders import list_folder
from egbad_core.data.loading import load_test_set, load_training_set
from egbad_core.events import EpochEvent, ProgressEvent, run_to_end
from egbad_core.train.trainer import Trainer


@pytest.fixture(scope="module")
def folder_model(tmp_path_factory):
    """A tiny model trained on a tiny image folder, and that folder (12 train, 4 good, 4 spot test)."""
    root = write_folder(tmp_path_factory.mktemp("large") / "parts", train=12, good=10, defects=10)
    source = DataSource.parse(str(root))
    trainer = Trainer(load_training_set(source, 16), TINY, checkpoint_path=root.parent / "m.pt",
                      data_info={"normal_labels": ["good"]})
    run_to_end(trainer.run())
    return root, load_checkpoint(root.parent / "m.pt")


def test_folder_images_are_held_as_uint8_and_normalise_as_the_float_pixels_did(image_folder):
    images = load_training_set(DataSource.parse(str(image_folder)), 16)
    assert images.pixels.dtype == torch.uint8 and images.pixels.shape == (12, 1, 16, 16)
    norm = Normalisation(0.5, 0.25)
    expected = (images.pixels.float() / 255.0 - 0.5) / 0.25
    assert torch.allclose(norm.apply(images.pixels), expected, atol=1e-6)
    assert images.unit(0).dtype == np.float32 and 0.0 <= images.unit(0).min() and images.unit(0).max() <= 1.0


def test_worker_decoding_gives_the_same_pixels_in_the_same_order(image_folder):
    listing = list_folder({"good": image_folder / "train/good"}, image_folder, frozenset({"good"}))
    alone = list(decoded(listing.files, 16, workers=0))
    parallel = list(decoded(listing.files, 16, workers=2))
    assert [item[0] for item in parallel] == list(range(len(listing.files)))
    for a, b in zip(alone, parallel):
        assert np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_a_worker_that_dies_costs_only_its_file(image_folder, monkeypatch):
    listing = list_folder({"good": image_folder / "train/good"}, image_folder, frozenset({"good"}))
    doomed = listing.files[5][1]
    parent = os.getpid()
    real = data_module.decode_image

    def crashing(path, size, own=None, scale=0.0):
        if path == doomed and os.getpid() != parent:
            os._exit(1)  # as a decoder's segfault would: no exception, the process is gone
        return real(path, size, own, scale)

    monkeypatch.setattr(data_module, "decode_image", crashing)
    results = list(decoded(listing.files, 16, workers=2))
    assert [item[0] for item in results] == list(range(len(listing.files)))
    problems = {item[0]: item[3] for item in results if item[3] is not None}
    assert list(problems) == [5] and "crashed" in problems[5]


def _decodes_ahead(image_folder, tmp_path, monkeypatch, shape) -> int:
    """How many files the workers have decoded while the caller still holds the first one."""
    files = list_folder({"good": image_folder / "train/good"}, image_folder, frozenset({"good"})).files
    files = (files * 3)[:30]
    record = tmp_path / f"decoded-{shape}.txt"
    real = data_module.decode_image

    def counted(path, size, own=None, scale=0.0):
        with open(record, "a") as out:  # the workers are forked: they count in a file
            out.write("x")
        return real(path, size, own, scale)

    monkeypatch.setattr(data_module, "decode_image", counted)
    items = decoded(files, 16, workers=2, shape=shape)
    next(items)
    time.sleep(1.5)  # the workers decode what they may ahead of the caller meanwhile
    count = len(record.read_text())
    items.close()
    return count


def test_photos_are_decoded_a_few_ahead_not_a_queue_of_them(image_folder, tmp_path, monkeypatch):
    """Small images are decoded 8 a batch, 4 batches ahead a worker; photos one at a time, two
    ahead: 64 photos of 12 MP in flight had been 2.4 GB beside the scoring."""
    assert _decodes_ahead(image_folder, tmp_path, monkeypatch, None) > 8
    assert _decodes_ahead(image_folder, tmp_path, monkeypatch, 1.0) <= 2 * 2 + 2  # two ahead a worker, one in hand each


def _rows(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def test_detect_writes_each_chunks_rows_as_it_is_scored_then_the_whole_file(folder_model, tmp_path, monkeypatch):
    root, checkpoint = folder_model
    monkeypatch.setattr(streaming, "CHUNK", 8)
    out = tmp_path / "out"
    task = streaming.streaming_detection_task(ScoreRequest(checkpoint, threshold="f1"), DataSource.parse(str(root)), out)
    seen = {}
    for event in task:
        if isinstance(event, ProgressEvent) and event.what == "scoring" and event.done in (8, 16):
            seen[event.done] = len(_rows(out / "scores.csv"))  # the last word at each count
    assert seen == {8: 8, 16: 16}  # each chunk's rows were on disk while the rest was being scored
    rows = _rows(out / "scores.csv")
    assert len(rows) == 20 and {"flagged", "is_defect", "worst_row"} <= set(rows[0])
    whole = run_to_end(streaming.streaming_detection_task(ScoreRequest(checkpoint), DataSource.parse(str(root)), tmp_path / "again"))
    in_memory = run_to_end(_detect_in_memory(checkpoint, root))
    assert whole["n_images"] == 20 and whole["auroc"] == pytest.approx(in_memory.summary()["auroc"])
    assert [r["score"] for r in _rows(tmp_path / "again/scores.csv")] == [r["score"] for r in rows]


def _detect_in_memory(checkpoint, root):
    from egbad_core.session import detect

    return detect(ScoreRequest(checkpoint), DataSource.parse(str(root)))


def test_a_stopped_detect_keeps_the_rows_it_scored(folder_model, tmp_path, monkeypatch):
    import threading

    root, checkpoint = folder_model
    monkeypatch.setattr(streaming, "CHUNK", 8)
    stop = threading.Event()
    out = tmp_path / "out"
    for event in streaming.streaming_detection_task(ScoreRequest(checkpoint), DataSource.parse(str(root)), out, stop=stop):
        if isinstance(event, ProgressEvent) and event.what == "scoring" and event.done == 8:
            stop.set()
    assert len(_rows(out / "scores.csv")) == 8
    assert not (out / "summary.json").exists()


def test_files_added_while_scoring_are_named_not_scored(folder_model, tmp_path, monkeypatch):
    root, checkpoint = folder_model
    monkeypatch.setattr(streaming, "CHUNK", 8)
    summary = run_to_end(_with_late_file(checkpoint, root, tmp_path / "late"))
    assert summary["n_images"] == 20  # scored as listed at the start
    assert "1 added" in summary["folder_changes"] and "late.png" in summary["folder_changes"]


def _with_late_file(checkpoint, root, out):
    """The detect task, with a file dropped into the folder after the first chunk."""
    task = streaming.streaming_detection_task(ScoreRequest(checkpoint), DataSource.parse(str(root)), out)
    late = root / "test/good/late.png"
    try:
        while True:
            try:
                event = next(task)
            except StopIteration as end:
                return end.value
            if isinstance(event, ProgressEvent) and event.what == "scoring" and event.done == 8 and not late.exists():
                Image.new("L", (40, 30), 100).save(late)
            yield event
    finally:
        late.unlink(missing_ok=True)


def test_checkpoints_along_the_way_are_rationed_the_last_always_written(tmp_path, monkeypatch, mnist_csv):
    train_set = load_training_set(DataSource.parse(str(mnist_csv), normal_labels="7,8"), 16)
    preset = replace(TINY, train=replace(TINY.train, epochs=4))
    monkeypatch.setattr(training, "CHECKPOINT_SHARE", 1e-9)  # writing one costs more than any training
    events = list(Trainer(train_set, preset, checkpoint_path=tmp_path / "a.pt").run())
    written = [e.checkpoint is not None for e in events if isinstance(e, EpochEvent)]
    assert written == [False, False, False, True]  # the first one's cost estimated, not paid
    monkeypatch.setattr(training, "CHECKPOINT_SHARE", 1e9)
    events = list(Trainer(train_set, preset, checkpoint_path=tmp_path / "b.pt").run())
    assert all(e.checkpoint for e in events if isinstance(e, EpochEvent))


def test_the_reference_is_made_of_a_bounded_sample(tmp_path, monkeypatch, mnist_csv):
    from egbad_core.score import whole_reference as reference

    monkeypatch.setattr(reference, "MEMORY_IMAGES", 10)
    train_set = load_training_set(DataSource.parse(str(mnist_csv), normal_labels="7,8"), 16)
    trainer = Trainer(train_set, TINY, checkpoint_path=tmp_path / "m.pt")
    run_to_end(trainer.run())
    checkpoint = load_checkpoint(tmp_path / "m.pt")
    assert len(train_set) == 16 and checkpoint.reference.features.shape[0] == 10 and checkpoint.train_stats.count == 10
    test = load_test_set(DataSource.parse(str(mnist_csv), normal_labels="7,8"), 16, 1)
    from egbad_core.run.scoring import run_detection

    assert np.isfinite(run_detection(checkpoint, test, threshold="p99").scores.score).all()


def test_pictures_beyond_the_budget_are_made_again_when_drawn(folder_model, monkeypatch):
    from egbad_core.run import scoring as detection_module
    from egbad_core.run.scoring import run_detection
    from egbad_core.run.grid import render_grid

    root, checkpoint = folder_model
    images = load_test_set(DataSource.parse(str(root)).with_normal_labels(("good",)), 16, 1)
    kept = run_detection(checkpoint, images)
    monkeypatch.setattr(detection_module, "PICTURE_BUDGET", 0)
    lean = run_detection(checkpoint, images)
    assert lean.scores.reconstructions is None and lean.scores.residual_maps is None
    assert np.array_equal(lean.scores.score, kept.scores.score)
    recon, maps = lean.pictures([3, 0])
    assert np.allclose(recon, kept.scores.reconstructions[[3, 0]], atol=1e-6)
    assert np.allclose(maps, kept.scores.residual_maps[[3, 0]], atol=1e-5)
    assert lean.map_range()[1] == pytest.approx(kept.map_range()[1], rel=0.2)  # from a sample of the maps
    assert render_grid(lean).size == render_grid(kept).size


def test_the_window_draws_a_lean_detections_detail_by_scoring_the_image_again(folder_model, monkeypatch, qtbot):
    pytest.importorskip("pytestqt")
    from egbad_core.run import scoring as detection_module
    from egbad_core.run.scoring import run_detection
    from egbad_gui.detection_view import DetectionView

    root, checkpoint = folder_model
    images = load_test_set(DataSource.parse(str(root)).with_normal_labels(("good",)), 16, 1)
    monkeypatch.setattr(detection_module, "PICTURE_BUDGET", 0)
    lean = run_detection(checkpoint, images)
    remade = []
    original = lean.remake
    lean.remake = lambda rows: remade.append(list(rows)) or original(rows)
    view = DetectionView()
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    view.show_detection(lean)
    first = view.model.image_row(0)
    assert remade and remade[-1] == [first]  # the selected row's pictures, made again
    assert view._tile(first).shape[1] == 16  # a thumbnail: the image alone, nothing scored again
    assert view._tile(first, remake=True).shape[1] == 3 * 16 + 4  # the detail: image | reconstruction | map
