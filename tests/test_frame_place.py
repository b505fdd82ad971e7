"""The same-place comparison of aligned photos scored in windows (score/frame_place.py)."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from egbad_core import session
from egbad_core.config import PATCH_PRESET
from egbad_core.events import run_to_end
from egbad_core.model.checkpoints import load_checkpoint
from egbad_core.run.photos import photo_scoring_task
from egbad_core.run.scoring import ScoreRequest
from egbad_core.score.frame_place import FrameTally, frame_distance, frame_moments, photo_terms
from egbad_core.score.moments import moments_of
from test_patches import TINY_PATCH

SCORE = PATCH_PRESET.score
SHAPE = (300, 420)


def _part(rng, shift=(0, 0), size=SHAPE):
    """One part in a fixture: a dark left half, a pale right half, a little noise and jitter."""
    part = np.full(size, 200.0)
    part[:, : size[1] // 2 + shift[1]] = 50.0
    part[: 40 + shift[0], 100:140] = 200.0  # a pale notch at the top of the dark half
    return (part + rng.normal(0, 6, size)).clip(0, 255).astype(np.uint8)


def _stained(rng):
    """A dark square on the pale half: a tone the part has, at a place where it has not."""
    photo = _part(rng)
    photo[120:150, 300:330] = 50
    return photo


def test_a_photos_moments_taken_in_strips_are_those_of_the_whole_photo():
    x = torch.randn(1, 3, 301, 250)
    whole = moments_of(x, SCORE)
    strips = frame_moments(x, SCORE, strip=64)
    assert strips.shape == whole.shape
    assert torch.allclose(strips, whole, atol=1e-5)


def test_a_place_is_measured_against_the_same_place_of_the_frame_give_or_take_a_step():
    rng = np.random.default_rng(0)
    moments = lambda photo: frame_moments(torch.from_numpy(photo).float()[None, None] / 255, SCORE)  # noqa: E731
    tally = FrameTally()
    for i in range(12):
        tally.add(moments(_part(rng, (0, int(rng.integers(-1, 2))))))
    frame = tally.statistics()
    assert frame.shape[:2] == (2, moments(_part(rng)).shape[1]) and (frame[1] > 0).all()
    good = frame_distance(moments(_part(rng, (0, 4))), frame)[0]  # a step off: the jitter it forgives
    stained = frame_distance(moments(_stained(rng)), frame)[0]
    assert float(good.max()) < 4.0
    assert float(stained[31:36, 76:81].min()) > 3 * float(good.max())  # inside the square
    assert float(stained[:, :50].max()) < 4.0  # the dark half, far from it, as good as ever


@pytest.fixture(scope="module")
def aligned_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("aligned") / "parts"
    rng = np.random.default_rng(1)
    for folder in ("train/good", "test/good", "test/stain"):
        (root / folder).mkdir(parents=True)
    for i in range(8):
        Image.fromarray(_part(rng, (int(rng.integers(-1, 2)), int(rng.integers(-1, 2))))).save(
            root / "train/good" / f"{i:03d}.png")
    for i in range(3):
        Image.fromarray(_part(rng)).save(root / "test/good" / f"{i:03d}.png")
        Image.fromarray(_stained(rng)).save(root / "test/stain" / f"{i:03d}.png")
    Image.fromarray(_part(rng, size=(280, 500))).save(root / "test/good" / "other.png")  # a second camera's
    preset = replace(TINY_PATCH, model=replace(TINY_PATCH.model, photo_scale=1.0),
                     score=replace(TINY_PATCH.score, same_place=True))
    path = root.parent / "aligned.pt"
    list(session.make_trainer(session.parse_source(str(root)), path, preset).run())
    return root, path


def test_an_aligned_photo_model_keeps_the_frame_and_finds_a_stain_of_a_tone_the_part_has(aligned_model):
    root, path = aligned_model
    checkpoint = load_checkpoint(path)
    reference = checkpoint.reference
    assert reference.frame is not None and reference.frame_size == SHAPE and reference.frame_spread > 0
    assert reference.places is None and reference.moments is not None  # the banks as for any photo model
    request = ScoreRequest(checkpoint).frozen()
    without = ScoreRequest(replace(checkpoint, reference=replace(reference, frame=None))).frozen()

    def scores(req, kind):
        photos = sorted((root / "test" / kind).glob("*.png"))
        return [run_to_end(photo_scoring_task(req, torch.from_numpy(np.array(Image.open(p)))[None])) for p in photos]

    good, stains = scores(request, "good"), scores(request, "stain")
    assert all(np.isfinite(s.anomaly_map).all() for s in good + stains)  # a frame read back in half precision
    assert min(s.score for s in stains) > max(s.score for s in good)
    assert all(110 <= s.worst[0] < 160 and 290 <= s.worst[1] < 340 for s in stains)  # at the square
    alone = scores(without, "stain")
    assert min(s.score for s in stains) > max(s.score for s in alone)  # the frame's term is what finds it


def test_a_photo_of_another_size_goes_without_the_same_place(aligned_model):
    _, path = aligned_model
    checkpoint = load_checkpoint(path)
    config, normalisation = checkpoint.settings.score, checkpoint.settings.normalisation
    other = torch.from_numpy(_part(np.random.default_rng(2), size=(280, 500)))[None]
    assert photo_terms(other, normalisation, config, checkpoint.reference).frame is None
    same = torch.from_numpy(_part(np.random.default_rng(2)))[None]
    assert photo_terms(same, normalisation, config, checkpoint.reference).frame.shape == SHAPE
    result = run_to_end(photo_scoring_task(ScoreRequest(checkpoint), other))
    assert result.anomaly_map.shape == (280, 500) and np.isfinite(result.anomaly_map).all()


def test_an_aligned_photo_model_is_not_exported_for_its_frames_size_and_says_why(aligned_model, tmp_path):
    from egbad_core.errors import EgbadError

    _, path = aligned_model
    checkpoint = load_checkpoint(path)
    with pytest.raises(EgbadError, match="finding how the photo lies .* cannot do yet"):
        session.export_onnx(checkpoint, tmp_path / "m", photo_size=SHAPE)
    assert not (tmp_path / "m" / "model.onnx").exists()


def test_detect_says_which_photos_went_without_the_same_place(aligned_model, tmp_path):
    from egbad_core.data.sources import DataSource

    root, path = aligned_model
    request = ScoreRequest(load_checkpoint(path), threshold="f1")
    summary = run_to_end(session.detect_into(request, DataSource.parse(str(root)), tmp_path / "out"))
    assert summary["auroc"] == 1.0
    assert summary["same_place"].startswith("1 of 7 photos are not 420×300 px at the model's scale")
    detection = run_to_end(session.detect(request, session.parse_source(str(root))))
    assert detection.photos.note == summary["same_place"]


def test_a_photos_windows_share_its_moments_where_they_start_on_their_grid():
    from egbad_core.score.frame_place import PhotoTerms
    from egbad_core.score.tiling import Windows, overlays

    x = torch.randn(1, 3, 300, 420)
    terms = PhotoTerms(frame_moments(x, SCORE), None)
    windows = Windows(300, 420, 128, 64, align=4)
    assert all(start % 4 == 0 for start in windows.rows[:-1] + windows.columns[:-1])
    shared = overlays(windows, range(len(windows)), None, terms).moments
    own = moments_of(windows.cut(x[0]), SCORE)
    assert shared.shape == own.shape
    inner = (..., slice(8, -8), slice(8, -8))  # 32 px in from each window's edge, where the window's own see no padding
    assert torch.allclose(shared[inner], own[inner], atol=1e-5)
    assert overlays(Windows(300, 420, 128, 64), range(len(windows)), None, terms).moments is None  # off the grid


def test_a_photos_pose_is_found_and_its_moments_laid_into_the_frame_by_it():
    from egbad_core.score.registration import laid, pose_of, reduced, reduction

    rng = np.random.default_rng(5)
    height, width = 600, 720
    blobs = torch.nn.functional.interpolate(torch.from_numpy(rng.normal(0, 1, (1, 1, 38, 45))).float(), (height, width),
                                            mode="bicubic")
    picture = Image.fromarray(((blobs[0, 0] - blobs.min()) / (blobs.max() - blobs.min()) * 255).numpy().astype(np.uint8))
    as_tensor = lambda image: torch.from_numpy(np.array(image, dtype=np.float32))[None, None] / 255  # noqa: E731
    frame, photo = as_tensor(picture), as_tensor(picture.rotate(1.0, Image.Resampling.BICUBIC, translate=(9, -6)))
    factor = reduction(height, width)
    pose = pose_of(reduced(photo, factor), reduced(frame, factor), factor)
    assert abs(float(pose[0]) - np.radians(1.0)) < np.radians(0.15)  # Pillow turns counter-clockwise
    assert abs(float(pose[1]) - 6) < 1.5 and abs(float(pose[2]) + 9) < 1.5  # and shifts 9 right, 6 up
    inner = (..., slice(10, -10), slice(10, -10))
    ours, theirs = moments_of(frame, SCORE), moments_of(photo, SCORE)
    into, shown = laid(theirs, pose, 4, (height, width), to_frame=True)
    assert not shown.all() and shown[10:-10, 10:-10].all()  # the turned photo does not show the frame's corners
    assert float((into - ours)[inner].abs().mean()) < 0.2 * float((theirs - ours)[inner].abs().mean())
    onto, _ = laid(ours, pose, 4, (height, width), to_frame=False)
    assert float((onto - theirs)[inner].abs().mean()) < 0.2 * float((theirs - ours)[inner].abs().mean())
