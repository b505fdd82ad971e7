"""What a patch model's score measures against, built from its training images: the inputs the
reference's banks and units come from (a photo model's: windows of its photos), and the good-image
scores thresholds are taken from.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..config import Preset
from ..model.networks import Networks
from ..model.references import PatchReference
from ..score.frame_place import FrameTally, frame_moments, photo_terms, step_of
from ..score.registration import laid, pose_of, reduced, reduction
from ..score.local import smoothed
from ..score.local_reference import build_patch_reference
from ..score.tensors import spread_of
from ..score.tiling import photo_worst, window_starts
from .fit import fit_inputs

REFERENCE_WINDOWS = 64  # photos at their own resolution: windows of held-out photos the reference's units come from
BANK_PIXELS = 1024 * 256 * 256  # photos at their own resolution: the banks' windows, at most (192 MB in colour)
HELD_PHOTOS = 0.25  # share of the photos whose windows measure the units, never in the banks
PHOTOS_SCORED = 16  # of those, the photos scored whole for the good-image scores (thresholds, false alarms)


def reference_inputs(images: torch.Tensor, settings: Preset) -> tuple[torch.Tensor, int]:
    """What the score's reference is built from, and how many of them (the last) its units are
    measured on instead of its banks (0: the builder draws them at random, as for whole images).

    Photos at their own resolution give windows of the working size, as scoring cuts them: from
    three quarters of the photos, windows side by side over the whole frame, each place of it from
    as many of those photos as BANK_PIXELS allows (seeded, all of them when it allows), so that the
    banks see every place of the part, and of a texture as much as they can (64 random windows of
    256 px had left a third of a 2,048-px frame unseen, and a rare but normal place there flagged in
    every good photo of an aligned part: yellowflower's good photos scored 20 against the held-out
    ones' 0.3; two photos a place left a busy painting's rare strokes out); then REFERENCE_WINDOWS
    seeded windows from the other photos, never in the banks, for the units and the good-image scores."""
    if not settings.model.full_resolution:
        return images, 0
    side, seed = settings.model.working_size, settings.train.seed + 1
    generator = torch.Generator().manual_seed(seed)
    held_photos = held_photo_rows(len(images), settings)
    in_bank = torch.ones(len(images), dtype=torch.bool)
    in_bank[held_photos] = len(images) == 1  # one photo serves both
    bank_photos = in_bank.nonzero()[:, 0]
    rows, columns = (window_starts(length, side, overlap=0) for length in images.shape[-2:])
    cells = [(top, left) for top in rows for left in columns]
    coverings = max(1, min(len(bank_photos), BANK_PIXELS // (side * side * len(cells))))
    picks = [bank_photos[torch.randperm(len(bank_photos), generator=generator)[:coverings]].tolist() for _ in cells]
    covering = torch.stack([images[i, :, t : t + side, l : l + side] for photos, (t, l) in zip(picks, cells) for i in photos])
    windows = fit_inputs(images[held_photos.to(images.device)], side, True, seed, REFERENCE_WINDOWS)
    return torch.cat([covering, windows]), len(windows)


def held_photo_rows(count: int, settings: Preset) -> torch.Tensor:
    """Which of ``count`` photos are held out of a photo model's banks (all of one photo), sorted."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(settings.train.seed + 3))
    held = max(1, round(count * HELD_PHOTOS))
    return (order[:held] if count > 1 else order).sort().values


def held_photo_scores(networks: Networks, images: torch.Tensor, settings: Preset,
                      reference: PatchReference) -> np.ndarray | None:
    """A photo model's good-image scores: its held-out photos scored whole, as scoring scores a
    photo (the worst of all its windows' places: one window's worst is lower, and thresholds taken
    from windows flagged most good photos); None for any other model."""
    if not settings.model.full_resolution:
        return None
    rows = held_photo_rows(len(images), settings)[:PHOTOS_SCORED].tolist()
    return np.array([photo_worst(networks, images[row].cpu(), settings.normalisation, settings.score, reference)
                     for row in rows])


def frame_reference(images: torch.Tensor, settings: Preset, reference: PatchReference) -> PatchReference:
    """An aligned photo model's reference with the frame's statistics (``score.frame_place``) from
    its bank photos, and the term's units from its held-out photos scored whole: how far their
    worst place lies. The photos are taken one at a time (their moments are 19 MB at 2,048 px)."""
    config, normalisation = settings.score, settings.normalisation
    held = held_photo_rows(len(images), settings)
    bank = [row for row in range(len(images)) if row not in set(held.tolist())] or held.tolist()
    tally = FrameTally()
    size = (images.shape[-2], images.shape[-1])
    step, factor = step_of(config), reduction(*size)
    template = reduced(images[bank[0]][None], factor)
    with torch.inference_mode():
        for row in bank:  # each photo's moments laid into the frame as the photo lies against the first
            pose = pose_of(reduced(images[row][None], factor), template, factor)
            tally.add(*laid(frame_moments(images[row][None], config, normalisation), pose, step, size, to_frame=True))
        framed = replace(reference, frame=tally.statistics(), frame_size=size, frame_template=template)
        worst = torch.stack([smoothed(photo_terms(images[row], normalisation, config, framed).frame[None], config, "frame").max()
                             for row in held[:PHOTOS_SCORED].tolist()])
    return replace(framed, frame_mean=float(worst.mean()), frame_spread=spread_of(worst))


def patch_reference(networks: Networks, images: torch.Tensor, settings: Preset,
                    thorough: bool = True) -> tuple[PatchReference, np.ndarray]:
    """A patch model's reference from its training images as loaded, and the good-image scores its
    thresholds come from (a photo model's: held-out photos scored whole)."""
    inputs, held = reference_inputs(images, settings)
    photos = settings.model.full_resolution
    # A photo model's same-place comparison is the frame's (``frame_reference``), beside the banks.
    banks = replace(settings.score, same_place=False) if photos else settings.score
    reference, scores = build_patch_reference(networks, inputs, settings.normalisation, banks,
                                              settings.train.seed, thorough=thorough, held_last=held)
    if photos and settings.score.same_place:
        reference = frame_reference(images, settings, reference)
    photos = held_photo_scores(networks, images, settings, reference)
    return reference, scores if photos is None else photos
