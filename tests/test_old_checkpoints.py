"""Checkpoints written before the engine moved into subpackages load and score to the same numbers
(tests/data/README.md says how they were made): the networks as an nn.ModuleDict, the scoring copy
through remove_parametrizations and the settings as one Preset changed nothing a user has on disk."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from egbad_core.events import run_to_end
from egbad_core.model.checkpoints import load_checkpoint, save_checkpoint
from egbad_core.config import replace
from egbad_core.score.method import scores_task

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "old_scores.json").read_text())
INPUTS = torch.load(DATA / "old_inputs.pt", weights_only=True)


def scored(checkpoint, kind, method):
    config = replace(checkpoint.settings.score, anogan_steps=5)
    return run_to_end(scores_task(checkpoint, INPUTS[kind], method, config, True))


@pytest.mark.parametrize("kind, method", [("whole", "egbad"), ("whole", "anogan"), ("patch", "egbad")])
def test_an_old_checkpoint_scores_as_it_did(kind, method):
    checkpoint = load_checkpoint(DATA / f"old_{kind}.pt")
    scores = scored(checkpoint, kind, method)
    expected = EXPECTED[f"{kind}_{method}"]
    for term in ("score", "residual", "discrimination"):
        np.testing.assert_allclose(getattr(scores, term), expected[term], rtol=1e-4, atol=1e-5)
    assert float(scores.residual_maps.sum()) == pytest.approx(expected["map_sum"], rel=1e-4)
    if kind == "patch":
        assert scores.worst_places.tolist() == expected["places"]


@pytest.mark.parametrize("kind", ["whole", "patch"])
def test_an_old_checkpoint_keeps_its_settings_and_statistics_through_a_save(kind, tmp_path):
    old = load_checkpoint(DATA / f"old_{kind}.pt")
    assert old.settings.model == old.networks.config
    stats = old.train_stats.__dict__
    assert {k: stats[k] for k in EXPECTED["train_stats"][kind]} == pytest.approx(EXPECTED["train_stats"][kind])
    assert old.train_stats.scores == () and not old.train_stats.held_out  # written before the scores were kept
    again = load_checkpoint(save_checkpoint(tmp_path / "again.pt", old))
    assert again.settings == old.settings
    np.testing.assert_array_equal(scored(again, kind, "egbad").score, scored(old, kind, "egbad").score)
