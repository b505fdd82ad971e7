"""Aligned parts (issue 19): the automatic choice, the same-place comparison, the moments' detail,
and what a user is told about sizes, alignment and memory."""

import numpy as np
import pytest
import torch
from PIL import Image

from egbad_core import session
from egbad_core.config import ModelConfig, PATCH_PRESET, replace
from egbad_core.errors import EgbadError
from egbad_core.events import run_to_end

ALIGNED_TINY = replace(
    PATCH_PRESET,
    model=ModelConfig(image_size=16, width=8, latent_size=8, spectral_norm=True, working_size=64),
    train=replace(PATCH_PRESET.train, epochs=1, refine_epochs=1, batch_size=16, crops_per_image=2, device="cpu",
                  preview_images=4),
    score=replace(PATCH_PRESET.score, memory_size=256, reference_images=16, batch_size=64, same_place=True,
                  shape_window=0),  # as `auto` sets aligned parts
)


def part(rng, missing=False, size=64, shift=1):
    """Two white blocks on a dark part, in a fixture with a pixel of jitter; ``missing`` leaves the
    left one out, so that place shows the background that is normal all around it."""
    image = np.full((size, size), 40.0)
    dy, dx = rng.integers(-shift, shift + 1, 2)
    if not missing:
        image[12 + dy : 28 + dy, 10 + dx : 26 + dx] = 220
    image[36 + dy : 52 + dy, 38 + dx : 54 + dx] = 220
    return (image + rng.normal(0, 6, image.shape)).clip(0, 255).astype(np.uint8)


def aligned_folder(root, train=16):
    rng = np.random.default_rng(0)
    for folder in ("train/good", "test/good", "test/missing"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i in range(train):
        Image.fromarray(part(rng)).save(root / "train/good" / f"{i:03d}.png")
    for i in range(4):
        Image.fromarray(part(rng)).save(root / "test/good" / f"{i:03d}.png")
        Image.fromarray(part(rng, missing=True)).save(root / "test/missing" / f"{i:03d}.png")
    return root


def test_the_distance_to_the_same_place_is_the_nearest_training_image_there_or_one_step_away():
    from egbad_core.score.same_place import lay_out, place_distance

    train = torch.zeros(3, 2, 5, 5)
    train[1, :, 2, 3] = 4.0  # one training image has a bright place at (2, 3)
    test = torch.zeros(1, 2, 5, 5)
    test[0, :, 2, 2] = 4.0  # the test image has it one step to the left: forgiven
    test[0, :, 0, 0] = 3.0  # and a place no training image has near (0, 0)
    found = place_distance(test, lay_out(train))
    assert found[0, 2, 2] == pytest.approx(0.0, abs=1e-5)
    assert found[0, 0, 0] == pytest.approx(np.hypot(3.0, 3.0), abs=1e-4)
    assert place_distance(test, lay_out(train), reach=0)[0, 2, 2] == pytest.approx(np.hypot(4.0, 4.0), abs=1e-4)



@pytest.mark.parametrize("reach", [0, 1, 2])
def test_the_same_place_distance_is_the_brute_force_search_on_random_moments(reach):
    from egbad_core.score.same_place import lay_out, place_distance

    rng = torch.Generator().manual_seed(reach)
    test, train = torch.randn(3, 4, 7, 6, generator=rng), torch.randn(5, 4, 7, 6, generator=rng)
    expected = torch.full((3, 7, 6), float("inf"))
    for y in range(7):
        for x in range(6):
            for yy in range(max(0, y - reach), min(7, y + reach + 1)):
                for xx in range(max(0, x - reach), min(6, x + reach + 1)):
                    gaps = (test[:, :, y, x][:, None] - train[None, :, :, yy, xx]).square().sum(dim=2)
                    expected[:, y, x] = torch.minimum(expected[:, y, x], gaps.min(dim=1).values)
    assert torch.allclose(place_distance(test, lay_out(train), reach), expected.sqrt(), atol=1e-5)

def test_the_moments_detail_falls_where_a_surface_is_blurred():
    from egbad_core.score.moments import local_moments

    rng = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 32, 32, generator=rng)
    blurred = x.clone()
    blurred[..., 8:24, 8:24] = 0.5  # what a smear leaves: the mean kept, the grain gone
    plain, smeared = local_moments(x, 8, detail=True), local_moments(blurred, 8, detail=True)
    assert plain.shape == (1, 9, 8, 8)  # mean, spread and detail of each channel
    assert smeared[0, 6:, 3, 3].max() < 0.01 < plain[0, 6:, 3, 3].min()
    assert torch.equal(local_moments(x, 8), plain[:, :6])  # without detail: as checkpoints before it


def test_the_logged_detail_tells_a_smear_by_the_same_drop_on_a_busy_and_a_quiet_surface():
    from egbad_core.score.moments import local_moments

    rng = torch.Generator().manual_seed(1)
    grain = torch.rand(1, 1, 32, 32, generator=rng) - 0.5
    busy, quiet = 0.5 + grain, 0.5 + 0.1 * grain  # the same grain at a tenth of the contrast
    drops = []
    for surface in (busy, quiet):
        smeared = surface.clone()
        smeared[..., 8:24, 8:24] = 0.5 + 0.2 * (smeared[..., 8:24, 8:24] - 0.5)  # a blur leaves a fifth of the grain
        plain, after = local_moments(surface, 8, True, floor=1e-4), local_moments(smeared, 8, True, floor=1e-4)
        drops.append(float(plain[0, 2, 3, 3] - after[0, 2, 3, 3]))
    linear = [float(local_moments(s, 8, True)[0, 2, 3, 3]) for s in (busy, quiet)]
    assert drops[0] == pytest.approx(drops[1], rel=0.05)  # log(5) on both
    assert drops[0] == pytest.approx(np.log(5.0), rel=0.05)
    assert linear[0] > 5 * linear[1]  # where a plain difference is ten times smaller on the quiet one
    with pytest.raises(EgbadError, match="detail floor"):
        replace(PATCH_PRESET.score, detail_floor=-1.0).validate()


def test_a_missing_piece_is_found_at_its_place_though_its_look_is_normal_elsewhere(tmp_path):
    from egbad_core.score.local import local_maps, raw_maps
    from egbad_core.score.local_reference import build_patch_reference
    from egbad_core.score.same_place import lay_out
    from egbad_core.model.networks import Networks

    root = aligned_folder(tmp_path / "part")
    train = run_to_end(session.load_data({"data": str(root)}, 64)).train
    torch.manual_seed(0)
    networks = Networks(ALIGNED_TINY.model).place("cpu")
    networks.eval()
    config, norm = ALIGNED_TINY.score, ALIGNED_TINY.normalisation
    reference, _ = build_patch_reference(networks, train.pixels, norm, config)
    assert reference.places.shape == (12, 6, 16, 16)  # the bank's images (a quarter held out), place by place:
    # mean, spread and detail over 8 px and over 32 (gray images)
    assert reference.moments is None  # instead of a bank of every place's moments
    everywhere = replace(config, same_place=False)
    texture_reference, _ = build_patch_reference(networks, train.pixels, norm, everywhere)
    test = run_to_end(session.load_data({"data": str(root)}, 64)).test
    x = norm.apply(test.pixels)
    with torch.inference_mode():
        raw = raw_maps(networks, x, config, reference, lay_out(reference.places))
        bank = raw_maps(networks, x, everywhere, texture_reference)
    missing = torch.tensor([label == "missing" for label in test.labels])
    left = (slice(None), slice(14, 26), slice(12, 24))  # where the left block belongs
    same = raw.same_place[left].flatten(1).max(dim=1).values
    anywhere = bank.moments[left].flatten(1).max(dim=1).values
    assert same[missing].min() > 3 * same[~missing].max()  # the same place: the gap stands out
    assert anywhere[missing].max() < 2 * anywhere[~missing].max()  # any place: dark is normal somewhere
    d = local_maps(raw, reference, config)[1]
    assert d[missing].flatten(1).max(dim=1).values.min() > d[~missing].flatten(1).max(dim=1).values.max()
    payload = reference.to_payload()
    assert payload["places"].dtype == torch.float16
    from egbad_core.model.references import PatchReference

    again = PatchReference.from_payload(payload)
    assert torch.allclose(again.places, reference.places, rtol=1e-2, atol=1e-2) and again.place_spread == reference.place_spread


def test_auto_compares_aligned_parts_place_by_place_and_says_so(tmp_path):
    root = aligned_folder(tmp_path / "part", train=12)
    for i in range(12):  # up to the patch side: the tiny folder's 64 px, enlarged to 128
        picture = Image.open(root / "train/good" / f"{i:03d}.png")
        picture.resize((128, 128)).save(root / "train/good" / f"{i:03d}.png")
    preset, reason = session.choose_preset("auto", source=session.parse_source(str(root)))
    assert preset.name == "patch" and preset.score.same_place and preset.model.working_size == 128
    assert preset.score.memory_size == 2048 < PATCH_PRESET.score.memory_size  # the same place finds most there
    assert preset.score.shape_window == 0 < PATCH_PRESET.score.shape_window  # a surface's bank only
    assert "line up with one another" in reason and "the same place" in reason


def test_shading_shared_by_texture_crops_is_not_taken_for_alignment(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "shaded" / "train" / "good"
    folder.mkdir(parents=True)
    photo = rng.normal(120, 20, (400, 400)) + np.linspace(-60, 60, 400)[:, None]  # grain under a gradient
    for i in range(24):
        y, x = rng.integers(0, 272), rng.integers(0, 272)
        band = photo[y : y + 128, x : x + 128] + np.linspace(-50, 50, 128)[:, None]  # the light falls off too
        Image.fromarray(band.clip(0, 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    choice = session.choose_automatically(session.parse_source(str(tmp_path / "shaded")))
    assert choice.name == "patch" and not choice.same_place and "do not line up" in choice.reason


def test_loosely_aligned_images_are_told_the_same_place_comparison_was_left_out(tmp_path):
    rng = np.random.default_rng(2)
    folder = tmp_path / "loose" / "train" / "good"
    folder.mkdir(parents=True)
    for i in range(24):  # one bar, but anywhere within 30 px
        image = rng.normal(60, 5, (128, 128))
        y, x = rng.integers(30, 60, 2)
        image[y : y + 30, x : x + 40] += 120
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    choice = session.choose_automatically(session.parse_source(str(tmp_path / "loose")))
    assert choice.name == "patch" and not choice.same_place
    assert "line up only loosely" in choice.reason and "left out" in choice.reason


def test_images_of_differing_sizes_and_too_small_ones_are_named(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / "mixed" / "train" / "good"
    folder.mkdir(parents=True)
    for i, side in enumerate([300] * 9 + [200, 150]):
        Image.fromarray(rng.integers(0, 255, (side, side + 20), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    reason = session.choose_automatically(session.parse_source(str(tmp_path / "mixed"))).reason
    assert "range from 150 to 300 px" in reason and "resized to 256×256" in reason
    assert "2 of them are smaller than 256 px" in reason and "010.png (150 px), 009.png (200 px)" in reason


def test_a_working_size_the_memory_cannot_hold_is_refused_with_the_size_that_fits():
    from egbad_core.data.folders import check_fits

    check_fits(300, 256, "parts/train/good", free=2**30)  # 118 MB of images in 1 GB: fine
    with pytest.raises(EgbadError, match=r"300 images of parts/train/good at 4096×4096 px needs about 28.1 GB "
                                         r"of memory and 1.0 GB is free; a working size of 512 px fits"):
        check_fits(300, 4096, "parts/train/good", free=2**30)


def test_the_coarse_window_finds_a_stain_whose_every_small_window_looks_like_a_darker_part_of_the_surface():
    from egbad_core.score.moments import local_moments

    y, x = torch.meshgrid(torch.arange(96), torch.arange(96), indexing="ij")
    surface = torch.where(((y // 16) + (x // 16)) % 2 == 0, 0.85, 0.25).float()[None, None]  # 16-px tiles
    stained = surface.clone()
    stained[..., 32:64, 32:64] = 0.4 * stained[..., 32:64, 32:64] + 0.6 * 0.25  # a dark blob, 60% opaque
    plain, after = local_moments(surface, 8, coarse=24), local_moments(stained, 8, coarse=24)
    assert plain.shape == (1, 4, 24, 24)  # mean and spread over 8 px, then over 24 px, on one grid
    inside = (slice(9, 15), slice(9, 15))  # places well inside the blob
    fine_normal, coarse_normal = plain[0, 0][2:-2, 2:-2], plain[0, 2][3:-3, 3:-3]
    assert fine_normal.min() <= after[0, 0][inside].min() and after[0, 0][inside].max() <= fine_normal.max()
    assert after[0, 2][inside].max() < coarse_normal.min() - 0.03  # no 24-px window of the surface is that dark
    with pytest.raises(EgbadError, match="coarse window"):
        replace(PATCH_PRESET.score, coarse_window=6).validate()



def test_a_veil_keeps_the_shape_windows_layout_at_a_fraction_of_its_spread_which_no_normal_place_has():
    from egbad_core.score.moments import SHAPE_FLOOR, local_shapes

    generator = torch.Generator().manual_seed(3)
    y, x = torch.meshgrid(torch.arange(144), torch.arange(144), indexing="ij")
    tones = torch.rand(4, 4, generator=generator) * 0.8  # scales of varied tone between dark gaps, every 48 px again
    scales = torch.where((y % 12 < 2) | (x % 12 < 2), -0.9, tones[y // 12 % 4, x // 12 % 4]).float()
    surface = (scales + 0.05 * torch.randn(144, 144, generator=generator))[None, None]
    veiled = surface.clone()
    veiled[..., 60:96, 60:96] = 0.5 * veiled[..., 60:96, 60:96] + 0.5 * 0.2  # 50% of a mid grey over 36 px
    plain, after = local_shapes(surface, 24, 4, 36, 36), local_shapes(veiled, 24, 4, 36, 36)
    assert plain.shape == (1, 18, 36, 36)  # 16 cells' shape, their log spread, their mean
    inside = (slice(18, 21), slice(18, 21))  # places whose 24-px window lies inside the veil
    kept, was = (t[0, :16][(slice(None), *inside)] for t in (after, plain))
    layout = torch.cosine_similarity(kept, was, dim=0)
    assert layout.min() > 0.99  # the same layout (a little flatter: the floor weighs more at half the spread)
    spread_plain, spread_veiled = (torch.exp(t[0, 16][inside] / 2) - SHAPE_FLOOR for t in (plain, after))
    assert torch.allclose(spread_veiled, 0.5 * spread_plain, rtol=0.02)  # kept at half its contrast
    # a normal place's like is 48 px away; no normal place is as near a veiled one
    normal = plain[0][:, 3:33, 3:33].flatten(1).t()
    among = torch.cdist(normal, normal).fill_diagonal_(float("inf")).amin(1).max()
    veil = after[0][(slice(None), *inside)].flatten(1).t()
    assert torch.cdist(veil, plain[0].flatten(1).t()).amin(1).min() > 3 * among


def test_the_shape_windows_cells_are_their_pixels_mean_about_each_place_of_the_moments_grid():
    from egbad_core.config import ScoreConfig
    from egbad_core.score.moments import SHAPE_FLOOR, moments_of

    x = torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(4))
    config = ScoreConfig(moment_window=8, moment_detail=True, detail_floor=0.01, coarse_window=32, shape_window=24)
    found = moments_of(x, config)
    assert found.shape == (2, 18 + 18, 16, 12)  # each channel's six moments, then the gray layout's 18
    gray = x.mean(dim=1)
    row, column = 7, 5  # a place inside the frame: its window is rows 30−12 … 30+12 (centre 4·7 + 2)
    window = gray[:, 4 * row + 2 - 12 : 4 * row + 2 + 12, 4 * column + 2 - 12 : 4 * column + 2 + 12]
    cells = window.reshape(2, 4, 6, 4, 6).mean(dim=(2, 4)).reshape(2, 16)
    spread = cells.std(dim=1)
    expected = (cells - cells.mean(dim=1, keepdim=True)) / (spread[:, None] + SHAPE_FLOOR) / 4
    assert torch.allclose(found[:, 18:34, row, column], expected, atol=1e-4)
    assert torch.allclose(found[:, 34, row, column], 2 * torch.log(spread + SHAPE_FLOOR), atol=1e-4)
    assert torch.allclose(found[:, 35, row, column], cells.mean(dim=1), atol=1e-5)
    # A place by the frame's edge takes the window moved in to lie inside it: the corner's is the
    # top right 24 px, the same for the places whose windows would reach out past it.
    corner = gray[:, :24, 24:].reshape(2, 4, 6, 4, 6).mean(dim=(2, 4)).reshape(2, 16)
    assert torch.allclose(found[:, 35, 0, -1], corner.mean(dim=1), atol=1e-5)
    assert torch.equal(found[:, 18:, 0, -1], found[:, 18:, 2, -3])  # centres 10 and 38: both moved to the edge
    assert not torch.equal(found[:, 18:, 3, -4], found[:, 18:, 2, -3])  # centre 14 and 34: inside already
    with pytest.raises(EgbadError, match="shape window"):
        replace(PATCH_PRESET.score, shape_window=22).validate()


def test_the_layouts_of_an_image_scored_whole_lie_on_the_feature_grid_never_coarser_than_the_moments():
    from egbad_core.config import ScoreConfig
    from egbad_core.score.moments import layout_step, layouts_of, moments_of

    config = ScoreConfig(moment_window=8, moment_detail=True, detail_floor=0.01, coarse_window=32, shape_window=24,
                         feature_grid=64)
    assert [layout_step(side, side, config) for side in (32, 96, 128, 256, 512)] == [1, 2, 2, 4, 4]
    assert layout_step(128, 128, replace(config, feature_grid=0)) == 4  # no grid asked for: the moments'
    x = torch.rand(2, 1, 128, 96, generator=torch.Generator().manual_seed(5))
    found = layouts_of(x, config)
    assert found.shape == (2, 18, 64, 48)  # a place every 2 px
    row, column = 20, 15  # centre (2·20 + 1, 2·15 + 1): the window rows 29 … 52, columns 19 … 42
    cells = x[:, 0, 29:53, 19:43].reshape(2, 4, 6, 4, 6).mean(dim=(2, 4)).reshape(2, 16)
    assert torch.allclose(found[:, 17, row, column], cells.mean(dim=1), atol=1e-5)
    # at 256 px the grids are one: the layouts are those the moments' description holds beside them
    big = torch.rand(1, 1, 256, 256, generator=torch.Generator().manual_seed(6))
    assert torch.allclose(layouts_of(big, config), moments_of(big, config)[:, -18:], atol=1e-6)
    assert moments_of(big, config, layouts=False).shape[1] == 6


@pytest.mark.parametrize("coarse", [16, 32])
def test_the_coarse_windows_built_from_the_fine_ones_are_the_plain_windows_to_the_frame_edges(coarse):
    import torch.nn.functional as F

    from egbad_core.score.moments import local_moments

    x = torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(2))
    pad = (coarse - 4) // 2

    def pooled(values):  # one 2-D pass, the frame's padding left out of each count
        return F.avg_pool2d(values, coarse, stride=4, padding=pad, count_include_pad=False)

    mean = pooled(x)
    detail = pooled((x - F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)).abs())
    expected = torch.cat([mean, (pooled(x * x) - mean.square()).clamp_min(0).sqrt(), torch.log(detail + 0.01)], dim=1)
    found = local_moments(x, 8, True, 0.01, coarse)
    assert found.shape == (2, 18, 16, 12)
    assert torch.allclose(found[:, 9:], expected, atol=1e-4)


def test_a_checkpoints_places_are_laid_out_once_and_new_places_get_their_own():
    from egbad_core.score.same_place import lay_out, laid_out

    places = torch.rand(3, 4, 5, 6)
    first = laid_out(places)
    assert laid_out(places) is first and torch.equal(first, lay_out(places))
    other = torch.rand(3, 4, 5, 6)
    assert torch.equal(laid_out(other), lay_out(other)) and laid_out(other) is not first
