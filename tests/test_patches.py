"""Patch models: training on crops, local scoring, anomaly maps, masks and pixel metrics."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from egbad_core import session
from egbad_core.score import metrics
from egbad_core.config import PATCH_PRESET, ModelConfig, replace
from egbad_core.events import run_to_end
from egbad_core.errors import EgbadError

TINY_PATCH = replace(
    PATCH_PRESET,
    model=ModelConfig(image_size=16, width=8, latent_size=8, spectral_norm=True, working_size=32),
    train=replace(PATCH_PRESET.train, epochs=1, refine_epochs=1, batch_size=16, crops_per_image=2, device="cpu",
                  preview_images=4),
    # the layouts' bank as before the preset's 8,192: an exported photo graph unrolls its search
    score=replace(PATCH_PRESET.score, memory_size=64, reference_images=12, batch_size=64, shape_memory_size=4096),
)


def texture_folder(root, train=12, test=4, size=40, masks=True, rng_seed=0):
    """Random crops of one noise 'photo'; defects are bright squares, with masks."""
    rng = np.random.default_rng(rng_seed)
    photo = rng.normal(110, 25, (200, 200)).clip(0, 255)

    def crop():
        y, x = rng.integers(0, 200 - size, 2)
        return photo[y : y + size, x : x + size].copy()

    for folder in ("train/good", "test/good", "test/spot", "ground_truth/spot"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i in range(train):
        Image.fromarray(crop().astype(np.uint8)).save(root / "train/good" / f"{i:03d}.png")
    for i in range(test):
        Image.fromarray(crop().astype(np.uint8)).save(root / "test/good" / f"{i:03d}.png")
        damaged, mask = crop(), np.zeros((size, size), np.uint8)
        damaged[10:18, 12:20], mask[10:18, 12:20] = 255, 255
        Image.fromarray(damaged.astype(np.uint8)).save(root / "test/spot" / f"{i:03d}.png")
        if masks:
            Image.fromarray(mask).save(root / "ground_truth/spot" / f"{i:03d}_mask.png")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = texture_folder(tmp_path_factory.mktemp("tex") / "surface")
    source = session.parse_source(str(root))
    path = root.parent / "patch.pt"
    trainer = session.make_trainer(source, path, TINY_PATCH)
    events = list(trainer.run())
    return root, source, session.load_checkpoint(path), trainer, events


def test_a_patch_model_trains_on_crops_of_the_working_size_images(trained):
    _, _, checkpoint, trainer, events = trained
    config = checkpoint.networks.config
    assert (config.image_size, config.working_size, config.load_size) == (16, 32, 32)
    assert trainer.images.shape[-1] == 32 and trainer.samples_per_epoch() == 24  # 12 images × 2 crops
    iterations = [e for e in events if type(e).__name__ == "IterationEvent"]
    assert len(iterations) == 4 and events[-1].reason == "completed"  # a GAN epoch and a refinement epoch
    assert type(checkpoint.reference).__name__ == "PatchReference" and checkpoint.reference.features.shape[0] <= 64


def test_crops_come_from_torchvision_and_repeat_with_the_generator():
    from egbad_core.train.crops import CropSampler

    images = torch.rand(5, 1, 32, 32)
    sampler = CropSampler(16)
    first = sampler.epoch(images, 3, torch.Generator().manual_seed(1))
    again = sampler.epoch(images, 3, torch.Generator().manual_seed(1))
    assert first.shape == (15, 1, 16, 16) and torch.equal(first, again)
    state = torch.random.get_rng_state()
    sampler.epoch(images, 1, torch.Generator().manual_seed(2))
    assert torch.equal(state, torch.random.get_rng_state())  # the global generator is left alone


def test_every_scored_image_has_a_map_at_the_working_size_and_a_worst_place(trained, tmp_path):
    root, source, checkpoint, _, _ = trained
    detection = run_to_end(session.detect(session.ScoreRequest(checkpoint), source))
    scores = detection.scores
    assert scores.residual_maps.shape == (8, 32, 32)
    flat = scores.residual_maps.reshape(8, -1)
    assert np.allclose(scores.score, flat.max(axis=1), rtol=1e-4, atol=1e-4)  # the image scores by its worst place
    lam = scores.lam
    assert np.allclose(scores.score, (1 - lam) * scores.residual + lam * scores.discrimination)
    places = detection.worst_places()
    assert places.shape == (8, 2) and (places >= 0).all() and (places < 40).all()  # in the 40 px files' own pixels
    summary = detection.summary()
    assert summary["pixel_images"] == 8 and 0 <= summary["pixel_auroc"] <= 1 and 0 <= summary["pro"] <= 1


def test_detect_writes_maps_at_each_images_own_size_and_the_worst_place_in_the_csv(trained, tmp_path):
    root, _, _, _, _ = trained
    out, maps = tmp_path / "out", tmp_path / "maps"
    result = subprocess.run(
        [sys.executable, "-m", "egbad_core.cli", "detect", "--checkpoint", str(root.parent / "patch.pt"), "--data",
         str(root), "--out-dir", str(out), "--maps", str(maps), "--quiet"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "pixel AUROC" in result.stderr
    overlays, raws = sorted(maps.glob("*.png")), sorted(maps.glob("*.npy"))
    assert len(overlays) == len(raws) == 8
    assert Image.open(overlays[0]).size == (40, 40) and np.load(raws[0]).shape == (40, 40)
    header = (out / "scores.csv").read_text().splitlines()[0]
    assert header.endswith("flagged,worst_row,worst_col")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pro"] is not None and summary["pixel_images"] == 8


def test_masks_are_fitted_and_a_missing_one_is_named(tmp_path):
    root = texture_folder(tmp_path / "surface", train=4, test=3)
    Image.new("L", (20, 20), 0).save(root / "ground_truth/spot/000_mask.png")  # half the image's size
    grey = np.zeros((40, 40), np.uint8)
    grey[5:10, 5:10] = 200  # not black and white
    Image.fromarray(grey).save(root / "ground_truth/spot/001_mask.png")
    (root / "ground_truth/spot/002_mask.png").unlink()
    data = run_to_end(session.load_data({"data": str(root)}, 32))
    test = data.test
    notes = " ".join(test.mask_notes)
    assert "002_mask.png" in notes and "left out" in notes
    assert "thresholded at half" in notes and "resized" in notes
    spot = [i for i, image_id in enumerate(test.ids) if image_id.endswith("spot/001.png")][0]
    assert test.masks[spot].any() and test.masks.shape == (6, 32, 32)
    assert test.mask_known.sum() == 5  # three good images and two of the three defects


def test_pro_and_pixel_auroc_reward_maps_that_find_the_regions():
    masks = np.zeros((3, 24, 24), bool)
    masks[0, 2:5, 2:5] = True
    masks[1, 10:20, 3:6] = True
    rng = np.random.default_rng(0)
    perfect = masks + rng.random(masks.shape) * 0.5
    assert metrics.pro(perfect, masks) == pytest.approx(1.0) and metrics.pixel_auroc(perfect, masks) == 1.0
    blind = rng.random(masks.shape)
    assert metrics.pro(blind, masks) < 0.3 and abs(metrics.pixel_auroc(blind, masks) - 0.5) < 0.1
    assert metrics.pro(blind, np.zeros_like(masks)) is None


def test_the_coreset_keeps_rare_normal_patterns():
    from egbad_core.score.local_reference import greedy_coreset

    common = torch.randn(500, 4) * 0.1
    rare = torch.randn(5, 4) * 0.1 + 10.0
    chosen = greedy_coreset(torch.cat([common, rare]), 20)
    assert len(set(chosen.tolist())) == 20 and (chosen >= 500).any()  # a random 20 would miss them


def test_a_place_found_in_one_image_only_reaches_the_candidates_the_bank_is_chosen_from():
    from egbad_core.score.local_reference import distinct_places

    described = torch.randn(40, 4, 16, 16) * 0.1  # 40 images of 256 places, all alike
    described[17, :, 3, 5] += 10.0  # one rare place in one image
    quick = distinct_places(described, 8, None, torch.Generator().manual_seed(0))
    thorough = distinct_places(described, 8, 0, torch.Generator().manual_seed(0))
    assert thorough.shape == quick.shape == (40 * 8, 4)
    assert (thorough.abs() > 5).any(dim=1).sum() == 1  # kept, as each image's own coreset keeps it
    assert not (quick.abs() > 5).any()  # an image's random 8 of 256 (the quick bank's) miss it
    assert distinct_places(described[:2], 300, 0, torch.Generator()).shape == (2 * 256, 4)  # few: all kept


def test_images_smaller_than_a_patch_are_refused_by_name(tmp_path):
    root = texture_folder(tmp_path / "surface", train=4, test=1, size=40)
    Image.fromarray(np.zeros((12, 30), np.uint8)).save(root / "train/good/tiny.png")
    with pytest.raises(EgbadError, match=r"tiny.png is 30×12 px, smaller than the 16×16 patches"):
        session.make_trainer(session.parse_source(str(root)), None, TINY_PATCH)


def test_auto_picks_the_patch_preset_from_96_px_and_the_same_place_for_aligned_parts(tmp_path):
    from conftest import write_folder

    texture = texture_folder(tmp_path / "surface", train=20, test=1, size=128)
    choice = session.choose_automatically(session.parse_source(str(texture)))
    assert choice.name == "patch" and choice.working_size == 128 and "do not line up" in choice.reason
    small = write_folder(tmp_path / "small")  # 40×30 images
    assert session.choose_automatically(session.parse_source(str(small))).name == "default"
    aligned = tmp_path / "aligned" / "train" / "good"
    aligned.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(12):  # the same part, always in the same place
        part = np.full((128, 128), 40.0)
        part[30:100, 50:80] = 220
        Image.fromarray((part + rng.normal(0, 8, part.shape)).clip(0, 255).astype(np.uint8)).save(aligned / f"{i}.png")
    choice = session.choose_automatically(session.parse_source(str(tmp_path / "aligned")))
    assert choice.name == "patch" and choice.same_place and "line up with one another" in choice.reason
    assert session.choose_automatically(session.parse_source("demo")).name == "default"
    preset, reason = session.choose_preset("auto", source=session.parse_source(str(texture)))
    assert preset.name == "patch" and preset.model.working_size == 128 and reason.startswith("Preset auto: patch")
    assert not preset.score.same_place and preset.score.line_length == 7  # a surface's even lines
    assert preset.score.shape_memory_size == 8192  # the layouts' bank for 128-px textures' small veils
    large, _ = session.choose_preset("auto", image_size=256, source=session.parse_source(str(texture)))
    assert large.model.working_size == 256 and large.score.shape_memory_size == 4096  # a veil fills the window there
    asked, _ = session.choose_preset("patch", image_size=256, overrides=["score.shape_memory_size=6000"])
    assert asked.score.shape_memory_size == 6000
    parts, _ = session.choose_preset("auto", source=session.parse_source(str(tmp_path / "aligned")))
    assert parts.score.same_place and parts.score.line_length == 0  # the same place instead


def test_local_moments_are_each_windows_mean_and_spread_on_a_half_window_grid():
    from egbad_core.score.moments import local_moments

    x = torch.rand(2, 3, 32, 32)
    moments = local_moments(x, 8)
    assert moments.shape == (2, 6, 8, 8)  # mean and spread of each channel, a place every 4 pixels
    window = x[1, 2, 2:10, 2:10]  # the place at row 1, column 1 (padding 2)
    assert moments[1, 2, 1, 1] == pytest.approx(float(window.mean()), abs=1e-5)
    assert moments[1, 5, 1, 1] == pytest.approx(float(window.std(unbiased=False)), abs=1e-4)
    assert local_moments(torch.full((1, 1, 16, 16), 0.3), 4)[0, 1].abs().max() < 1e-3  # flat: no spread
    odd = torch.rand(1, 2, 30, 37)
    found = local_moments(odd.contiguous(memory_format=torch.channels_last), 8)
    assert found.shape == (1, 4, 7, 9) and torch.allclose(found, local_moments(odd, 8))
    corner = odd[0, 1, 22:30, 30:37]  # the last place's window (from 6·4 − 2, 8·4 − 2), inside the frame
    assert found[0, 1, -1, -1] == pytest.approx(float(corner.mean()), abs=1e-5)
    assert found[0, 3, -1, -1] == pytest.approx(float(corner.std(unbiased=False)), abs=1e-4)


def test_dis_is_the_further_out_of_the_two_descriptions_each_in_its_own_units():
    from egbad_core.config import ScoreConfig
    from egbad_core.model.references import PatchReference
    from egbad_core.score.local import RawMaps, local_maps

    config = ScoreConfig(lam=0.5, map_smoothing=0)
    features, moments = torch.zeros(1, 4, 4), torch.zeros(1, 4, 4)
    features[0, 0, 0], moments[0, 3, 3] = 5.0, 9.0
    reference = PatchReference(torch.zeros(2, 3), 0.0, 1.0, 1.0, 2.0, torch.zeros(2, 2), 3.0, 3.0)
    raw = RawMaps(torch.zeros(1, 1, 4, 4), torch.zeros(1, 4, 4), features, moments)
    r, d, maps = local_maps(raw, reference, config)
    assert d[0, 0, 0] == pytest.approx(2.0) and d[0, 3, 3] == pytest.approx(2.0)  # (5 − 1) / 2 and (9 − 3) / 3
    assert d[0, 1, 1] == pytest.approx(-0.5)  # the features' −0.5 beats the moments' −1
    assert torch.allclose(maps, 0.5 * r + 0.5 * d)
    without = local_maps(RawMaps(raw.reconstruction, raw.residual, features, None), reference, config)[1]
    assert without[0, 3, 3] == pytest.approx(-0.5)  # no moments term: the features alone


def test_the_patch_checkpoint_keeps_a_moments_bank_and_one_written_without_it_still_scores(trained, tmp_path):
    from egbad_core.model.references import PatchReference

    root, source, checkpoint, _, _ = trained
    reference = checkpoint.reference
    # a gray image's mean, spread and detail over 8 px and over 32; its layouts over 24 px (18) in a bank of their own
    assert checkpoint.settings.score.moment_window == 8 and reference.moments.shape[1] == 6 and reference.places is None
    assert reference.shapes.shape[1] == 18 and reference.shape_spread > 0
    from egbad_core.config import ScoreConfig, from_dict, to_dict

    written_before = {k: v for k, v in to_dict(checkpoint.settings.score).items()
                      if k not in ("detail_floor", "coarse_window", "shape_window")}
    before = from_dict(ScoreConfig, written_before)  # a checkpoint of last week: its banks' three columns
    assert (before.detail_floor, before.coarse_window, before.shape_window) == (0.0, 0, 0)
    payload = reference.to_payload()
    again = PatchReference.from_payload(payload)
    assert torch.equal(again.moments, reference.moments) and again.moment_spread == reference.moment_spread
    assert torch.equal(again.shapes, reference.shapes) and again.shape_mean == reference.shape_mean
    older = {"kind": payload["kind"], "features": payload["features"], "stats": payload["stats"][:4]}
    old = PatchReference.from_payload(older)  # as written before the moments term
    assert old.moments is None
    from dataclasses import replace as changed

    detection = run_to_end(session.detect(session.ScoreRequest(changed(checkpoint, reference=old)), source))
    assert np.isfinite(detection.scores.score).all() and detection.scores.residual_maps.shape == (8, 32, 32)
    with pytest.raises(ValueError):
        PatchReference.from_payload({**older, "moments": payload["moments"]})  # a bank without its spread


def test_layouts_are_a_term_of_their_own_and_a_checkpoint_that_held_them_in_the_moments_bank_still_scores(trained):
    from dataclasses import replace as changed

    from egbad_core.score.local import local_maps, raw_maps
    from egbad_core.score.moments import layouts_of, moments_of
    from egbad_core.score.nearest import exact_distances
    from egbad_core.score.tensors import upsample

    root, source, checkpoint, _, _ = trained
    reference, config = checkpoint.reference, checkpoint.settings.score
    networks = checkpoint.networks.eval()
    test = run_to_end(session.load_data({"data": str(root)}, 32)).test
    x = checkpoint.settings.normalisation.apply(test.pixels)
    with torch.inference_mode():
        raw = raw_maps(networks, x, config, reference)
        described, layouts = moments_of(x, config), layouts_of(x, config)
    assert raw.shapes is not None and raw.shapes.shape == raw.moments.shape == (8, 32, 32)
    # the layouts' map is their distance (on their own grid, a place every pixel at 32 px) to the
    # layouts' bank alone, measured in its own units
    assert layouts.shape == (8, 18, 32, 32)
    alone = exact_distances(layouts.permute(0, 2, 3, 1).reshape(-1, 18), reference.shapes)
    assert torch.allclose(raw.shapes, alone.view(8, 32, 32), atol=1e-4)
    n, _, h, w = described.shape
    d = local_maps(raw, reference, config)[1]
    without = local_maps(changed(raw, shapes=None), reference, config)[1]
    assert (d >= without - 1e-6).all() and (d > without + 1e-3).any()  # the furthest out of the descriptions
    # The seventeenth session's checkpoints: the layouts beside the moments, one bank, searched whole.
    rows = min(len(reference.moments), len(reference.shapes))
    joined = changed(reference, moments=torch.cat([reference.moments[:rows], reference.shapes[:rows]], dim=1), shapes=None)
    with torch.inference_mode():
        old = raw_maps(networks, x, config, joined)
    assert old.shapes is None
    whole = exact_distances(described.permute(0, 2, 3, 1).reshape(-1, described.shape[1]), joined.moments)
    assert torch.allclose(old.moments, upsample(whole.view(n, h, w), (32, 32)), atol=1e-4)
    detection = run_to_end(session.detect(session.ScoreRequest(changed(checkpoint, reference=joined)), source))
    assert np.isfinite(detection.scores.score).all()


def test_the_layouts_bank_is_as_large_as_asked_and_their_map_counts_its_weight_in_units(trained):
    from dataclasses import replace as changed

    from egbad_core.score.local import local_maps, measured_terms, raw_maps
    from egbad_core.score.local_reference import build_patch_reference

    root, _, checkpoint, _, _ = trained
    networks, settings = checkpoint.networks.eval(), checkpoint.settings
    assert PATCH_PRESET.score.shape_memory_size == 8192 and PATCH_PRESET.score.shape_weight == 2.0
    data = run_to_end(session.load_data({"data": str(root)}, 32))
    config = changed(settings.score, shape_memory_size=20, moment_memory_size=30)
    reference, _ = build_patch_reference(networks, data.train.pixels, settings.normalisation, config)
    assert reference.shapes.shape[0] == 20 and reference.moments.shape[0] == 30  # each bank its own size
    x = settings.normalisation.apply(data.test.pixels)
    with torch.inference_mode():
        raw = raw_maps(networks, x, config, reference)
    once = dict(measured_terms(raw, reference, changed(config, shape_weight=1.0)))
    twice = dict(measured_terms(raw, reference, changed(config, shape_weight=2.0)))
    assert torch.allclose(twice["shapes"], 2.0 * once["shapes"])
    assert all(torch.equal(twice[name], once[name]) for name in once if name != "shapes")
    d = local_maps(raw, reference, changed(config, shape_weight=2.0))[1]
    others = torch.stack([once[name] for name in once if name not in ("residual", "shapes")]).amax(dim=0)
    assert torch.allclose(d, torch.maximum(others, 2.0 * once["shapes"]))
    with pytest.raises(EgbadError, match="layouts"):
        changed(settings.score, shape_weight=0.0).validate()
