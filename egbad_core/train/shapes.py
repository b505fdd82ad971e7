"""The model shape a recipe takes on from its training images, and what a patch model needs of them."""

from __future__ import annotations

from dataclasses import replace

from ..config import ModelConfig, Preset
from ..data.images import ImageSet
from ..errors import EgbadError


def check_patch_fits(train_set: ImageSet, patch: int) -> None:
    """A patch model learns from patches of the images as they are: an image smaller than a patch
    has none to give (it would only be blown up to the working size)."""
    if not train_set.sizes:
        return
    index = min(range(len(train_set)), key=lambda i: min(train_set.sizes[i]))
    height, width = train_set.sizes[index]
    if min(height, width) < patch:
        raise EgbadError(
            f"{train_set.ids[index]} is {width}×{height} px, smaller than the {patch}×{patch} patches the patch "
            "preset learns from; use the default preset for images this small, or leave them out."
        )


def model_for_data(preset: Preset, train_set: ImageSet) -> ModelConfig:
    """The preset's model shape, with the channel count and image size the data has (for a patch
    model, the working size; its patches keep their size)."""
    if preset.model.full_resolution:  # photos at their own size: the working size is the windows'
        height, width = train_set.pixels.shape[-2:]
        if min(height, width) < preset.model.working_size:
            raise EgbadError(f"{train_set.source}'s photos are {width}×{height} px at a photo scale of "
                             f"{preset.model.photo_scale:g}, smaller than the {preset.model.working_size}-px windows "
                             "they are scored in; use a larger scale or leave the scale at 0.")
        return replace(preset.model, channels=train_set.channels)
    if preset.model.patch_model:
        return replace(preset.model, channels=train_set.channels, working_size=train_set.image_size)
    return replace(preset.model, channels=train_set.channels, image_size=train_set.image_size)
