import sys
from pathlib import Path

import pytest
import torch

from egbad_core.config import ModelConfig
from egbad_core.errors import EgbadError
from egbad_core.model.networks import Networks, feature_size

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))


@pytest.mark.parametrize("batch", [1, 2])
def test_shapes_of_the_default_networks(batch):
    networks = Networks(ModelConfig())
    networks.eval()  # batch 1 is only legal in eval mode (BatchNorm1d in D's z-branch)
    if batch > 1:
        networks.train()
    z = torch.randn(batch, 20)
    x = networks.generator(z)
    assert x.shape == (batch, 1, 64, 64)
    assert networks.encoder(x).shape == (batch, 20)
    logit, features = networks.discriminator(x, z)
    assert logit.shape == (batch,)
    assert features.shape == (batch, 512)


def test_default_networks_have_the_seeds_layers():
    import seed_baseline

    ours = Networks(ModelConfig())
    seed = {"generator": seed_baseline.Generator(), "encoder": seed_baseline.Encoder(), "discriminator": seed_baseline.Discriminator()}
    for name, module in ours.items():
        our_shapes = [tuple(p.shape) for p in module.parameters()]
        seed_shapes = [tuple(p.shape) for p in seed[name].parameters()]
        assert our_shapes == seed_shapes, name


@pytest.mark.parametrize("size,channels,latent", [(32, 3, 8), (128, 1, 20), (16, 3, 4)])
def test_sizes_channels_and_latent_are_configurable(size, channels, latent):
    config = ModelConfig(channels=channels, image_size=size, latent_size=latent, width=8)
    networks = Networks(config)
    networks.train()
    z = torch.randn(2, latent)
    x = networks.generator(z)
    assert x.shape == (2, channels, size, size)
    assert networks.encoder(x).shape == (2, latent)
    assert networks.discriminator(x, z)[1].shape == (2, feature_size(config))


@pytest.mark.parametrize("side", [2, 8, 16])
def test_a_map_code_has_one_code_per_place_and_is_local(side):
    """A map code (the patch preset's) is latent_size channels a place; G draws each part of the
    tile from the codes near it, so changing one corner's code leaves the far corner as it was."""
    config = ModelConfig(channels=3, image_size=32, latent_size=4, latent_side=side, width=8)
    assert config.code_size == 4 * side * side
    networks = Networks(config).eval()
    x = torch.randn(2, 3, 32, 32)
    z = networks.encoder(x)
    assert z.shape == (2, config.code_size)
    assert networks.generator(z).shape == (2, 3, 32, 32)
    assert networks.discriminator(x, z)[1].shape == (2, feature_size(config))
    moved = z.view(2, 4, side, side).clone()
    moved[:, :, 0, 0] += 5.0
    a, b = networks.generator(z), networks.generator(moved.view(2, -1))
    assert not torch.allclose(a[..., :4, :4], b[..., :4, :4])
    if side >= 8:  # a 2×2 code's 3×3 reading reaches every place
        assert torch.allclose(a[..., -4:, -4:], b[..., -4:, -4:])


def test_old_settings_without_a_code_side_read_as_a_vector_code():
    from dataclasses import asdict

    from egbad_core.config import from_dict

    stored = asdict(ModelConfig(latent_size=20))
    del stored["latent_side"]  # a checkpoint written before map codes
    config = from_dict(ModelConfig, stored)
    assert config.latent_side == 1 and config.code_size == 20
    networks = Networks(config)
    assert networks.encoder(torch.randn(2, 1, 64, 64)).shape == (2, 20)


@pytest.mark.parametrize("side", [0, 3, 32])
def test_the_code_side_must_be_a_power_of_two_within_the_image(side):
    with pytest.raises(EgbadError, match="code's side"):
        ModelConfig(image_size=32, latent_side=side).validate()


def test_image_size_must_be_a_power_of_two():
    with pytest.raises(EgbadError, match="power of two"):
        Networks(ModelConfig(image_size=48))


def test_spectral_norm_option_wraps_every_weight_layer_of_d():
    plain = Networks(ModelConfig(width=8, image_size=16))
    normed = Networks(ModelConfig(width=8, image_size=16, spectral_norm=True))
    def wrapped(module):
        return [m for m in module.modules() if hasattr(m, "parametrizations")]
    assert not wrapped(plain.discriminator)
    layers = [m for m in normed.discriminator.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(wrapped(normed.discriminator)) == len(layers) > 0
    assert not wrapped(normed.encoder)


@pytest.mark.parametrize("channels_last", [False, True])
def test_the_whole_input_convolution_is_nn_conv2ds_forward_and_backward(channels_last):
    from egbad_core.model.networks import WholeConv

    torch.manual_seed(0)
    ours = WholeConv(16, 8, 4, 1, 0)
    plain = torch.nn.Conv2d(16, 8, 4, 1, 0)
    plain.load_state_dict(ours.state_dict())
    layout = torch.channels_last if channels_last else torch.contiguous_format
    ours.to(memory_format=layout), plain.to(memory_format=layout)
    x = torch.randn(5, 16, 4, 4).contiguous(memory_format=layout).requires_grad_()
    a, b = ours(x), plain(x)
    assert a.shape == b.shape == (5, 8, 1, 1) and torch.allclose(a, b, atol=1e-5)
    (grad_ours,) = torch.autograd.grad(a.square().sum(), x)
    (grad_plain,) = torch.autograd.grad(b.square().sum(), x)
    assert torch.allclose(grad_ours, grad_plain, atol=1e-5)
    larger = torch.randn(2, 16, 6, 6)  # not the whole input: an ordinary convolution
    assert torch.allclose(ours(larger), plain(larger), atol=1e-5)


def test_gs_first_layer_as_a_matrix_product_is_the_transposed_convolution_forward_and_backward():
    from egbad_core.model.networks import SeedDeconv

    torch.manual_seed(0)
    ours = torch.nn.utils.parametrizations.spectral_norm(SeedDeconv(16, 8, 4, 1, 0))
    plain = torch.nn.utils.parametrizations.spectral_norm(torch.nn.ConvTranspose2d(16, 8, 4, 1, 0))
    plain.load_state_dict(ours.state_dict())  # the same keys, spectral norm's included
    ours.eval(), plain.eval()
    z = torch.randn(5, 16, 1, 1, requires_grad=True)
    a, b = ours(z), plain(z)
    assert a.shape == b.shape == (5, 8, 4, 4) and torch.allclose(a, b, atol=1e-5)
    (grad_ours, weight_ours) = torch.autograd.grad(a.square().sum(), (z, ours.parametrizations.weight.original))
    (grad_plain, weight_plain) = torch.autograd.grad(b.square().sum(), (z, plain.parametrizations.weight.original))
    assert torch.allclose(grad_ours, grad_plain, atol=1e-5) and torch.allclose(weight_ours, weight_plain, atol=1e-5)
    larger = torch.randn(2, 16, 3, 3)  # not a code: an ordinary transposed convolution
    assert torch.allclose(ours(larger), plain(larger), atol=1e-5)
