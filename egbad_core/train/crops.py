"""Random patches of the training images for a patch model's epochs."""

from __future__ import annotations

import math

import torch
from torchvision.transforms import v2

from ..config import Preset

PHOTO_EPOCH_CROPS = 2400  # photos at their own resolution: crops an epoch takes of them, at least


def crops_each(settings: Preset, images: int) -> int:
    """Crops an epoch takes of each of ``images`` training images. A photo at its own resolution
    holds many windows' worth of patches: a few photos still give an epoch PHOTO_EPOCH_CROPS
    crops, as many as 300 images of the working size do."""
    per = settings.train.crops_per_image
    if settings.model.full_resolution:
        per = max(per, math.ceil(PHOTO_EPOCH_CROPS / images))
    return per


class CropSampler:
    """Random patches of the training images for one epoch, through torchvision's transforms.v2.

    The global torch generator that v2 draws from is forked and seeded from the trainer's own, so a
    resumed run crops as an uninterrupted one would and nothing else's randomness is disturbed."""

    def __init__(self, patch: int) -> None:
        self.augment = v2.Compose([v2.RandomCrop(patch), v2.RandomHorizontalFlip()])

    def epoch(self, images: torch.Tensor, per_image: int, generator: torch.Generator) -> torch.Tensor:
        """(N·per_image, C, patch, patch) crops, images in a shuffled order."""
        order = torch.randperm(images.shape[0], generator=generator).repeat(per_image)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return torch.stack([self.augment(images[i]) for i in order.tolist()])
