"""Photos larger than a patch model's window, scored at their own resolution in windows."""

from dataclasses import replace

from PIL import Image

import numpy as np
import pytest
import torch

from egbad_core import session
from egbad_core.errors import EgbadError
from egbad_core.events import run_to_end
from egbad_core.run.photos import photo_scoring_task, photo_windows
from egbad_core.run.scoring import ScoreRequest
from test_patches import TINY_PATCH, texture_folder


@pytest.fixture(scope="module")
def request_(tmp_path_factory):
    root = texture_folder(tmp_path_factory.mktemp("photos") / "surface")
    path = root.parent / "patch.pt"
    list(session.make_trainer(session.parse_source(str(root)), path, TINY_PATCH).run())
    return ScoreRequest(session.load_checkpoint(path)).frozen()


def _photo(height, width, seed=0):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.normal(110, 25, (1, height, width)).clip(0, 255).astype(np.uint8))


def test_a_photo_is_scored_in_windows_into_one_map_of_its_own_size(request_):
    photo = _photo(300, 460)
    windows, scaled = photo_windows(request_, 300, 460)
    assert windows.overlap == 64 and windows.window == 256 and len(windows) == 6  # 2 × 3
    assert scaled.settings.feature_grid == 8 * request_.settings.feature_grid  # D's step as at the 32-px working size
    result = run_to_end(photo_scoring_task(request_, photo))
    assert result.anomaly_map.shape == (300, 460) and np.isfinite(result.anomaly_map).all()
    assert result.score == pytest.approx(float(result.anomaly_map.max()))
    assert result.anomaly_map[result.worst] == pytest.approx(result.score)


def test_a_small_bright_defect_is_the_worst_place_of_a_large_photo(request_):
    photo = _photo(300, 460, seed=1)
    photo[:, 100:106, 170:176] = 255  # 6 px: a spot the resized photo (32 px) would shrink to one pixel
    result = run_to_end(photo_scoring_task(request_, photo))
    row, column = result.worst
    assert 94 <= row <= 112 and 164 <= column <= 182


def test_the_photos_map_has_no_seams_where_windows_meet(request_):
    """With the residual left out (its 32-px tiles start where each window does), the stitched map
    is the map of the photo scored whole."""
    request = replace(request_, config=replace(request_.settings, lam=1.0))
    photo = _photo(256, 600, seed=2)
    tiled = run_to_end(photo_scoring_task(request, photo)).anomaly_map
    _, scaled = photo_windows(request, 256, 600)  # D's features at the working size's step, as the windows take them
    whole = run_to_end(scaled.task(photo[None], True)).residual_maps[0]
    assert np.abs(tiled - whole).max() < 1e-3 * np.abs(whole).max()


def test_a_whole_image_model_or_a_same_place_model_says_why_it_does_not_tile(request_, tiny_checkpoint):
    with pytest.raises(EgbadError, match="whole images"):
        photo_windows(ScoreRequest(session.load_checkpoint(tiny_checkpoint)), 500, 500)
    same = replace(request_, config=replace(request_.settings, same_place=True))
    with pytest.raises(EgbadError, match="same place"):
        photo_windows(same, 500, 500)


def photo_folder(root, shape=(300, 420), train=8, test=2, odd_shape=(280, 500)):
    """Noise photos larger than the model's windows; the spot images' 8-px spots are masked. One
    test photo is of another size, as a second camera's would be."""
    rng = np.random.default_rng(3)
    for folder in ("train/good", "test/good", "test/spot", "ground_truth/spot"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    photo = lambda size: rng.normal(110, 25, size).clip(0, 255).astype(np.uint8)  # noqa: E731
    for i in range(train):
        Image.fromarray(photo(shape)).save(root / "train/good" / f"{i:03d}.png")
    for i in range(test):
        Image.fromarray(photo(odd_shape if i else shape)).save(root / "test/good" / f"{i:03d}.png")
        damaged, mask = photo(shape), np.zeros(shape, np.uint8)
        damaged[150:158, 200:208], mask[150:158, 200:208] = 255, 255
        Image.fromarray(damaged).save(root / "test/spot" / f"{i:03d}.png")
        Image.fromarray(mask).save(root / "ground_truth/spot" / f"{i:03d}_mask.png")
    return root


@pytest.fixture(scope="module")
def photo_model(tmp_path_factory):
    root = photo_folder(tmp_path_factory.mktemp("large") / "photos")
    preset = replace(TINY_PATCH, model=replace(TINY_PATCH.model, photo_scale=1.0))
    path = root.parent / "photo.pt"
    trainer = session.make_trainer(session.parse_source(str(root)), path, preset)
    list(trainer.run())
    return root, path, trainer


def test_a_photo_model_trains_on_patches_of_the_photos_at_their_own_size(photo_model):
    _, path, trainer = photo_model
    assert tuple(trainer.images.shape) == (8, 1, 300, 420) and trainer.train_set.scale == 1.0
    assert "held in memory" in trainer.train_set.held
    assert trainer.crops_each() == 300 and trainer.samples_per_epoch() == 2400  # 8 photos give 2,400 crops an epoch
    config = session.load_checkpoint(path).networks.config
    assert (config.photo_scale, config.working_size, config.image_size) == (1.0, 32, 16)


def test_detect_scores_each_photo_at_its_own_size_and_writes_full_size_maps(photo_model, tmp_path):
    from egbad_core.data.sources import DataSource

    root, path, _ = photo_model
    request = ScoreRequest(session.load_checkpoint(path), threshold="f1")
    summary = run_to_end(session.detect_into(request, DataSource.parse(str(root)), tmp_path / "out",
                                             maps=tmp_path / "maps"))
    assert summary["n_images"] == 4 and summary["auroc"] == 1.0  # the spots, 8 px on 420-px photos
    assert summary["pixel_auroc"] > 0.9 and summary["pro"] is None  # from each photo's own pixels
    assert summary["photo_scale"] == 1.0 and summary["megapixels_per_s"] > 0
    assert summary["pixel_images"] == 4  # every test photo's mask is known (a good one's is empty)
    odd = np.load(tmp_path / "maps" / "test_good_001.npy")
    assert odd.shape == (280, 500)  # the other camera's photo, scored at its own size
    spot = np.load(tmp_path / "maps" / "test_spot_000.npy")
    row, column = np.unravel_index(spot.argmax(), spot.shape)
    assert 140 <= row <= 168 and 190 <= column <= 218
    assert (tmp_path / "out" / "grid.png").is_file()


def test_training_photos_of_another_size_are_resized_to_the_median_and_named(tmp_path):
    from egbad_core.data.loading import load_training_set

    root = photo_folder(tmp_path / "mixed", shape=(120, 160), train=3, test=1, odd_shape=(120, 160))
    Image.fromarray(np.zeros((90, 200), np.uint8)).save(root / "train/good" / "zz.png")
    photos = load_training_set(session.parse_source(str(root)), 32, scale=1.0)
    assert tuple(photos.pixels.shape) == (4, 1, 120, 160)
    assert "1 of another size resized to the median 160×120" in photos.held and "zz.png (200×90)" in photos.held


def test_photos_beyond_the_memory_share_are_held_in_a_mapped_file_that_leaves_nothing(tmp_path, monkeypatch):
    from egbad_core.data import photos

    monkeypatch.setenv(photos.CACHE_FOLDER_VARIABLE, str(tmp_path))
    block, held = photos.photo_block(4, 3, (100, 200), free=10_000)  # 240 kB of photos, 10 kB free
    assert "memory-mapped" in held and not list(tmp_path.iterdir())  # the file's name is gone at once
    block[2] = 7
    assert int(block[2].sum()) == 7 * 3 * 100 * 200 and block.shape == (4, 3, 100, 200)
    block, held = photos.photo_block(4, 3, (100, 200), free=10**9)
    assert "held in memory" in held


def test_photos_the_disk_cannot_hold_either_are_refused_with_what_to_do(tmp_path, monkeypatch):
    from egbad_core.data import photos

    monkeypatch.setenv(photos.CACHE_FOLDER_VARIABLE, str(tmp_path))
    monkeypatch.setattr(photos.shutil, "disk_usage", lambda folder: type("U", (), {"free": 1000})())
    with pytest.raises(EgbadError, match="EGBAD_CACHE"):
        photos.photo_block(300, 3, (3000, 4096), free=10**9)


def test_a_photo_scale_needs_a_patch_model_and_photos_no_smaller_than_the_windows(tmp_path):
    from egbad_core.config import ModelConfig

    with pytest.raises(EgbadError, match="photo scale"):
        ModelConfig(photo_scale=1.0).validate()
    root = photo_folder(tmp_path / "small", shape=(40, 60), train=4, test=1, odd_shape=(40, 60))
    preset = replace(TINY_PATCH, model=replace(TINY_PATCH.model, photo_scale=0.5))
    with pytest.raises(EgbadError, match="smaller than the 32-px windows"):
        session.make_trainer(session.parse_source(str(root)), None, preset)


def test_the_in_memory_scoring_says_plainly_that_a_photo_model_scores_into_a_folder(photo_model):
    root, path, trainer = photo_model
    checkpoint = session.load_checkpoint(path)
    with pytest.raises(EgbadError, match="egbad detect"):
        run_to_end(session.detect(ScoreRequest(checkpoint), session.parse_source(str(root))))
    assert "photos at 1 of their own pixels, 420×300×1" in trainer.train_set.describe()


def test_auto_with_a_photo_scale_leaves_the_same_place_out_and_says_so(tmp_path):
    root = tmp_path / "parts"
    rng = np.random.default_rng(0)
    part = rng.normal(110, 40, (140, 140)).clip(0, 255)
    (root / "train/good").mkdir(parents=True)
    for i in range(12):  # one part, a pixel of jitter: the images line up
        shifted = np.roll(part, int(rng.integers(-1, 2)), axis=1)
        Image.fromarray(shifted.astype(np.uint8)).save(root / "train/good" / f"{i:03d}.png")
    plain, plain_reason = session.choose_preset("auto", source=session.parse_source(str(root)))
    assert plain.score.same_place
    photos, reason = session.choose_preset("auto", overrides=["model.photo_scale=1"], source=session.parse_source(str(root)))
    assert photos.model.photo_scale == 1.0 and not photos.score.same_place and "left out" in reason
    assert "photos kept at 1 of their own pixels, scored in overlapping windows" in reason
    assert "images kept at 128×128" in plain_reason and "images kept at" not in reason
