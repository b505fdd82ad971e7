"""Which recipe a data source gets when the user leaves it to ``auto``, and why, in a sentence."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..config import Preset, get_preset, with_overrides
from ..data.sources import DataSource
from ..data.survey import Survey, survey_folder

PATCH_MIN_SIDE = 96  # images at least this large (median side) get a map and are scored by their worst place
# The share of the images' detail their mean image keeps (data.survey.alignment): the tuning half's
# fixtures keep 58–76%, its textures 1.4–1.9% (about 1/64 with 64 images surveyed).
ALIGNED = 0.2  # from here: aligned, each place also compared with the same place in the training images
LOOSE = 0.06  # from here to ALIGNED: lined up only loosely, the same-place comparison left out
MAX_WORKING_SIZE = 256  # the largest side images are kept at: a 3-px scratch on a 256-px photo stays 3 px
PHOTO_FROM = 2 * MAX_WORKING_SIZE  # photos larger than this (median side) keep their own pixels, scored in windows
KEPT = "⟨kept⟩"  # where the reason names how the images are kept, filled in once the settings are final
SAME = "⟨same⟩"  # and whether each place is also compared with the same place in the training images
ALIGNED_MEMORY = 2048  # D's bank for aligned sets, whose same-place comparison finds most: half the textures'
LAYOUTS_HALVED_FROM = 256  # working sizes from this keep the tone layouts' bank at
LARGE_IMAGES_LAYOUTS_BANK = 4096  # rows (the patch preset's 8,192 is for smaller images)


@dataclass(frozen=True)
class PresetChoice:
    """What ``--preset auto`` picked for a data source, and why, in a sentence for the user."""

    name: str
    working_size: int | None  # for the patch preset: the side images are kept at
    reason: str
    same_place: bool = False  # aligned images: each place compared with the same place in training
    photo_scale: float = 0.0  # large photos: kept at this share of their own pixels, scored in windows
    side: int = 0  # the images' median side

    def sentence(self, working: int, photo_scale: float, same_place: bool, pixels_per_mm: float = 0.0) -> str:
        """The reason with how the images are kept under the final settings (an override may change it)."""
        per_mm = f" ({photo_scale * pixels_per_mm:.3g} px/mm)" if pixels_per_mm else ""
        kept = (f"photos kept at {photo_scale:g} of their own pixels{per_mm}, scored in overlapping windows"
                if photo_scale else f"images kept at {working}×{working}")
        same = (" and with the same place of the training photos' frame" if same_place and photo_scale else
                " and with the same place in the training images" if same_place else "")
        reason = self.reason.replace(KEPT, kept).replace(SAME, same)
        if self.photo_scale:
            large = (f"the photos are about {self.side} px a side, more than twice the largest working size "
                     f"({MAX_WORKING_SIZE} px), ")
            shrunk = 5 * (photo_scale or working / self.side)
            large += (f"so they keep their own pixels (a 5-px defect stays {shrunk:.3g} px); " if photo_scale else
                      f"and are resized as asked (a 5-px defect shrinks to {shrunk:.1f} px); ")
            reason = large + reason
        return reason


def choose_automatically(source: DataSource) -> PresetChoice:
    """The preset for this data: ``patch`` for folders of images of at least PATCH_MIN_SIDE pixels,
    with the same-place comparison where they line up (parts in a fixture), ``default`` for small
    images (digits, cells), scored whole. Raises EgbadError for unusable data."""
    if source.kind != "folder":
        return PresetChoice("default", None, "MNIST-style CSV data: small aligned images, scored whole")
    survey = survey_folder(source.path)
    side = survey.side
    if side < PATCH_MIN_SIDE:
        return PresetChoice("default", None, f"the images are about {side} px a side: small enough to score whole")
    working = min(MAX_WORKING_SIZE, 1 << (side.bit_length() - 1))
    photos = side > PHOTO_FROM
    kept = f"their mean image keeps {survey.alignment:.0%} of their detail"
    if survey.alignment >= ALIGNED:
        how = (f"the images line up with one another ({kept}), as parts in a fixture do: a patch model, {KEPT}, "
               f"each place compared with every training place{SAME}")
    elif survey.alignment >= LOOSE:
        how = (f"the images line up only loosely ({kept}; a fixture's keep {ALIGNED:.0%} or more), so the same-place "
               f"comparison is left out: a patch model, {KEPT}, each place compared with every training place")
    else:
        how = (f"the images are about {side} px a side and do not line up with one another ({kept}), as textures "
               f"and surfaces do: a patch model, {KEPT}")
    notes = _photo_notes(survey) if photos else _size_notes(survey, working)
    return PresetChoice("patch", working, how + notes, survey.alignment >= ALIGNED, 1.0 if photos else 0.0, side)


def _size_notes(survey: Survey, working: int) -> str:
    """What the user should know of the images' sizes: that they differ, and which are enlarged."""
    notes = ""
    if survey.smallest != survey.largest:
        notes += (f"; the images range from {survey.smallest} to {survey.largest} px a side and each is resized to "
                  f"{working}×{working}, the largest power of two within their median side ({survey.side} px)")
    small = survey.smaller_than(working)
    if small:
        named = ", ".join(f"{name} ({survey.sides[name]} px)" for name in small[:3])
        more = f" and {len(small) - 3} more" if len(small) > 3 else ""
        notes += (f"; {len(small)} of them are smaller than {working} px and are enlarged, their detail softer than "
                  f"the rest's: {named}{more}")
    return notes


def _photo_notes(survey: Survey) -> str:
    """Photos of several sizes: each test photo is scored at its own size."""
    if survey.smallest == survey.largest:
        return ""
    return (f"; the photos range from {survey.smallest} to {survey.largest} px a side: each test photo is scored at its "
            f"own size, training photos of another size are resized to the median first")


def choose_preset(name: str, image_size: int | None = None, overrides: list[str] | tuple[str, ...] = (),
                  source: DataSource | None = None) -> tuple[Preset, str | None]:
    """A preset with ``--image-size`` and ``--set SECTION.NAME=VALUE`` applied, and for ``auto``
    the sentence that says which it picked and why (``source`` needed then); raises EgbadError."""
    choice = None
    if name == "auto":
        if source is None:
            raise ValueError("the automatic choice needs the data source")
        choice = choose_automatically(source)
        name, image_size = choice.name, image_size or choice.working_size
    same_place = choice is not None and choice.same_place
    preset = get_preset(name)
    if choice is not None and choice.photo_scale:
        preset = replace(preset, model=replace(preset.model, photo_scale=choice.photo_scale))
    if same_place:  # the same place finds most there: half D's bank (fruits 0.993 either way), 8 ms an image less
        # (photos keep the whole bank: their same place is a frame's mean and spread, beside the bank)
        memory = preset.score.memory_size if preset.model.full_resolution else ALIGNED_MEMORY
        # No line term: the same place finds an aligned part's scratches (fruits', box's 1.00), and a
        # part's own straight edges are lines too (fruits 0.995 → 0.993, box 0.991 → 0.989 with it).
        # No shape window either: the same place's mean and spread already see a veil there.
        preset = replace(preset, score=replace(preset.score, same_place=True, memory_size=memory, line_length=0,
                                               shape_window=0))
    if image_size:  # a patch model's working size; a whole-image model's one size
        side = {"working_size": image_size} if preset.model.patch_model else {"image_size": image_size}
        preset = replace(preset, model=replace(preset.model, **side))
        preset.model.validate()
    preset = with_overrides(preset, list(overrides)) if overrides else preset
    asked = {o.partition("=")[0].strip() for o in overrides}
    if (preset.model.patch_model and preset.model.working_size >= LAYOUTS_HALVED_FROM
            and "score.shape_memory_size" not in asked):
        # The tone layouts' bank of 8,192 rows finds the veils of 128-px textures (14–20 px, inside
        # the layouts' 24-px window) that 4,096 miss: rock's 0.86 → 0.91 on the tuning half. At 256 px
        # a veil of 1–2% of the image (29–40 px) fills the window and 4,096 rows find as many
        # (reptile 0.998, woody 0.997 against 0.999, 0.996) in half the search (10 → 5 ms an image).
        preset = replace(preset, score=replace(preset.score, shape_memory_size=min(preset.score.shape_memory_size,
                                                                                   LARGE_IMAGES_LAYOUTS_BANK)))
    if preset.model.full_resolution and "score.shape_window" not in asked:
        # Photos at camera resolution keep issue 20's rate: the tone layouts' search, exact there
        # (k-means groups them loosely), took 1.61 → 1.30 megapixels/s (floor 1.5) in the moments'
        # bank; in a bank of their own they add an exact search of every place beside the grouped one.
        preset = replace(preset, score=replace(preset.score, shape_window=0))
    model = preset.model
    if choice is None:
        return preset, None
    sentence = choice.sentence(model.working_size, model.photo_scale, preset.score.same_place, model.pixels_per_mm)
    return preset, f"Preset auto: {choice.name}, because {sentence}."
