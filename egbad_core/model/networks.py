"""EGBAD's three networks: the generator G, the encoder E and the discriminator D.

With the default ModelConfig these are exactly DESIGN.md's table (latent 20, 64×64,
one channel, width 64). Other image sizes add or remove stride-2 stages. A code with a side above 1
(``latent_side``, the patch preset's) is a map of codes, one per place, as spatial GANs for
textures draw theirs: G(E(x)) can then follow fine grain a single vector cannot hold.
"""

from __future__ import annotations

import math
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from ..config import ModelConfig

LEAK = 0.1  # LeakyReLU slope of E and D, as the seed


def _stages(config: ModelConfig) -> int:
    """Stride-2 stages between the 4×4 core and the full image (4 at 64×64)."""
    return int(math.log2(config.image_size)) - 2


def _code_stages(config: ModelConfig) -> int:
    """Stride-2 stages between a map code and the full image (2 for 8×8 codes of 32-px tiles)."""
    return int(math.log2(config.image_size // config.latent_side))


def feature_size(config: ModelConfig) -> int:
    """Length of E's and D's image feature vector (512 by default)."""
    return config.width * 2 ** (_stages(config) - 1)


class Generator(nn.Module):
    """G: z (N, code_size) → image (N, channels, size, size) in [-1, 1]. A vector code is spread to a
    4×4 map; a map code (latent_size channels, latent_side a side) is read with a 3×3 convolution."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.latent_side == 1:
            stages, channels = _stages(config), feature_size(config)
            first: nn.Module = SeedDeconv(config.latent_size, channels, 4, 1, 0)
        else:
            stages = _code_stages(config) + 1
            channels = config.width * 2 ** (stages - 2)
            first = nn.Conv2d(config.latent_size, channels, 3, 1, 1)
        layers: list[nn.Module] = [first, nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        for _ in range(stages - 1 - (config.latent_side > 1)):
            layers += [
                nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1),
                nn.BatchNorm2d(channels // 2),
                nn.ReLU(inplace=True),
            ]
            channels //= 2
        layers += [nn.ConvTranspose2d(channels, config.channels, 4, 2, 1), nn.Tanh()]
        self.network = nn.Sequential(*layers)
        self.code_shape = (config.latent_size, config.latent_side, config.latent_side)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.network(z.view(z.size(0), *self.code_shape))


class WholeConv(nn.Conv2d):
    """A convolution whose kernel covers its whole input (E's and D's last layer), computed as the
    one matrix product it is: oneDNN ran it 4–7 times slower as a convolution here, forward and
    backward (benchmarks/RESULTS.md). Same parameters and state-dict keys as nn.Conv2d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != self.weight.shape[-2:] or self.padding != (0, 0):
            return super().forward(x)
        weight = self.weight
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            # Read channels-last images where they lie, the weight rearranged to match.
            x, weight = x.permute(0, 2, 3, 1), weight.permute(0, 2, 3, 1)
        out = F.linear(x.reshape(x.shape[0], -1), weight.reshape(weight.shape[0], -1), self.bias)
        return out.view(out.shape[0], -1, 1, 1)


class SeedDeconv(nn.ConvTranspose2d):
    """G's first layer, the code (1×1) spread to a k×k map, computed as the one matrix product it
    is: 0.3 ms an image's 64 tiles where the transposed convolution took 1.5 on two cores. Same
    parameters and state-dict keys as nn.ConvTranspose2d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (1, 1) or self.stride != (1, 1) or self.padding != (0, 0) or self.groups != 1:
            return super().forward(x)
        weight = self.weight  # (in, out, k, k)
        out = x.reshape(x.shape[0], -1).mm(weight.reshape(weight.shape[0], -1))
        out = out.view(x.shape[0], weight.shape[1], -1)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1)
        return out.view(x.shape[0], weight.shape[1], *weight.shape[-2:])


def _maybe_spectral(enabled: bool):
    return spectral_norm if enabled else (lambda module: module)


def _conv_stages(config: ModelConfig, count: int, spectral: bool) -> tuple[list[nn.Module], int]:
    """``count`` stride-2 stages from the image, and the channels they end with."""
    norm = _maybe_spectral(spectral)
    layers: list[nn.Module] = []
    channels_in, channels = config.channels, config.width
    for _ in range(count):
        layers += [
            norm(nn.Conv2d(channels_in, channels, 4, 2, 1)),
            nn.BatchNorm2d(channels),
            nn.LeakyReLU(LEAK, inplace=True),
        ]
        channels_in, channels = channels, channels * 2
    return layers, channels_in


def _image_features(config: ModelConfig, spectral: bool = False) -> nn.Sequential:
    """The conv stack shared by E and D's image branch: image → (N, feature_size)."""
    layers, channels = _conv_stages(config, _stages(config), spectral)
    norm = _maybe_spectral(spectral)
    layers += [norm(WholeConv(channels, feature_size(config), 4, 1, 0)), nn.Flatten()]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """E: image → z (N, code_size); a map code is each place's code, flattened."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.latent_side == 1:
            self.features = _image_features(config)
            self.embedding: nn.Module = nn.Linear(feature_size(config), config.latent_size)
        else:
            layers, channels = _conv_stages(config, _code_stages(config), spectral=False)
            self.features = nn.Sequential(*layers, nn.Conv2d(channels, config.latent_size, 3, 1, 1), nn.Flatten())
            self.embedding = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.features(x))


class Discriminator(nn.Module):
    """D: a pair (image, z) → (logit (N,), image features (N, feature_size)).

    The features feed the discrimination score; the logit says "real pair (x, E(x))".
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        norm = _maybe_spectral(config.spectral_norm)
        size = feature_size(config)
        self.features = _image_features(config, spectral=config.spectral_norm)
        self.latent = nn.Sequential(
            norm(nn.Linear(config.code_size, size)),
            nn.BatchNorm1d(size),
            nn.LeakyReLU(LEAK, inplace=True),
        )
        self.critic = norm(nn.Linear(2 * size, 1))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(x)
        latent = self.latent(z.view(z.size(0), -1))
        logit = self.critic(torch.cat([features, latent], dim=1)).view(-1)
        return logit, features


class Networks(nn.ModuleDict):
    """G, E and D together, as training, scoring and checkpoints handle them: ``nn.ModuleDict`` keeps
    their moves, modes and parameters (``networks["encoder"]`` or ``networks.encoder``); the keys are
    the names checkpoints store each network's state under."""

    def __init__(self, config: ModelConfig) -> None:
        config.validate()
        super().__init__({"generator": Generator(config), "encoder": Encoder(config), "discriminator": Discriminator(config)})
        self.config = config
        self.channels_last = False  # set by place()

    def place(self, device: torch.device | str, channels_last: bool = True) -> "Networks":
        """Move to ``device``; channels-last weights make oneDNN's and cuDNN's convolutions
        faster here (benchmarks/speed.py) and change no result beyond float rounding."""
        layout = torch.channels_last if channels_last else torch.contiguous_format
        self.to(device=torch.device(device), memory_format=layout)
        self.channels_last = channels_last
        return self

    def layout(self, images: torch.Tensor) -> torch.Tensor:
        """Images in the memory layout the weights use."""
        if self.channels_last and images.dim() == 4:
            return images.contiguous(memory_format=torch.channels_last)
        return images

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device
