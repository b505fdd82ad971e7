"""R² of reconstructions: 1 for a copy, 0 for each input's own flat tone, below 0 for worse."""

import pytest
import torch

from egbad_core.score.explained import describe_fit, explained, explained_variation, variation_sums


def test_a_copy_explains_everything_and_each_inputs_own_flat_tone_nothing():
    x = torch.rand(5, 3, 8, 8)
    x[:, 1] += 2.0  # channels of other tones: the flat alternative is each channel's own mean
    flat = x.mean(dim=(2, 3), keepdim=True).expand_as(x)
    assert explained_variation(x, x) == pytest.approx(1.0)
    assert explained_variation(x, flat) == pytest.approx(0.0, abs=1e-9)
    assert explained_variation(x, x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x)) < -1  # one grey for all channels


def test_noise_in_place_of_the_image_is_worse_than_a_flat_tone():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 16, 16, generator=generator)
    noise = torch.rand(4, 1, 16, 16, generator=generator)
    assert explained_variation(x, noise) == pytest.approx(-1.0, abs=0.15)  # independent: twice the variance


def test_sums_add_over_batches_to_the_figure_of_the_whole():
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(10, 1, 8, 8, generator=generator)
    reconstruction = x + 0.1 * torch.randn(10, 1, 8, 8, generator=generator)
    parts = [variation_sums(x[:3], reconstruction[:3]), variation_sums(x[3:], reconstruction[3:])]
    together = explained(sum(p[0] for p in parts), sum(p[1] for p in parts))
    assert together == pytest.approx(explained_variation(x, reconstruction))
    assert 0.5 < together < 1


def test_flat_inputs_cannot_be_judged_and_the_words_say_so():
    x = torch.full((2, 1, 4, 4), 0.3)
    assert explained_variation(x, x) is None
    assert "cannot be judged" in describe_fit(None)
    assert describe_fit(0.43) == "the reconstructions explain 43% of the images' variation (R² 0.43)"
    assert "none of" in describe_fit(-1.3) and "worse than a flat tone" in describe_fit(-1.3)
