"""Local EGBAD for textured surfaces (patch models): networks trained on patches, images scored
place by place.

A small defect on a texture covers a few percent of an image whose parts line up with nothing in
the next image, so a whole-image score averages it away. Here the networks see ``image_size``
patches (random crops of the images kept at ``working_size``), and every place of a test image
gets EGBAD's two terms:

* residual: |x − G(E(x))| over overlapping patches, blended, blurred a little;
* discrimination: how unlike any training place the place looks, measured in several ways — the distance
  from D's local features there (its conv stages, side by side) to their nearest neighbour in a
  memory bank of training features, thinned by a greedy k-center coreset as PatchCore does; and the
  same for the pixels' own mean and spread around the place (``score.moment_window``), which find
  the stains and smears that D's 4×4-pixel view misses; and on textures, thin lines held evenly
  along their run (``lines.py``), which find a mid-tone scratch on a busy grain, and the tone's
  layout over a wider window (``moments.local_shapes``, a bank of its own), which finds a veil
  that leaves the surface's pattern at a fraction of its contrast. The furthest out counts.

Each term's map is smoothed and measured in units of a held-out training image's worst place, λ
mixes them, the map is upsampled to the image, and the image's score is its worst place. Those
training images' own scores give the thresholds; the banks are built by ``local_reference``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import Normalisation, ScoreConfig, autocast
from ..events import ProgressEvent, Task, stopped
from ..model.inference import folded
from ..model.networks import Networks, WholeConv
from ..model.references import PatchReference
from .lines import line_map
from .moments import cut_layouts, layouts_of, moments_of
from .nearest import nearest_map
from .same_place import laid_out, place_distance
from .scores import Scores
from .tensors import batches, pinned, smooth, smooth_within, upsample

RESIDUAL_SMOOTHING = 2.0  # σ in pixels of the blur of |x − x'| before it is mixed
TILES_AT_ONCE = 512  # tiles E and G reconstruct in one pass


def local_features(networks: Networks, x: torch.Tensor, stages: tuple[int, ...], grid: int = 0) -> torch.Tensor:
    """D's activations after the given conv stages over the whole image (D is convolutional up to
    its last layer), on the coarsest one's grid, side by side: (N, F, h, w). The patch preset uses
    stage 1 alone: a place every 2 pixels, each described by 32 channels that see 4×4 pixels.
    Places are not averaged with their neighbours as PatchCore does: on the texture benchmark that
    blurred away thin scratches and cracks (gravel 0.72 → 0.60)."""
    wanted = set(stages)
    found, activation, taken = 0, x, []
    for layer in networks.discriminator.features:
        if isinstance(layer, (WholeConv, nn.Flatten)) or found >= max(wanted):
            break  # D's last layer sees a whole patch at once: no local features beyond it
        activation = layer(activation)
        if isinstance(layer, nn.LeakyReLU):
            found += 1
            if found in wanted:
                taken.append(activation)
    if not taken:
        taken = [activation]
    size = taken[-1].shape[-2:]
    # A finer stage's places are stacked, not averaged, into the coarser grid (space to depth):
    # averaging blurred away the detail that tells a crack from a blade of grass (0.74 against 0.70).
    parts = [t.float() if t.shape[-2:] == size else F.pixel_unshuffle(t.float(), t.shape[-1] // size[-1]) for t in taken]
    features = torch.cat(parts, dim=1)
    step = -(-max(size) // grid) if grid else 1  # every step-th place: subsampled, not pooled (as above)
    return features[..., ::step, ::step] if step > 1 else features


def reconstruct(networks: Networks, x: torch.Tensor, stride: int | None = None) -> torch.Tensor:
    """G(E(·)) of the image's patches, side by side (``stride`` None: one patch apart), or
    overlapping and blended where a smaller stride is given."""
    patch = networks.config.image_size
    stride = stride or patch
    n, c, h, w = x.shape
    if stride == patch and h % patch == 0 and w % patch == 0:  # side by side: a reshape, not fold's sums
        rows, columns = h // patch, w // patch
        tiles = networks.layout(x.view(n, c, rows, patch, columns, patch).permute(0, 2, 4, 1, 3, 5).reshape(-1, c, patch, patch))
        # A few hundred tiles at a time: their activations stay in the cache (a 1,088-px window's
        # 1,156 tiles at once took a quarter longer).
        rebuilt = torch.cat([networks.generator(networks.encoder(part)).float() for part in tiles.split(TILES_AT_ONCE)])
        return rebuilt.view(n, rows, columns, c, patch, patch).permute(0, 3, 1, 4, 2, 5).reshape(n, c, h, w)
    columns = F.unfold(x, patch, stride=stride)  # (N, C·P·P, L)
    count = columns.shape[-1]
    tiles = columns.transpose(1, 2).reshape(n * count, c, patch, patch)
    tiles = networks.layout(tiles.contiguous())
    rebuilt = networks.generator(networks.encoder(tiles)).float()
    columns = rebuilt.reshape(n, count, c * patch * patch).transpose(1, 2)
    weights = _blend_weights(patch, x.device).repeat(c).view(1, -1, 1).expand(n, -1, count)
    summed = F.fold(columns * weights, (h, w), patch, stride=stride)
    cover = F.fold(weights, (h, w), patch, stride=stride)
    return summed / cover.clamp_min(1e-6)


def _blend_weights(patch: int, device: torch.device) -> torch.Tensor:
    """A tent over the patch: tile edges, where G is least sure, count least where tiles overlap."""
    ramp = 1.0 - (torch.arange(patch, device=device, dtype=torch.float32) + 0.5 - patch / 2).abs() / (patch / 2)
    return (ramp.clamp_min(0.05)[:, None] * ramp.clamp_min(0.05)[None, :]).flatten()


def residual_map(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """(N, H, W) |x − G(E(x))| summed over channels, blurred a little (summed first: the same, the
    blur being linear, at a third of the work)."""
    return smooth((x.float() - reconstruction).abs().sum(dim=1, keepdim=True), RESIDUAL_SMOOTHING)[:, 0]


@dataclass(frozen=True)
class Overlays:
    """What lies over the images being scored, at their size: a region of interest, and for photo
    windows their cuts of what was taken over the whole photo at once (``frame_place.PhotoTerms``):
    its moments and its same-place term."""

    inside: torch.Tensor | None = None  # (H, W) for every image or (N, H, W) one each, bool
    frame: torch.Tensor | None = None  # (N, H, W)
    moments: torch.Tensor | None = None  # (N, D, h, w) on the moments' grid, as ``moments_of`` gives them
    shown: torch.Tensor | None = None  # (N, H, W) bool: where a window shows its photo (None: everywhere)


# Each term of RawMaps measured against a reference, and the prefix of its units there
# (``PatchReference.<unit>_mean``, ``<unit>_spread``); the frame's units come with its photos' frame.
TERM_UNITS = {"residual": "residual", "features": "discrimination", "moments": "moment", "same_place": "place",
              "lines": "line", "shapes": "shape"}


@dataclass
class RawMaps:
    """A batch's local terms before they are smoothed and standardised."""

    reconstruction: torch.Tensor  # (N, C, H, W) G(E(x)) patch by patch
    residual: torch.Tensor  # (N, H, W) |x − G(E(x))|, blurred a little, summed over channels
    features: torch.Tensor  # (N, H, W) distance of D's local features to the nearest in the bank
    moments: torch.Tensor | None  # (N, H, W) the same for the pixels' local moments, where there is a bank
    same_place: torch.Tensor | None = None  # (N, H, W) aligned sets: the moments against the same place's
    lines: torch.Tensor | None = None  # (N, H, W) textures: the most unusual line direction (score/lines.py)
    frame: torch.Tensor | None = None  # (N, H, W) aligned photos: the moments against the frame's same place (frame_place.py)
    region: torch.Tensor | None = None  # (N, H, W) or (H, W) bool: the photo shown and the region of interest (None: all)
    shapes: torch.Tensor | None = None  # (N, H, W) textures: the tone's layout against its own bank (moments.local_shapes)


def raw_maps(networks: Networks, x: torch.Tensor, config: ScoreConfig, banks: PatchReference,
             place_bank: torch.Tensor | None = None, over: Overlays | None = None) -> RawMaps:
    """The terms against ``banks`` (a reference's, whose units need not be known yet): the moments
    only where there is a bank of them (a checkpoint written before them has none, whatever the
    config says); for an aligned set, whose training images' places were kept, the moments are
    measured against the same place's instead of every place's: on the tuning half that did as
    well (fruits 0.984 against 0.983 with both) and the bank's search had cost a fifth of the
    scoring time. ``place_bank``: those places as ``same_place.lay_out`` sets them out. The line
    term only where there is a line bank, the tone layouts only where there is a bank of them.
    ``over``: photo windows' cuts of the moments and the same-place term taken over their photo; a
    window that overhangs its photo has its terms set to 0 past the photo's edge, so that they are
    blurred as the photo's own edge is when it is scored whole."""
    over = over or Overlays()
    reconstruction = reconstruct(networks, x)
    residual = residual_map(x, reconstruction)
    size = residual.shape[-2:]
    far = upsample(nearest_map(local_features(networks, x, config.stages, config.feature_grid), banks.features).float(), size)
    moment_far = same = shaped = None
    if config.moment_window and (banks.moments is not None or place_bank is not None):
        moments, shapes = _described(x, config, banks.shapes is not None, over)
        if place_bank is not None:  # aligned: the same place's moments, not every place's
            same = upsample(place_distance(moments, place_bank), size)
        else:
            # Layouts are searched exactly: k-means groups their rows loosely. So is a moments' bank
            # that holds them beside the moments (checkpoints of the seventeenth session).
            joined = bool(config.shape_window) and shapes is None
            moment_far = upsample(nearest_map(moments, banks.moments, exact=joined), size)
            if shapes is not None:
                shaped = upsample(nearest_map(shapes, banks.shapes, exact=True), size)
    lined = upsample(line_map(x, config.line_length, banks.line_bank, config.feature_grid), size) \
        if config.line_length and banks.line_bank else None
    terms, region = [residual, far, moment_far, same, lined, over.frame, shaped], over.inside
    if over.shown is not None:
        terms = [None if t is None else t.masked_fill(~over.shown, 0.0) for t in terms]
        region = over.shown if region is None else over.shown & region
    return RawMaps(reconstruction, *terms[:6], region=region, shapes=terms[6])


def _described(x: torch.Tensor, config: ScoreConfig, own_bank: bool, over: Overlays) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The places' moments and, where the layouts have a bank of their own, the layouts: on their
    own grid for an image scored whole, cut from the photo's description for a photo's window (its
    windows share the whole photo's places); else joined to the moments (one bank, or an aligned
    set's places)."""
    if over.moments is not None:
        return cut_layouts(over.moments, own_bank)
    if own_bank:
        return moments_of(x, config, layouts=False), layouts_of(x, config)
    return moments_of(x, config), None


def local_maps(raw: RawMaps, reference: PatchReference, config: ScoreConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(R, Dis, the anomaly map (1 − λ)·R + λ·Dis) per place, all (N, H, W): each term smoothed and
    measured against its reference. Dis is the furthest out of the place's descriptions: D's
    features, the pixels' local moments where the model keeps them and their tone layouts, and for
    an aligned set those moments against the same place's in the training images."""
    r = d = None
    for name, measured in measured_terms(raw, reference, config):
        if name == "residual":
            r = measured
        else:
            d = measured if d is None else torch.maximum(d, measured)
    return r, d, (1.0 - config.lam) * r + config.lam * d


def measured_terms(raw: RawMaps, reference: PatchReference, config: ScoreConfig) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, (N, H, W)) each term ``raw`` holds, smoothed and measured in its units against
    ``reference`` (TERM_UNITS, and the frame's own), the layouts' counting ``shape_weight`` of them,
    one at a time: a photo's windows' maps are large."""
    for name, unit in {**TERM_UNITS, "frame": "frame"}.items():
        values = getattr(raw, name)
        if values is not None:
            mean, spread = getattr(reference, f"{unit}_mean"), getattr(reference, f"{unit}_spread")
            measured = (smoothed(values.float(), config, name, raw.region) - mean) / spread
            yield name, measured * config.shape_weight if name == "shapes" else measured


def smoothed(values: torch.Tensor, config: ScoreConfig, term: str = "", region: torch.Tensor | None = None) -> torch.Tensor:
    """(N, H, W) one term's map as it is measured: blurred by ``map_smoothing``, and the moments'
    and the layouts' blurred again by ``moment_smoothing`` over the frame only. A stain or smear
    is wide, and the moments' map of a good busy surface has compact hot places that the wider blur
    averages away (rock's stains 0.90 → 0.94 on the tuning half at σ 6); the first blur's zero padding still
    dims the frame's outer pixels, as every term's, where windows reaching past the edge are
    measured on fewer pixels. ``region`` ((N,) H, W): what the second blur averages over instead of
    the frame (a photo's window overhangs it; places outside a region of interest never count)."""
    once = smooth(values[:, None], config.map_smoothing)
    if term in ("moments", "shapes") and config.moment_smoothing:
        frame = None if region is None else region.expand(values.shape)[:, None]
        once = smooth_within(once, config.moment_smoothing, frame)
    return once[:, 0]


def within(maps: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """(N, H, W) maps with every place outside the region of interest at the map's lowest value
    inside it, so that no place outside is the worst (a map with no place inside is left as it is)."""
    inside = inside.expand_as(maps)
    floor = maps.masked_fill(~inside, float("inf")).flatten(1).amin(dim=1)
    floor = torch.where(torch.isfinite(floor), floor, maps.flatten(1).amin(dim=1))
    return torch.where(inside, maps, floor[:, None, None])


def image_scores(maps: torch.Tensor, config: ScoreConfig) -> torch.Tensor:
    """Each map's worst place (``max``), or the mean of its worst 1% (``top1``)."""
    flat = maps.flatten(1)
    if config.image_score == "top1":
        k = max(1, flat.shape[1] // 100)
        return flat.topk(k, dim=1).values.mean(dim=1)
    return flat.max(dim=1).values


def patch_scoring_task(
    networks: Networks, images: torch.Tensor, normalisation: Normalisation, config: ScoreConfig,
    reference: PatchReference, keep_images: bool = True, stop: threading.Event | None = None,
    over: Overlays | None = None,
) -> Task[Scores | None]:
    """Anomaly maps and image scores of images as loaded, at the working size, as a task.

    An image's R and Dis are the two terms at its worst place, so score = (1 − λ)·R + λ·Dis still
    holds row by row; ``residual_maps`` holds the anomaly maps themselves. ``over``: a region of
    interest keeps the worst place within it; photo windows' cuts of their photo's moments stand in
    for their own, and their cuts of its same-place term join the terms."""
    start = time.perf_counter()
    device = networks.device
    over = over or Overlays()
    reference = reference.to(device)
    images = pinned(images, device)
    networks = folded(networks)
    place_bank = laid_out(reference.places) if reference.places is not None else None
    residuals, discriminations, scores, recon, maps_kept, places = [], [], [], [], [], []
    size = max(1, config.batch_size // 16)
    for done, batch in batches(images, size):
        if stopped(stop):
            return None
        with torch.inference_mode(), autocast(device.type, config.mixed_precision):
            x = networks.layout(normalisation.apply(batch.to(device, non_blocking=True)))
            rows = slice(done - len(batch), done)
            cuts = _batch_cuts(over, rows, device)
            raw = raw_maps(networks, x, config, reference, place_bank, cuts)
            reconstruction = raw.reconstruction
            r, d, maps = local_maps(raw, reference, config)
            if cuts.inside is not None:
                maps = within(maps, cuts.inside)
            worst = maps.flatten(1).argmax(dim=1)
            score = image_scores(maps, config)
            residuals.append(r.flatten(1).gather(1, worst[:, None])[:, 0].cpu())
            discriminations.append(d.flatten(1).gather(1, worst[:, None])[:, 0].cpu())
            scores.append(score.float().cpu())
            places.append(worst.cpu())
            if keep_images:
                recon.append(reconstruction.float().cpu())
                maps_kept.append(maps.float().cpu())
        yield ProgressEvent("scoring", done, images.shape[0])
    residual, discrimination, score = (torch.cat(parts).double() for parts in (residuals, discriminations, scores))
    if config.image_score == "max":  # the worst place's two terms make the score exactly
        score = (1.0 - config.lam) * residual + config.lam * discrimination
    width = images.shape[-1]
    worst = torch.cat(places)
    return Scores(
        method="egbad",
        residual=residual.numpy(),
        discrimination=discrimination.numpy(),
        score=score.numpy(),
        reconstructions=(torch.cat(recon) * normalisation.std + normalisation.mean).clamp_(0, 1).numpy() if keep_images else None,
        residual_maps=torch.cat(maps_kept).numpy() if keep_images else None,
        seconds=time.perf_counter() - start,
        lam=config.lam,
        worst_places=np.stack([(worst // width).numpy(), (worst % width).numpy()], axis=1),
        local=True,
    )


def _batch_cuts(over: Overlays, rows: slice, device: torch.device) -> Overlays:
    """A batch's rows of ``over`` on ``device`` (a region of interest of (H, W) serves every image)."""
    inside = over.inside
    if inside is not None:
        inside = (inside if inside.dim() == 2 else inside[rows]).to(device)
    return Overlays(inside, *(None if t is None else t[rows].to(device) for t in (over.frame, over.moments, over.shown)))
