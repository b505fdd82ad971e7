"""The line term (score/lines.py): thin straight lines on a fine grain."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from egbad_core.config import PATCH_PRESET, ScoreConfig, replace
from egbad_core.errors import EgbadError
from egbad_core.score import lines


def test_the_frequency_domain_product_is_the_mirrored_convolution():
    x = torch.rand(2, 3, 41, 37)
    kernels = lines.ridge_kernels(15)
    direct = F.conv2d(F.pad(x.mean(dim=1, keepdim=True), (7, 7, 7, 7), mode="reflect"), kernels[:, None])
    assert torch.allclose(lines.line_responses(x, 15), direct, atol=1e-5)
    assert kernels.sum(dim=(1, 2)).abs().max() < 1e-5  # a flat surface answers nothing
    assert lines.line_responses(torch.rand(1, 1, 10, 10), 31).abs().max() == 0  # too small for lines that long


def _scratched(rng: np.random.Generator, angle_degrees: float) -> tuple[torch.Tensor, np.ndarray]:
    """White speckle as coarse as a pixel, and a 1-px dark line 40 px long across its middle."""
    speckle = rng.random((1, 1, 96, 96)).astype(np.float32)
    mask = np.zeros((96, 96), bool)
    angle = math.radians(angle_degrees)
    for t in np.linspace(-20, 20, 200):
        mask[round(48 + t * math.sin(angle)), round(48 + t * math.cos(angle))] = True
    speckle[0, 0][mask] = 0.0
    return torch.from_numpy(speckle), mask


def test_a_thin_line_no_window_shows_stands_out_of_speckle_in_its_own_direction():
    rng = np.random.default_rng(0)
    training = torch.from_numpy(rng.random((8, 1, 96, 96)).astype(np.float32))
    statistics = lines.line_statistics(lines.line_sums(lines.line_responses(training, 31)))
    assert statistics.shape == (2, lines.ORIENTATIONS) and (statistics[1] > 0).all()
    scratched, mask = _scratched(rng, 30.0)
    found = lines.line_map(scratched, 31, statistics)[0]
    clean = lines.line_map(torch.from_numpy(rng.random((4, 1, 96, 96)).astype(np.float32)), 31, statistics)
    assert found.max() > 1.5 * clean.max()  # the speckle's own worst place is far below the line
    worst = np.unravel_index(int(found.argmax()), found.shape)
    assert mask[max(0, worst[0] - 1) : worst[0] + 2, max(0, worst[1] - 1) : worst[1] + 2].any()
    direction = lines.line_responses(scratched, 31)[0, :, worst[0], worst[1]].abs().argmax()
    assert int(direction) == 2  # 30° is the third of the directions 15° apart


def test_a_grain_that_runs_one_way_is_measured_in_its_own_spread():
    rng = np.random.default_rng(1)
    stripes = torch.from_numpy(rng.random((8, 1, 1, 96)).astype(np.float32)).expand(8, 1, 96, 96)  # vertical grain
    statistics = lines.line_statistics(lines.line_sums(lines.line_responses(stripes, 31)))
    vertical, across = lines.ORIENTATIONS // 2, 0
    assert statistics[1, vertical] > 5 * statistics[1, across]  # lines along the grain are normal there


def test_the_line_length_is_checked_and_off_unless_asked_for():
    assert PATCH_PRESET.score.line_length == 0 and ScoreConfig().line_length == 0  # opt-in; old checkpoints: off
    with pytest.raises(EgbadError, match="line length"):
        replace(PATCH_PRESET.score, line_length=5).validate()


def test_a_model_asked_for_lines_keeps_their_units_scores_with_them_and_reads_back(tmp_path):
    from test_patches import TINY_PATCH, texture_folder

    from egbad_core import session
    from egbad_core.events import run_to_end
    from egbad_core.model.references import PatchReference

    root = texture_folder(tmp_path / "surface", train=8, test=2)
    source = session.parse_source(str(root))
    settings = replace(TINY_PATCH, score=replace(TINY_PATCH.score, line_length=15, reference_images=8))
    path = tmp_path / "lines.pt"
    list(session.make_trainer(source, path, settings).run())
    checkpoint = session.load_checkpoint(path)
    reference = checkpoint.reference
    assert reference.lines.shape == (2, lines.ORIENTATIONS) and reference.line_spread > 0
    payload = reference.to_payload()
    again = PatchReference.from_payload(payload)
    assert torch.equal(again.lines, reference.lines) and again.line_mean == reference.line_mean
    with pytest.raises(ValueError):  # directions without their units
        PatchReference.from_payload({k: v for k, v in payload.items() if k != "line_stats"})
    with_lines = run_to_end(session.detect(session.ScoreRequest(checkpoint), source))
    from dataclasses import replace as changed

    without = changed(checkpoint, reference=changed(reference, lines=None))
    plain = run_to_end(session.detect(session.ScoreRequest(without), source))
    assert (with_lines.scores.score >= plain.scores.score - 1e-6).all()  # the furthest term out: never lower
    assert np.isfinite(with_lines.scores.score).all()
    pytest.importorskip("onnxruntime")
    done = session.export_onnx(checkpoint, tmp_path / "onnx", checkpoint_path=str(path))
    assert done.difference is not None and done.difference <= 1e-4  # the FFTs exported score as the app's
