"""Photos larger than a patch model's window, scored at their own resolution in windows."""

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from egbad_core import session
from egbad_core.errors import EgbadError
from egbad_core.events import run_to_end
from egbad_core.run.photos import photo_scoring_task, photo_windows
from egbad_core.run.scoring import ScoreRequest
from egbad_core.score.frame_place import photo_terms
from egbad_core.score.lines import line_step
from egbad_core.score.local import Overlays
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
    photo = _photo(420, 700)
    windows, scaled = photo_windows(request_, 420, 700, largest=256)
    # Twice the reach of the coarse moments (16 px) and the moments' two blurs (10 + 15 px), in 8s;
    # a window at least four overlaps.
    assert windows.overlap == 88 and windows.window == 352 and len(windows) == 6  # 2 × 3
    assert scaled.settings.feature_grid == 11 * request_.settings.feature_grid  # D's step as at the 32-px working size
    result = run_to_end(photo_scoring_task(request_, photo, largest=256))
    assert result.anomaly_map.shape == (420, 700) and np.isfinite(result.anomaly_map).all()
    assert result.score == pytest.approx(float(result.anomaly_map.max()))
    assert result.anomaly_map[result.worst] == pytest.approx(result.score)


def test_the_window_side_covers_the_photo_with_the_fewest_pixels_scored(request_):
    smallest, _ = photo_windows(request_, 3000, 4096, largest=256)
    windows, scaled = photo_windows(request_, 3000, 4096)
    tile = request_.checkpoint.networks.config.image_size
    assert 256 < windows.window <= 1216 and windows.window % tile == 0  # whole tiles, reconstructed side by side
    cost = lambda w: len(w) * w.window**2  # noqa: E731
    assert cost(windows) < 0.9 * cost(smallest) and cost(windows) < 1.2 * 3000 * 4096
    # D's features a place every step as at the working size: the grid grows with the window.
    assert scaled.settings.feature_grid * 32 == request_.settings.feature_grid * windows.window
    one, _ = photo_windows(request_, 400, 380)  # smaller than the largest window: one, just covering it
    assert len(one) == 1 and 400 <= one.window < 400 + tile


def test_a_small_bright_defect_is_the_worst_place_of_a_large_photo(request_):
    photo = _photo(300, 460, seed=1)
    photo[:, 100:106, 170:176] = 255  # 6 px: a spot the resized photo (32 px) would shrink to one pixel
    result = run_to_end(photo_scoring_task(request_, photo))
    row, column = result.worst
    assert 94 <= row <= 112 and 164 <= column <= 182


@pytest.mark.parametrize("shape", [(352, 700), (300, 460)])  # three windows meet; windows past the photo's edge
def test_the_photos_map_has_no_seams_where_windows_meet(request_, shape):
    """With the residual left out (its 32-px tiles start where each window does), the stitched map
    is the map of the photo scored whole, also where a window reaches past the photo's edge (the
    photo's moments and 0 there, not the repeated edge's own, which had made its last rows hot).
    The photo scored whole takes its places on the windows' grid: its longer side is within D's grid
    at the windows' scale (at 800 px it took every second place, the windows every one); and it is
    handed its own description of its places, as its windows are (their layouts lie on the moments'
    grid, an image scored whole has them on a finer one at 128 px)."""
    request = replace(request_, config=replace(request_.settings, lam=1.0))
    photo = _photo(*shape, seed=2)
    tiled = run_to_end(photo_scoring_task(request, photo, largest=256)).anomaly_map
    windows, scaled = photo_windows(request, *shape, largest=256)
    assert len(windows) == 3 or windows.window > shape[0]
    assert line_step(*shape, scaled.settings.feature_grid) == line_step(windows.window, windows.window, scaled.settings.feature_grid)
    described = photo_terms(photo, scaled.checkpoint.settings.normalisation, scaled.settings, scaled.checkpoint.reference)
    whole = run_to_end(scaled.task(photo[None], True, over=Overlays(moments=described.moments))).residual_maps[0]
    assert np.abs(tiled - whole).max() < 1e-3 * np.abs(whole).max()


def test_a_whole_image_model_or_a_same_place_model_says_why_it_does_not_tile(request_, tiny_checkpoint):
    with pytest.raises(EgbadError, match="whole images"):
        photo_windows(ScoreRequest(session.load_checkpoint(tiny_checkpoint)), 500, 500)
    checkpoint = request_.checkpoint  # a 256-px aligned model keeps each training image's places: not in windows
    places = replace(checkpoint.reference, places=torch.zeros(2, 6, 8, 8))
    with pytest.raises(EgbadError, match="same place"):
        photo_windows(replace(request_, checkpoint=replace(checkpoint, reference=places)), 500, 500)


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
    assert summary["photo_scale"] == 1.0 and summary["megapixels_per_s"] > 0 and summary["pixels_per_mm"] is None
    assert summary["pixel_images"] == 4  # every test photo's mask is known (a good one's is empty)
    odd = np.load(tmp_path / "maps" / "test_good_001.npy")
    assert odd.shape == (280, 500)  # the other camera's photo, scored at its own size
    spot = np.load(tmp_path / "maps" / "test_spot_000.npy")
    row, column = np.unravel_index(spot.argmax(), spot.shape)
    assert 140 <= row <= 168 and 190 <= column <= 218
    assert (tmp_path / "out" / "grid.png").is_file()


def test_egbad_detect_says_a_photo_models_pixel_auroc_without_a_pro(photo_model, tmp_path, capsys):
    from egbad_core.cli import main

    root, path, _ = photo_model
    assert main(["detect", "--checkpoint", str(path), "--data", str(root), "--out-dir", str(tmp_path / "o"), "--quiet"]) == 0
    said = capsys.readouterr().err
    assert "pixel AUROC" in said and "PRO" not in said and "Traceback" not in said


def test_scoring_sets_the_allocator_to_reuse_memory_and_gives_it_back_after(request_, monkeypatch):
    from egbad_core.system import memory

    calls = []
    monkeypatch.setattr(memory, "_mallopt", lambda parameter, value: calls.append((parameter, value)) or True)
    run_to_end(photo_scoring_task(request_, _photo(300, 460), largest=256))  # six windows, two passes
    threshold = [value for parameter, value in calls if parameter == memory.M_MMAP_THRESHOLD]
    assert threshold == [memory.SCORING_MMAP_THRESHOLD, memory.MMAP_THRESHOLD_BYTES]  # once a photo, not a pass
    assert memory._scoring["depth"] == 0


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


def test_a_photo_model_scores_from_the_folder_not_from_images_loaded_at_one_size(photo_model):
    from egbad_core.run.scoring import run_detection

    root, path, trainer = photo_model
    checkpoint = session.load_checkpoint(path)
    with pytest.raises(EgbadError, match="a photo at a time from their folder"):
        run_detection(checkpoint, trainer.train_set)
    detection = run_to_end(session.detect(ScoreRequest(checkpoint, threshold="f1"), session.parse_source(str(root))))
    assert len(detection.images) == 4 and detection.images.image_size == 32  # thumbnails of the photos
    assert [m.shape for m in detection.photos.maps[:2]] == [(300, 420), (280, 500)]  # maps as large as the photos
    assert detection.summary()["auroc"] == 1.0 and detection.pixel_metrics()["pixel_images"] == 4
    assert "photos at 1 of their own pixels, 420×300×1" in trainer.train_set.describe()


def test_auto_with_a_photo_scale_compares_with_the_frames_same_place_and_says_so(tmp_path):
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
    assert photos.model.photo_scale == 1.0 and photos.score.same_place and "same place of the training photos' frame" in reason
    assert "photos kept at 1 of their own pixels, scored in overlapping windows" in reason
    assert "images kept at 128×128" in plain_reason and "images kept at" not in reason


def _copy(root, tmp_path):
    """A copy of the folder ``root`` to change."""
    import shutil

    return Path(shutil.copytree(root, tmp_path / "copy"))


def _with_region(root, tmp_path, region):
    """A copy of ``root`` with ``region`` ((H, W) bool) as its roi.png."""
    copy = _copy(root, tmp_path)
    Image.fromarray(region.astype(np.uint8) * 255).save(copy / "roi.png")
    return copy


def _window_on(qtbot, tmp_path, checkpoint, folder):
    """The window with ``checkpoint`` loaded and the photos of ``folder`` loaded."""
    from conftest import open_window

    window = open_window(qtbot, tmp_path)
    with qtbot.waitSignal(window.model_changed, timeout=30_000):
        window.load_checkpoint(str(checkpoint))
    window.data_panel.folder.setChecked(True)
    window.data_panel.folder_path.setText(str(folder))
    with qtbot.waitSignal(window.data_loaded, timeout=60_000):
        window.data_panel.load_button.click()
    return window


def test_a_region_of_interest_keeps_the_map_and_the_score_to_the_part(photo_model, tmp_path):
    root, path, _ = photo_model
    checkpoint = session.load_checkpoint(path)
    region = np.ones((150, 210), bool)  # half the photos' size: resized over them, and said
    region[55:100, 80:125] = False  # the spots (rows 150–158, columns 200–208 of the photos) lie well outside
    folder = _with_region(root, tmp_path, region)
    source = session.parse_source(str(folder))
    roi = session.region_of_interest(source, checkpoint)
    assert roi is not None and roi.at((300, 420)).shape == (300, 420)
    summary = run_to_end(session.detect_into(ScoreRequest(checkpoint, threshold="f1", region=roi), source,
                                             tmp_path / "out", maps=tmp_path / "maps"))
    assert "roi.png (210×150) marks 94% of each image" in summary["region_of_interest"]
    assert "resized to the images' own size (420×300)" in summary["region_of_interest"]
    assert summary["auroc"] < 0.9  # the spots no longer flag: they lie outside the part
    spot = np.load(tmp_path / "maps" / "test_spot_000.npy")
    inside = roi.at(spot.shape)
    assert spot[~inside].max() <= spot[inside].min() + 1e-6  # outside: the lowest value inside, never the worst
    assert summary["n_images"] == 4  # roi.png is no image to score


def test_an_empty_or_unreadable_region_of_interest_is_refused_in_a_sentence(photo_model, tmp_path):
    from egbad_core.data.region import read_region

    root, path, _ = photo_model
    folder = _with_region(root, tmp_path, np.zeros((30, 40), bool))
    with pytest.raises(EgbadError, match="roi.png marks no pixel as the part"):
        session.region_of_interest(session.parse_source(str(folder)), session.load_checkpoint(path))
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(EgbadError, match="bad.png cannot be read as a region of interest"):
        read_region(tmp_path / "bad.png")


def test_a_whole_image_model_leaves_a_folders_region_out_and_refuses_one_asked_for(tiny_checkpoint, tmp_path):
    folder = tmp_path / "plain"
    (folder / "train/good").mkdir(parents=True)
    Image.fromarray(np.full((20, 20), 255, np.uint8)).save(folder / "roi.png")
    checkpoint = session.load_checkpoint(tiny_checkpoint)
    assert session.region_of_interest(session.parse_source(str(folder)), checkpoint) is None
    with pytest.raises(EgbadError, match="needs a model that draws an anomaly map"):
        session.region_of_interest(session.parse_source(str(folder)), checkpoint, folder / "roi.png")


def test_a_photo_too_large_to_decode_names_the_limit_and_how_to_raise_it(tmp_path, monkeypatch):
    from egbad_core.data.decoding import PIXEL_LIMIT_VARIABLE, decode_image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored afterwards
    Image.fromarray(np.zeros((1000, 1500), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setenv(PIXEL_LIMIT_VARIABLE, "1")
    with pytest.raises(EgbadError, match=r"too large to decode safely \(2 megapixels, above the limit of 1\); "
                                         r"to allow it set EGBAD_MAX_MEGAPIXELS"):
        decode_image(tmp_path / "big.png", 32)
    monkeypatch.setenv(PIXEL_LIMIT_VARIABLE, "3")
    assert decode_image(tmp_path / "big.png", 32)[1] == (1000, 1500)


def test_auto_keeps_large_photos_at_their_own_pixels_and_says_what_resizing_would_do(tmp_path):
    root = tmp_path / "large"
    (root / "train/good").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(6):
        Image.fromarray(rng.normal(110, 30, (600, 640)).clip(0, 255).astype(np.uint8)).save(root / "train/good" / f"{i}.png")
    source = session.parse_source(str(root))
    photos, reason = session.choose_preset("auto", source=source)
    assert photos.model.photo_scale == 1.0 and photos.model.working_size == 256
    assert photos.score.shape_window == 0  # no tone layouts: photos keep their rate
    assert "about 600 px a side" in reason and "keep their own pixels (a 5-px defect stays 5 px)" in reason
    resized, said = session.choose_preset("auto", overrides=["model.photo_scale=0"], source=source)
    assert resized.model.photo_scale == 0 and "resized as asked (a 5-px defect shrinks to 2.1 px)" in said
    assert resized.score.shape_window == 24  # a texture at its working size, as any other
    half, told = session.choose_preset("auto", overrides=["model.photo_scale=0.5", "model.pixels_per_mm=20"], source=source)
    assert "photos kept at 0.5 of their own pixels (10 px/mm)" in told and "a 5-px defect stays 2.5 px" in told
    with pytest.raises(EgbadError, match="pixels per millimetre"):
        session.choose_preset("auto", overrides=["model.pixels_per_mm=-1"], source=source)


def test_the_window_scores_photos_one_at_a_time_and_opens_one_at_full_size(qtbot, photo_model, tmp_path):
    pytest.importorskip("pytestqt")
    root, path, _ = photo_model
    window = _window_on(qtbot, tmp_path, path, root)
    described = window.data_panel.summary.text()
    assert "photos at 1 of their own pixels, 420×300×1" in described and "held in memory" in described
    with qtbot.waitSignal(window.detection_ready, timeout=120_000):
        window.detect()
    view, detection = window.detection_view, window.detection
    assert view.table.model().rowCount() == 4 and detection.photos is not None
    assert detection.images.image_size == 32  # thumbnails are kept, never the photos
    assert view.photo_button.isVisibleTo(view) and "pixel AUROC" in view.metrics_label.text()
    spot = detection.images.ids.index("test/spot/000.png")
    view.photo_requested.emit(spot)
    qtbot.waitUntil(lambda: getattr(window, "photo_dialog", None) is not None, timeout=30_000)
    dialog = window.photo_dialog
    assert dialog.view.rgb.shape == (300, 420, 3)  # decoded at the size it was scored at
    row, column = dialog.view.worst
    assert 140 <= row <= 168 and 190 <= column <= 218  # the spot, in the photo's own pixels
    dialog.worst_up_close()
    assert dialog.visible_span() == pytest.approx(256, rel=0.05)
    dialog.fit()
    assert dialog.visible_span() >= 300
    if importlib.util.find_spec("onnxruntime") is not None:  # File → Export model: for the photos shown
        from egbad_gui import exports

        with qtbot.waitSignal(window.exported, timeout=120_000):
            exports.export_model(window, str(tmp_path / "exported"))
        spec = json.loads((tmp_path / "exported" / "model.json").read_text())
        assert spec["input"]["shape"] == [1, 1, 300, 420]  # three of the four test photos' size, not the odd one's
    window.close()
    assert not window.runner.any_running()


def test_egbad_detect_refuses_a_missing_region_of_interest_in_one_line(photo_model, tmp_path, capsys):
    from egbad_core.cli import main

    root, path, _ = photo_model
    code = main(["detect", "--checkpoint", str(path), "--data", str(root), "--roi", str(tmp_path / "none.png"),
                 "--out-dir", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "none.png does not exist" in err[0]


def test_a_region_drawn_over_a_polygon_is_kept_as_roi_png_atomically_and_removed(photo_model, tmp_path):
    root, _, _ = photo_model
    folder = _copy(root, tmp_path)
    source = session.parse_source(str(folder))
    picture, path = session.example_picture(source)
    assert picture.shape == (300, 420, 3) and path.parent.name == "good"
    inside = session.polygon_region([(210, 0), (420, 0), (420, 300), (210, 300)], picture.shape[:2])
    assert inside[:, 210:].all() and not inside[:, :209].any()  # the right half, its edge included
    region = session.save_region(source, inside)
    assert region.path == folder / "roi.png" and region.share == pytest.approx(0.5, abs=0.01)
    assert not list(folder.glob(".roi.png*"))  # written through a temp file, none left
    assert session.folder_region(source).share == region.share
    with pytest.raises(EgbadError, match="encloses no part of the image"):
        session.polygon_region([(5, 5), (6, 6)], (300, 420))
    assert session.remove_region(source) and not (folder / "roi.png").exists() and not session.remove_region(source)


def test_the_window_draws_a_region_that_detection_then_keeps_to(qtbot, photo_model, tmp_path):
    pytest.importorskip("pytestqt")
    from conftest import open_window
    from egbad_gui import region_dialog

    root, path, _ = photo_model
    folder = _copy(root, tmp_path)
    demo = open_window(qtbot, tmp_path / "demo")
    assert not demo.region_action.isEnabled()  # the demo is no folder to keep a region beside
    demo.close()
    window = _window_on(qtbot, tmp_path, path, folder)
    assert window.region_action.isEnabled()
    window.region_action.trigger()
    dialog = window.region_dialog
    assert not dialog.remove_button.isEnabled()  # nothing kept yet
    dialog.polygon.setPoints([(0, 0), (150, 0), (150, 300), (0, 300)])  # the left part, away from the spot
    with qtbot.waitSignal(window.region_changed, timeout=10_000):
        dialog.save_button.click()
    assert (folder / "roi.png").is_file() and "marks 36% of each image" in window.statusBar().currentMessage()
    with qtbot.waitSignal(window.detection_ready, timeout=120_000):
        window.detect()
    detection = window.detection
    assert detection.region is not None and detection.region.share == pytest.approx(151 / 420, abs=0.01)
    assert (detection.scores.places()[:, 1] <= 150 * 32 / 420 + 1).all()  # every worst place inside (thumbnails)
    region_dialog.draw_region(window)
    assert window.region_dialog.remove_button.isEnabled()
    with qtbot.waitSignal(window.region_changed, timeout=10_000):
        window.region_dialog.remove_button.click()
    assert not (folder / "roi.png").exists()
    window.close()


def test_a_photo_models_good_scores_are_held_out_photos_scored_whole_as_detect_scores_them(photo_model):
    from egbad_core.train.references import held_photo_rows, reference_inputs

    root, path, trainer = photo_model
    checkpoint = session.load_checkpoint(path)
    rows = held_photo_rows(len(trainer.images), checkpoint.settings).tolist()
    assert len(rows) == 2 and checkpoint.train_stats.count == 2  # a quarter of the 8 photos, whole
    request = ScoreRequest(checkpoint)
    whole = sorted(run_to_end(photo_scoring_task(request, trainer.images[row].cpu())).score for row in rows)
    assert list(checkpoint.train_stats.scores) == pytest.approx(whole, rel=1e-5)
    windows, held_last = reference_inputs(trainer.images, checkpoint.settings)
    assert held_last == 64 and windows.shape[-1] == 32  # the units from windows of the held-out photos
    assert len(windows) - held_last == 6 * 10 * 14  # the banks' windows: every place of each of the 6 bank photos
