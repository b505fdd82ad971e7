import numpy as np
import pytest
import torch

from conftest import TINY
from egbad_core.model.checkpoints import load_checkpoint, save_checkpoint
from egbad_core.config import ScoreConfig, replace
from egbad_core.score.anogan import score_anogan
from egbad_core.score.whole import score_images


def test_in_eval_mode_an_images_score_does_not_depend_on_its_batch(tiny_checkpoint):
    checkpoint = load_checkpoint(tiny_checkpoint)
    images = torch.rand(12, 1, 16, 16) * 2 - 1
    together = score_images(checkpoint.networks, images, checkpoint.settings.normalisation, ScoreConfig(batch_size=12))
    alone = score_images(checkpoint.networks, images[3:4], checkpoint.settings.normalisation, ScoreConfig(batch_size=1))
    other_company = score_images(checkpoint.networks, torch.cat([images[3:4], -images[:5]]), checkpoint.settings.normalisation)
    assert np.allclose(together.score[3], alone.score[0], rtol=1e-5)
    assert np.allclose(together.score[3], other_company.score[0], rtol=1e-5)


def test_scores_are_the_seeds_formula(tiny_checkpoint):
    checkpoint = load_checkpoint(tiny_checkpoint)
    n = checkpoint.networks
    n.eval()
    pixels = torch.rand(3, 1, 16, 16)
    result = score_images(n, pixels, checkpoint.settings.normalisation, ScoreConfig(lam=0.3))
    x = checkpoint.settings.normalisation.apply(pixels)
    with torch.no_grad():
        z = n.encoder(x)
        fake = n.generator(z)
        residual = (x - fake).abs().sum(dim=(1, 2, 3))
        discrimination = (n.discriminator(x, z)[1] - n.discriminator(fake, z)[1]).abs().sum(dim=1)
    assert np.allclose(result.residual, residual.numpy(), rtol=1e-5)
    assert np.allclose(result.discrimination, discrimination.numpy(), rtol=1e-5)
    assert np.allclose(result.score, 0.7 * result.residual + 0.3 * result.discrimination)
    assert result.residual_maps.shape == (3, 16, 16)
    assert np.allclose(result.residual_maps.sum(axis=(1, 2)), result.residual, rtol=1e-5)


def test_scoring_leaves_training_mode_as_it_was(tiny_checkpoint):
    checkpoint = load_checkpoint(tiny_checkpoint)
    checkpoint.networks.train()
    score_images(checkpoint.networks, torch.rand(2, 1, 16, 16), checkpoint.settings.normalisation)
    assert all(m.training for m in checkpoint.networks.values())


def test_a_checkpoint_round_trip_gives_identical_scores(tiny_checkpoint, tmp_path):
    first = load_checkpoint(tiny_checkpoint)
    save_checkpoint(tmp_path / "copy.pt", first)
    second = load_checkpoint(tmp_path / "copy.pt")
    images = torch.rand(5, 1, 16, 16)
    a = score_images(first.networks, images, first.settings.normalisation)
    b = score_images(second.networks, images, second.settings.normalisation)
    assert np.array_equal(a.score, b.score)
    assert second.train_stats == first.train_stats and second.train_stats.count == 16
    assert np.array_equal(second.iteration_losses, first.iteration_losses)


def test_anogan_search_lowers_the_score_it_optimises(tiny_checkpoint):
    checkpoint = load_checkpoint(tiny_checkpoint)
    images = torch.rand(4, 1, 16, 16) * 2 - 1
    few = score_anogan(checkpoint.networks, images, checkpoint.settings.normalisation, ScoreConfig(anogan_steps=1))
    many = score_anogan(checkpoint.networks, images, checkpoint.settings.normalisation, ScoreConfig(anogan_steps=60))
    assert many.method == "anogan"
    assert (many.score < few.score).all()
    assert all(p.requires_grad for p in checkpoint.networks.generator.parameters())


# --- the default preset's score: terms measured against the training images -----------------

DEFAULT_SCORE = ScoreConfig(
    lam=0.5, batch_size=16, residual_smoothing=1.0, residual_standardised=True, discrimination="nearest",
    standardise_terms=True,
)


def test_smoothing_keeps_a_flat_image_and_spreads_a_spot():
    from egbad_core.score.tensors import smooth

    flat = torch.full((1, 1, 9, 9), 0.3)
    assert torch.equal(smooth(flat, 0.0), flat)
    spot = torch.zeros(1, 1, 9, 9)
    spot[0, 0, 4, 4] = 1.0
    blurred = smooth(spot, 1.0)
    assert torch.allclose(smooth(flat, 1.0)[..., 3:6, 3:6], flat[..., 3:6, 3:6])
    assert abs(float(blurred.sum()) - 1.0) < 1e-5 and float(blurred.max()) < 0.2



@pytest.mark.parametrize("shape", [(2, 3, 17, 5), (3, 1, 256, 100), (1, 1, 600, 530), (1, 2, 40, 1100)])
def test_the_blur_is_a_gaussian_convolution_with_zero_padding_on_short_and_long_sides(shape):
    """Matrix products (one for a short side, blocks along a long one) give the convolution's sums,
    zero padding included, so the stored references' border pixels do not move."""
    from egbad_core.score.tensors import smooth

    images = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    for sigma in (0.7, 4.0):
        radius = max(1, int(round(2.5 * sigma)))
        steps = torch.arange(-radius, radius + 1, dtype=torch.float32)
        taps = torch.exp(-(steps**2) / (2 * sigma * sigma))
        kernel = (taps[:, None] * taps[None, :] / taps.sum() ** 2).expand(shape[1], 1, -1, -1)
        expected = torch.nn.functional.conv2d(images, kernel, padding=radius, groups=shape[1])
        assert torch.allclose(smooth(images, sigma), expected, atol=1e-5)

def test_a_pixel_that_varies_in_the_training_images_weighs_less():
    from egbad_core.model.references import Reference
    from egbad_core.score.whole import residual_terms

    spread = torch.full((1, 4, 4), 0.1)
    spread[0, 0, 0] = 1.0  # this pixel's residual varies ten times more in normal images
    reference = Reference(torch.zeros(1, 4, 4), spread, None, 1.0, 1.0)
    noisy_corner = torch.zeros(2, 1, 4, 4)
    noisy_corner[0, 0, 0, 0] = 0.5
    noisy_corner[1, 0, 2, 2] = 0.5
    maps, residual = residual_terms(noisy_corner, DEFAULT_SCORE, reference)
    assert float(residual[1]) == pytest.approx(10 * float(residual[0]))  # |0.5 / 0.1| against |0.5 / 1.0|
    assert maps.shape == (2, 4, 4)


def test_nearest_distance_skips_each_training_image_itself():
    from egbad_core.score.tensors import nearest_distance

    memory = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    assert nearest_distance(memory, memory).tolist() == [0.0, 0.0, 0.0]
    assert nearest_distance(memory, memory, torch.tensor([0, 1, 2])).tolist() == [1.0, pytest.approx(18 ** 0.5), 1.0]
    assert nearest_distance(torch.tensor([[3.0, 0.0]]), memory).tolist() == [3.0]


def test_the_reference_travels_in_the_checkpoint_and_scores_like_the_training_images(tmp_path, mnist_csv, monkeypatch):
    from egbad_core.score import whole_reference as reference_module
    from egbad_core.data.sources import DataSource
    from egbad_core.data.loading import load_test_set, load_training_set
    from egbad_core.run.scoring import run_detection
    from egbad_core.train.trainer import Trainer

    monkeypatch.setattr(reference_module, "MEMORY_IMAGES", 10)  # fewer than the training images: a sample is kept
    source = DataSource.parse(str(mnist_csv), normal_labels="7,8")
    train_set = load_training_set(source, 16)
    trainer = Trainer(train_set, replace(TINY, score=DEFAULT_SCORE), checkpoint_path=tmp_path / "m.pt")
    for _ in trainer.run():
        pass
    checkpoint = load_checkpoint(tmp_path / "m.pt")
    reference = checkpoint.reference
    assert reference is not None and reference.features.shape[0] == 10
    assert reference.residual_spread.shape == (1, 16, 16) and float(reference.residual_spread.min()) > 0
    assert reference.residual_scale > 0 and reference.discrimination_scale > 0
    # Scoring the training images again gives their recorded statistics, except the nearest-neighbour
    # term, which leaves each kept image out when the reference is built: so at most that much more.
    rescored = score_images(checkpoint.networks, trainer.images, checkpoint.settings.normalisation, DEFAULT_SCORE, reference=reference)
    assert rescored.score.mean() <= checkpoint.train_stats.mean + 1e-6
    test_set = load_test_set(source, 16, 1)
    detection = run_detection(checkpoint, test_set, "egbad", threshold="p99")
    assert detection.threshold == pytest.approx(checkpoint.train_stats.p99)
    assert np.isfinite(detection.scores.score).all() and detection.scores.residual_maps.shape == (len(test_set), 16, 16)


def test_a_score_that_needs_a_reference_says_so_without_one(tiny_checkpoint):
    from egbad_core.errors import EgbadError

    checkpoint = load_checkpoint(tiny_checkpoint)
    with pytest.raises(EgbadError, match="reference"):
        score_images(checkpoint.networks, torch.rand(2, 1, 16, 16), checkpoint.settings.normalisation, DEFAULT_SCORE)


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_folded_networks_give_the_eval_networks_outputs_and_leave_them_as_they_were(spectral_norm):
    from egbad_core.config import ModelConfig
    from egbad_core.model.inference import folded
    from egbad_core.model.networks import Networks

    torch.manual_seed(0)
    networks = Networks(ModelConfig(image_size=16, width=8, latent_size=4, spectral_norm=spectral_norm))
    networks.train()
    images = torch.rand(6, 1, 16, 16) * 2 - 1
    for _ in range(3):  # running statistics away from their initial 0 and 1, so folding has work to do
        networks.discriminator(images, networks.encoder(images))
        networks.generator(torch.randn(6, 4))
    inference = folded(networks)
    norms = [m for m in inference.generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert not norms and all(not p.requires_grad for m in inference.values() for p in m.parameters())
    assert all(m.training for m in networks.values())
    networks.eval()
    with torch.no_grad():
        z = networks.encoder(images)
        expected = [z, networks.generator(z), *networks.discriminator(images, z)]
        got = [inference.encoder(images), inference.generator(z), *inference.discriminator(images, z)]
    for a, b in zip(expected, got):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    assert all(p.requires_grad for p in networks.discriminator.parameters())


def test_a_blur_within_the_frame_keeps_a_flat_map_flat_to_its_edge():
    from egbad_core.score.tensors import smooth, smooth_within

    flat = torch.full((2, 1, 40, 30), 3.0)
    assert torch.allclose(smooth_within(flat, 6.0), flat)
    assert smooth(flat, 6.0)[0, 0, 0, 0] < 2.0  # zero padding dims the corner; within the frame does not


def test_the_moments_second_blur_lowers_a_compact_hot_place_more_than_a_wide_one():
    from egbad_core.score.local import smoothed

    yy, xx = torch.meshgrid(torch.arange(96.0), torch.arange(96.0), indexing="ij")
    compact = ((yy - 48).abs() <= 1) & ((xx - 48).abs() <= 1)
    wide = (yy - 48) ** 2 + (xx - 48) ** 2 <= 14**2
    maps = torch.stack([compact, wide]).float()
    once = ScoreConfig(map_smoothing=2.0)
    twice = ScoreConfig(map_smoothing=2.0, moment_smoothing=8.0)
    before, after = smoothed(maps, once, "moments").amax(dim=(1, 2)), smoothed(maps, twice, "moments").amax(dim=(1, 2))
    assert after[0] < 0.2 * before[0] and after[1] > 0.7 * before[1]
    assert torch.equal(smoothed(maps, twice, "features"), smoothed(maps, once, "features"))  # the other terms as they were
