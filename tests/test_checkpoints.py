import os
import pickle

import pytest
import torch

from conftest import TINY, write_mnist_csv
from egbad_core.model.checkpoints import FORMAT, load_checkpoint, save_checkpoint
from egbad_core.config import replace
from egbad_core.data.sources import DataSource
from egbad_core.data.loading import load_training_set
from egbad_core.errors import EgbadError
from egbad_core.train.trainer import Trainer


class _Payload:
    """Unpickling this runs os.system: the classic malicious checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_would_run_code_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "payload": _Payload(marker)}, path)
    with pytest.raises(EgbadError, match="could run code"):
        load_checkpoint(path)
    assert not marker.exists()
    with open(tmp_path / "plain.pkl", "wb") as handle:
        pickle.dump(_Payload(marker), handle)
    with pytest.raises(EgbadError):
        load_checkpoint(tmp_path / "plain.pkl")
    assert not marker.exists()


def test_truncated_empty_and_foreign_files_are_refused(tiny_checkpoint, tmp_path):
    data = tiny_checkpoint.read_bytes()
    (tmp_path / "half.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "text.pt").write_text("hello")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    for name, message in [("half.pt", "truncated"), ("empty.pt", "empty"), ("text.pt", "not an EGBAD"), ("other.pt", "not an EGBAD")]:
        with pytest.raises(EgbadError, match=message) as error:
            load_checkpoint(tmp_path / name)
        assert name in str(error.value)


def _rewrite(source, target, **changes):
    payload = torch.load(source, weights_only=True)
    payload.update(changes)
    torch.save(payload, target)


def test_newer_format_and_other_architectures_are_refused_by_name(tiny_checkpoint, tmp_path):
    _rewrite(tiny_checkpoint, tmp_path / "new.pt", format_version=99)
    with pytest.raises(EgbadError, match="format version 99"):
        load_checkpoint(tmp_path / "new.pt")
    _rewrite(tiny_checkpoint, tmp_path / "arch.pt", architecture="ganomaly")
    with pytest.raises(EgbadError, match="'ganomaly'"):
        load_checkpoint(tmp_path / "arch.pt")


def test_weights_of_another_shape_are_refused(tiny_checkpoint, tmp_path):
    payload = torch.load(tiny_checkpoint, weights_only=True)
    payload["meta"] = payload["meta"].replace('"width": 8', '"width": 16')
    torch.save(payload, tmp_path / "shape.pt")
    with pytest.raises(EgbadError, match="does not match"):
        load_checkpoint(tmp_path / "shape.pt")


def test_saving_leaves_no_temp_file_and_replaces_atomically(tiny_checkpoint, tmp_path):
    checkpoint = load_checkpoint(tiny_checkpoint)
    target = tmp_path / "m.pt"
    target.write_text("old")
    save_checkpoint(target, checkpoint)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]
    assert load_checkpoint(target).epoch == checkpoint.epoch


def test_a_failed_save_keeps_the_old_file(tiny_checkpoint, tmp_path, monkeypatch):
    checkpoint = load_checkpoint(tiny_checkpoint)
    target = tmp_path / "m.pt"
    save_checkpoint(target, checkpoint)
    before = target.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(EgbadError, match="m.pt could not be written: No space left on device"):
        save_checkpoint(target, checkpoint)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_two_epochs_then_two_more_equal_four_straight(tmp_path):
    csv = write_mnist_csv(tmp_path / "d.csv", [7, 8] * 10)
    data = load_training_set(DataSource.parse(str(csv)), 16)
    four = replace(TINY, train=replace(TINY.train, epochs=4))
    straight = Trainer(data, four)
    list(straight.run())
    two = Trainer(data, replace(TINY, train=replace(TINY.train, epochs=2)), checkpoint_path=tmp_path / "two.pt")
    list(two.run())
    resumed = Trainer.resume(load_checkpoint(tmp_path / "two.pt"), data, epochs=4)
    events = list(resumed.run())
    assert events[-1].epochs_done == 4
    for name, module in straight.networks.items():
        for (key, a), b in zip(module.state_dict().items(), resumed.networks[name].state_dict().values()):
            assert torch.equal(a, b), f"{name}.{key}"
    assert len(resumed.history.iteration_losses) == len(straight.history.iteration_losses)


def test_a_checkpoint_from_before_the_reference_scores_with_egbads_own_terms(tmp_path, tiny_checkpoint):
    """Checkpoints written before the score options existed carry neither the options nor a
    reference: they load with the seed's score, and detection works without a reference."""
    import json

    import numpy as np

    from egbad_core.data.loading import load_test_set
    from egbad_core.run.scoring import run_detection

    payload = torch.load(tiny_checkpoint, weights_only=True)
    meta = json.loads(payload["meta"])
    meta["score"] = {"lam": 0.1, "batch_size": 16, "anogan_steps": 500, "anogan_lr": 0.05}
    payload["meta"] = json.dumps(meta)
    payload.pop("reference", None)
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    checkpoint = load_checkpoint(old)
    assert checkpoint.reference is None and checkpoint.settings.score.discrimination == "pair"
    assert not checkpoint.settings.score.needs_reference
    csv = write_mnist_csv(tmp_path / "d.csv", [7, 8, 2] * 4)
    images = load_test_set(DataSource.parse(str(csv), normal_labels="7,8"), 16, 1)
    detection = run_detection(checkpoint, images, "egbad", threshold="f1")
    scores = detection.scores
    assert np.allclose(scores.score, 0.9 * scores.residual + 0.1 * scores.discrimination)


def test_a_damaged_score_reference_is_refused_by_name(tmp_path, tiny_checkpoint):
    payload = torch.load(tiny_checkpoint, weights_only=True)
    assert "reference" in payload  # the tiny preset scores like the default
    payload["reference"]["residual_mean"] = torch.zeros(3, 5, 5)
    damaged = tmp_path / "damaged.pt"
    torch.save(payload, damaged)
    with pytest.raises(EgbadError, match="damaged.pt holds a damaged score reference"):
        load_checkpoint(damaged)
