"""Which recipe a data source gets when the user leaves it to ``auto``, and why, in a sentence."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..config import Preset, get_preset, with_overrides
from ..data.sources import DataSource
from ..data.survey import survey_folder

PATCH_MIN_SIDE = 96  # images at least this large (median side) may get a patch model
ALIGNED = 0.06  # a mean image keeping this share of the variation or more: aligned images, scored whole
# (random crops of one texture keep about 1/64 of it when 64 images are surveyed: 1–2% on the benchmark)
MAX_WORKING_SIZE = 128  # the largest side a patch model keeps images at (scoring speed: RESULTS.md)


@dataclass(frozen=True)
class PresetChoice:
    """What ``--preset auto`` picked for a data source, and why, in a sentence for the user."""

    name: str
    working_size: int | None  # for the patch preset: the side images are kept at
    reason: str


def choose_automatically(source: DataSource) -> PresetChoice:
    """The preset for this data: ``patch`` for folders of images of at least PATCH_MIN_SIDE pixels
    whose parts do not line up from one image to the next (textures, surfaces), ``default`` for
    small or aligned images (digits, aligned parts and cells). Raises EgbadError for unusable data."""
    if source.kind != "folder":
        return PresetChoice("default", None, "MNIST-style CSV data: small aligned images, scored whole")
    side, alignment = survey_folder(source.path)
    if side < PATCH_MIN_SIDE:
        return PresetChoice("default", None, f"the images are about {side} px a side: small enough to score whole")
    if alignment >= ALIGNED:
        return PresetChoice("default", None, f"the images line up with one another (their mean image keeps "
                            f"{alignment:.0%} of their variation): a whole-image model")
    working = min(MAX_WORKING_SIZE, 1 << (side.bit_length() - 1))
    return PresetChoice("patch", working, f"the images are about {side} px a side and do not line up with one "
                        f"another (their mean image keeps {alignment:.0%} of their variation), as textures and "
                        f"surfaces do: a patch model, images kept at {working}×{working}")


def choose_preset(name: str, image_size: int | None = None, overrides: list[str] | tuple[str, ...] = (),
                  source: DataSource | None = None) -> tuple[Preset, str | None]:
    """A preset with ``--image-size`` and ``--set SECTION.NAME=VALUE`` applied, and for ``auto``
    the sentence that says which it picked and why (``source`` needed then); raises EgbadError."""
    reason = None
    if name == "auto":
        if source is None:
            raise ValueError("the automatic choice needs the data source")
        choice = choose_automatically(source)
        name, reason = choice.name, f"Preset auto: {choice.name}, because {choice.reason}."
        image_size = image_size or choice.working_size
    preset = get_preset(name)
    if image_size:  # a patch model's working size; a whole-image model's one size
        side = {"working_size": image_size} if preset.model.patch_model else {"image_size": image_size}
        preset = replace(preset, model=replace(preset.model, **side))
        preset.model.validate()
    return (with_overrides(preset, list(overrides)) if overrides else preset), reason
