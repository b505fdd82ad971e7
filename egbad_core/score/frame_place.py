"""The same-place comparison for aligned photos scored in windows (issue 20).

A photo model's banks hold every place of every bank photo, and answer "does this look like anything
normal anywhere?"; on an aligned part a dark stain on a pale table looks like the part's own dark
places elsewhere and passes (trinkets' stains 0.66). At 256 px each place keeps every training
image's moments (``same_place``); at 2,048 px that is 50 MB an image, so here each place of the
frame keeps only their mean and spread over the bank photos (``FrameTally``: a few MB), and a
photo's place is measured by how many spreads its moments lie from the nearest of those at the
same place of the frame, give or take ``REACH`` steps, once the frame is laid over the photo as
the photo lies (``registration``: the fixture's turn and shift).

The photo's moments and the term are taken over the whole photo at once (``photo_terms``: a strip
of rows at a time) and each window is handed its cut of both, as it is handed its cut of a region
of interest (``tiling.overlays``; windows start on the moments' grid, so their cuts are their
own moments). Photos of another size than the frame have no same place, and go without the term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import Normalisation, ScoreConfig
from ..model.references import PatchReference
from .moments import moments_of
from .registration import laid, pose_of, reduced, reduction
from .tensors import upsample

REACH = 1  # neighbouring steps searched each way: the jitter the comparison forgives
STRIP = 512  # rows of a photo whose moments are taken at once (memory bounded by the strip, not the photo)
MARGIN = 32  # rows above and below a strip its moments see (the coarse window's reach, 20 px, and more)
UNSEEN = 1e4  # the spread of a frame place no photo showed: any moments lie within it (and half precision holds it)
FLOOR_SHARE = 0.5  # each channel's spread floored by this share of its typical spread over the frame's places


def step_of(config: ScoreConfig) -> int:
    """Pixels between neighbouring places of the moments' grid."""
    return max(1, config.moment_window // 2)


def frame_moments(x: torch.Tensor, config: ScoreConfig, normalisation: Normalisation | None = None,
                  strip: int = STRIP) -> torch.Tensor:
    """(N, C, H, W) photos → their moments over the whole frame (N, D, h, w), as ``moments_of``
    gives them for the whole photo, taken a strip of rows at a time; photos as loaded are
    normalised a strip at a time with ``normalisation`` (else they are already)."""
    step, height = step_of(config), x.shape[-2]
    prepared = normalisation.apply if normalisation is not None else (lambda part: part)
    strip = max(step, strip // step * step)
    margin = -(-MARGIN // step) * step
    parts = []
    for top in range(0, height, strip):
        first = max(0, top - margin)
        moments = moments_of(prepared(x[..., first : min(height, top + strip + margin), :]), config)
        skip = (top - first) // step
        parts.append(moments[..., skip : skip + strip // step, :])
    return torch.cat(parts, dim=-2)[..., : -(-height // step), :]


class FrameTally:
    """Each frame place's moments summed over photos, for their mean and spread."""

    def __init__(self) -> None:
        self.count = 0
        self.sums: torch.Tensor | None = None
        self.squares: torch.Tensor | None = None
        self.seen: torch.Tensor | None = None  # (h, w) photos that showed each place

    def add(self, moments: torch.Tensor, inside: torch.Tensor | None = None) -> None:
        """(N, D, h, w) moments of N photos of the frame's size, laid into it; ``inside`` (h, w):
        the places they showed (a turned photo does not show the frame's corners), all if None."""
        every = torch.ones(moments.shape[-2:], dtype=torch.float64, device=moments.device)
        shown = every if inside is None else inside.double()
        moments = moments.double() * shown
        if self.sums is None or self.squares is None or self.seen is None:
            self.sums, self.squares, self.seen = torch.zeros_like(moments[0]), torch.zeros_like(moments[0]), shown * 0
        self.sums += moments.sum(dim=0)
        self.squares += moments.square().sum(dim=0)
        self.seen += shown * moments.shape[0]
        self.count += moments.shape[0]

    def statistics(self) -> torch.Tensor:
        """(2, D, h, w): each place's mean and spread, the spread floored channel by channel (a place
        that hardly varies over twenty photos is not a place where any change is a defect)."""
        if self.sums is None or self.squares is None or self.seen is None:
            raise ValueError("no photo was tallied")
        seen = self.seen.clamp_min(1.0)
        mean = self.sums / seen
        spread = (self.squares / seen - mean.square()).clamp_min(0.0).sqrt()
        typical = spread.flatten(1).median(dim=1).values.clamp_min(1e-6)
        floored = (spread.square() + (FLOOR_SHARE * typical)[:, None, None].square()).sqrt()
        # A place fewer than half the photos showed has no same place to speak of: no spread is too wide.
        floored = torch.where(self.seen < max(2, self.count / 2), torch.full_like(floored, UNSEEN), floored)
        return torch.stack([mean, floored]).float()


def frame_distance(moments: torch.Tensor, frame: torch.Tensor, reach: int = REACH) -> torch.Tensor:
    """(N, D, h, w) photos' moments and the (2, D, h, w) frame statistics (laid over the photo) → (N, h, w): the root mean
    square, over the moments, of how many spreads each place lies from the frame's mean at the same
    place, the nearest of those up to ``reach`` steps away."""
    moments = moments.float()
    h, w = moments.shape[-2:]
    mean, spread = (F.pad(frame[None, i, :, :h, :w].float(), (reach,) * 4, mode="replicate") for i in (0, 1))
    best = torch.full((moments.shape[0], h, w), float("inf"), device=moments.device)
    for dy in range(2 * reach + 1):
        for dx in range(2 * reach + 1):
            shifted = (moments - mean[..., dy : dy + h, dx : dx + w]) / spread[..., dy : dy + h, dx : dx + w]
            found = shifted.square().mean(dim=1)
            best = torch.minimum(best, found)
    return best.sqrt_()


@dataclass(frozen=True)
class PhotoTerms:
    """What is taken over a whole photo at once before its windows are scored: its moments, which
    its windows share (each window's had been taken again, 1.15 times the photo's pixels), and an
    aligned photo model's same-place term."""

    moments: torch.Tensor | None  # (1, D, h, w)
    frame: torch.Tensor | None  # (H, W), unsmoothed (``local.local_maps`` smooths and measures it)


def photo_terms(photo: torch.Tensor, normalisation: Normalisation, config: ScoreConfig,
                reference: PatchReference) -> PhotoTerms:
    """A photo's (C, H, W, as loaded) ``PhotoTerms``: no moments for a model without them, no
    same-place term where the model keeps no frame or the photo is not of the frame's size (no
    same place: the term is left out for it)."""
    if not config.moment_window:
        return PhotoTerms(None, None)
    frame = getattr(reference, "frame", None)
    size = (photo.shape[-2], photo.shape[-1])
    with torch.inference_mode():
        photo = photo[None].to(reference.features.device)
        moments = frame_moments(photo, config, normalisation)
        if frame is None or size != reference.frame_size:
            return PhotoTerms(moments, None)
        template = reference.frame_template
        if template is not None:  # the frame laid over the photo as the photo lies
            pose = pose_of(reduced(photo, reduction(*size)), template, reduction(*size))
            frame, inside = laid(frame, pose, step_of(config), size, to_frame=False)
            frame[1].masked_fill_(~inside, UNSEEN)  # the photo's places beyond the frame's edge: none to compare with
        return PhotoTerms(moments, frame_map(moments, frame, size))


def frame_map(moments: torch.Tensor, frame: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(1, D, h, w) a photo's moments (``frame_moments``) → (H, W): the same-place term at each of
    its ``size`` pixels, unsmoothed."""
    return upsample(frame_distance(moments, frame), size)[0]
