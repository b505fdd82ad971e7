"""The line term (score/lines.py): thin straight lines on a fine grain."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from egbad_core.config import PATCH_PRESET, ScoreConfig, replace
from egbad_core.errors import EgbadError
from egbad_core.score import lines


def test_the_responses_are_the_mirrored_convolutions_of_the_gray_and_its_square():
    x = torch.rand(2, 3, 41, 37)
    along, ridge = lines.line_kernels(15)
    gray = F.pad(x.mean(dim=1, keepdim=True), (7, 7, 7, 7), mode="reflect")
    mean, mean_square, contrast = (F.conv2d(g, k[:, None]) for g, k in ((gray, along), (gray.square(), along), (gray, ridge)))
    direct = contrast / ((mean_square - mean.square()).clamp_min(0).sqrt() + lines.FLOOR)
    assert torch.allclose(lines.line_responses(x, 15), direct, atol=1e-3)
    assert ridge.sum(dim=(1, 2)).abs().max() < 1e-5 and torch.allclose(along.sum(dim=(1, 2)), torch.ones(lines.ORIENTATIONS))
    assert lines.line_responses(torch.rand(1, 1, 6, 6), 15).abs().max() == 0  # too small for lines that long


def test_an_even_line_stands_out_where_a_ridge_as_bright_that_varies_along_its_run_does_not():
    rng = np.random.default_rng(2)
    ground = np.full((64, 64), 0.3, np.float32) + 0.02 * rng.standard_normal((64, 64)).astype(np.float32)
    even, uneven = ground.copy(), ground.copy()
    even[31:34, 10:54] = 0.7  # a 3-px scratch of one tone
    uneven[31:34, 10:54] = 0.3 + 0.8 * rng.random(44).astype(np.float32)  # a ridge as bright on average
    responses = lines.line_responses(torch.from_numpy(np.stack([even, uneven]))[:, None], 7)[:, 0, 32, 20:44]
    assert responses[0].min() > 2 * responses[1].abs().max()


def _bank(training: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The directions' units and every training place, as a reference keeps them (less the coreset)."""
    responses = lines.line_responses(training, length)
    statistics = lines.line_statistics(lines.line_sums(responses))
    places = lines.line_places(responses, statistics, 2)
    return statistics, places.permute(0, 2, 3, 1).reshape(-1, lines.ORIENTATIONS)


def _scratched(rng: np.random.Generator, angle_degrees: float) -> tuple[torch.Tensor, np.ndarray]:
    """Speckle as coarse as a pixel, and a 2-px line of one tone 40 px long across its middle: as
    bright as the brightest speckle, but even."""
    speckle = rng.random((1, 1, 96, 96)).astype(np.float32)
    mask = np.zeros((96, 96), bool)
    angle = math.radians(angle_degrees)
    for t in np.linspace(-20, 20, 200):
        for side in (0, 1):
            mask[round(48 + t * math.sin(angle) + side * math.cos(angle)), round(48 + t * math.cos(angle) - side * math.sin(angle))] = True
    speckle[0, 0][mask] = 0.9
    return torch.from_numpy(speckle), mask


def test_an_even_line_stands_out_of_a_speckle_as_bright_in_its_own_direction():
    rng = np.random.default_rng(0)
    training = torch.from_numpy(rng.random((8, 1, 96, 96)).astype(np.float32))
    bank = _bank(training, 7)
    assert bank[0].shape == (2, lines.ORIENTATIONS) and (bank[0][1] > 0).all()
    scratched, mask = _scratched(rng, 30.0)
    found = lines.line_map(scratched, 7, bank, 48)[0]
    assert found.shape == (48, 48)  # a place every 2 px
    clean = lines.line_map(torch.from_numpy(rng.random((4, 1, 96, 96)).astype(np.float32)), 7, bank, 48)
    assert found.max() > 1.5 * clean.max()  # the speckle's own worst place is far below the line
    row, column = (2 * int(i) for i in np.unravel_index(int(found.argmax()), found.shape))
    assert mask[max(0, row - 2) : row + 4, max(0, column - 2) : column + 4].any()
    responses = lines.line_responses(scratched, 7)[0, :, row : row + 2, column : column + 2]
    assert int(responses.abs().amax(dim=(1, 2)).argmax()) in (1, 2, 3)  # 30° is the third of the directions 15° apart


def test_even_lines_along_a_grain_are_normal_there_and_one_across_it_is_not():
    rng = np.random.default_rng(1)
    stripes = torch.from_numpy(rng.random((8, 1, 1, 96)).astype(np.float32)).expand(8, 1, 96, 96)  # vertical grain
    bank = _bank(stripes, 7)
    vertical, across = lines.ORIENTATIONS // 2, 0
    assert bank[0][1, vertical] > 5 * bank[0][1, across]  # lines along the grain are measured in their own spread
    test = torch.from_numpy(rng.random((1, 1, 1, 96)).astype(np.float32)).expand(2, 1, 96, 96).clone()
    test[1, 0, 47:49, 20:76] = 0.5  # an even 2-px line across the grain
    clean, crossed = lines.line_map(test, 7, bank, 48).flatten(1).amax(dim=1)
    assert crossed > 3 * clean


def test_the_line_length_is_checked_and_on_for_patches_only():
    assert PATCH_PRESET.score.line_length == 7 and ScoreConfig().line_length == 0  # whole images: off
    # places 2 px apart at 128 px, 4 at 256, and in a photo's 512-px window whose grid grows with it
    assert [lines.line_step(*size, grid) for size, grid in (((128, 128), 64), ((256, 200), 64), ((512, 512), 128))] == [2, 4, 4]
    assert lines.line_step(96, 96, 0) == 1
    for wrong in (3, 5, 17):  # at 5 the flanks fall outside the kernel
        with pytest.raises(EgbadError, match="line length"):
            replace(PATCH_PRESET.score, line_length=wrong).validate()
    for length in range(6, 16):  # every length allowed has its flanks inside
        replace(PATCH_PRESET.score, line_length=length).validate()
        assert torch.isfinite(lines.line_kernels(length)).all()


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
    assert reference.line_memory.shape[1] == lines.ORIENTATIONS and len(reference.line_memory) > 1
    payload = reference.to_payload()
    again = PatchReference.from_payload(payload)
    assert torch.equal(again.lines, reference.lines) and again.line_mean == reference.line_mean
    assert torch.equal(again.line_memory, reference.line_memory)
    with pytest.raises(ValueError):  # directions without their units
        PatchReference.from_payload({k: v for k, v in payload.items() if k != "even_line_stats"})
    with_lines = run_to_end(session.detect(session.ScoreRequest(checkpoint), source))
    from dataclasses import replace as changed

    without = changed(checkpoint, reference=changed(reference, lines=None))
    plain = run_to_end(session.detect(session.ScoreRequest(without), source))
    assert (with_lines.scores.score >= plain.scores.score - 1e-6).all()  # the furthest term out: never lower
    assert np.isfinite(with_lines.scores.score).all()
    pytest.importorskip("onnxruntime")
    done = session.export_onnx(checkpoint, tmp_path / "onnx", checkpoint_path=str(path))
    assert done.difference is not None and done.difference <= 1e-4  # the lines exported score as the app's
