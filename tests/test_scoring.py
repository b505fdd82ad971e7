import numpy as np
import torch

from egbad_core.checkpoints import load_checkpoint, save_checkpoint
from egbad_core.config import ScoreConfig
from egbad_core.scoring import score_anogan, score_images


def test_in_eval_mode_an_images_score_does_not_depend_on_its_batch(tiny_checkpoint):
    checkpoint = load_checkpoint(tiny_checkpoint)
    images = torch.rand(12, 1, 16, 16) * 2 - 1
    together = score_images(checkpoint.networks, images, checkpoint.normalisation, ScoreConfig(batch_size=12))
    alone = score_images(checkpoint.networks, images[3:4], checkpoint.normalisation, ScoreConfig(batch_size=1))
    other_company = score_images(checkpoint.networks, torch.cat([images[3:4], -images[:5]]), checkpoint.normalisation)
    assert np.allclose(together.score[3], alone.score[0], rtol=1e-5)
    assert np.allclose(together.score[3], other_company.score[0], rtol=1e-5)


def test_scores_are_the_seeds_formula(tiny_checkpoint):
    checkpoint = load_checkpoint(tiny_checkpoint)
    n = checkpoint.networks
    n.eval()
    x = torch.rand(3, 1, 16, 16)
    result = score_images(n, x, checkpoint.normalisation, ScoreConfig(lam=0.3))
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
    score_images(checkpoint.networks, torch.rand(2, 1, 16, 16), checkpoint.normalisation)
    assert all(m.training for m in checkpoint.networks.modules().values())


def test_a_checkpoint_round_trip_gives_identical_scores(tiny_checkpoint, tmp_path):
    first = load_checkpoint(tiny_checkpoint)
    save_checkpoint(tmp_path / "copy.pt", first)
    second = load_checkpoint(tmp_path / "copy.pt")
    images = torch.rand(5, 1, 16, 16)
    a = score_images(first.networks, images, first.normalisation)
    b = score_images(second.networks, images, second.normalisation)
    assert np.array_equal(a.score, b.score)
    assert second.train_stats == first.train_stats and second.train_stats.count == 16
    assert np.array_equal(second.iteration_losses, first.iteration_losses)


def test_anogan_search_lowers_the_score_it_optimises(tiny_checkpoint):
    checkpoint = load_checkpoint(tiny_checkpoint)
    images = torch.rand(4, 1, 16, 16) * 2 - 1
    few = score_anogan(checkpoint.networks, images, checkpoint.normalisation, ScoreConfig(anogan_steps=1))
    many = score_anogan(checkpoint.networks, images, checkpoint.normalisation, ScoreConfig(anogan_steps=60))
    assert many.method == "anogan"
    assert (many.score < few.score).all()
    assert all(p.requires_grad for p in checkpoint.networks.generator.parameters())
