"""Local EGBAD for textured surfaces: networks trained on patches, images scored place by place.

A small defect on a texture covers a few percent of an image whose parts line up with nothing in
the next image, so a whole-image score averages it away. Here the networks see ``image_size``
patches (random crops of the images kept at ``working_size``), and every place of a test image
gets EGBAD's two terms:

* residual: |x − G(E(x))| over overlapping patches, blended, blurred a little;
* discrimination: the distance from D's local features there (its conv stages, side by side, each
  place averaged with its 3×3 neighbours) to their nearest neighbour in a memory bank of training
  features, thinned by a greedy k-center coreset as PatchCore does.

Each term is standardised by its spread over held-out training images, λ mixes them, the map is
smoothed and upsampled to the image, and the image's score is its worst place. Those training
images' own scores give the thresholds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from .config import Normalisation, ScoreConfig, autocast
from .events import ProgressEvent, Task, stopped
from .inference import folded
from .models import Networks, WholeConv
from .reference import spread_of
from .scoring import Scores, batches, pinned, smooth

RESIDUAL_SMOOTHING = 2.0  # σ in pixels of the blur of |x − x'| before it is mixed
CANDIDATES = 60_000  # training features the memory bank is chosen from, at most (a random sample)
HELD_OUT = 0.25  # share of the reference images kept out of the memory bank, to score as new normal images
PROJECTION = 64  # dimensions the coreset search runs in (a random projection, as PatchCore)


# ---------------------------------------------------------------------------------------- training crops


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


# ---------------------------------------------------------------------------------------- the two terms


def local_features(networks: Networks, x: torch.Tensor, stages: tuple[int, ...]) -> torch.Tensor:
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
    return torch.cat(parts, dim=1)


def reconstruct(networks: Networks, x: torch.Tensor, stride: int | None = None) -> torch.Tensor:
    """G(E(·)) of the image's patches, side by side (``stride`` None: one patch apart), or
    overlapping and blended where a smaller stride is given."""
    patch = networks.config.image_size
    stride = stride or patch
    n, c, h, w = x.shape
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


def nearest_map(features: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """(N, F, h, w) features → (N, h, w) Euclidean distance to the nearest memory row.

    Squared distances as one matrix product, |q|² − 2·q·m + |m|² (cdist's own path took a fifth
    longer here), in chunks of 4096 places that bound the memory."""
    n, f, h, w = features.shape
    queries = features.permute(0, 2, 3, 1).reshape(-1, f)
    squares = memory.square().sum(dim=1)
    out = []
    for chunk in queries.split(4096):
        nearest = torch.addmm(squares, chunk, memory.t(), alpha=-2.0).min(dim=1).values + chunk.square().sum(dim=1)
        out.append(nearest.clamp_min_(0.0).sqrt_())
    return torch.cat(out).view(n, h, w)


def raw_terms(networks: Networks, x: torch.Tensor, config: ScoreConfig, memory: torch.Tensor | None):
    """(reconstruction, residual map (N, H, W), and with a memory bank the distance map upsampled to
    (N, H, W), without one the local features (N, F, h, w) the bank is made of)."""
    reconstruction = reconstruct(networks, x)
    residual = smooth((x.float() - reconstruction).abs(), RESIDUAL_SMOOTHING).sum(dim=1)
    features = local_features(networks, x, config.stages)
    if memory is None:
        return reconstruction, residual, features
    return reconstruction, residual, upsample(nearest_map(features, memory).float(), residual.shape[-2:])


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, h, w) maps → (N, H, W), bilinear."""
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


# ---------------------------------------------------------------------------------------- reference


@dataclass
class PatchReference:
    """What a patch model's maps are measured against: the memory bank and each term's spread."""

    features: torch.Tensor  # (M, F) the coreset of training features
    residual_mean: float
    residual_spread: float
    discrimination_mean: float
    discrimination_spread: float

    def to_payload(self) -> dict[str, torch.Tensor]:
        stats = [self.residual_mean, self.residual_spread, self.discrimination_mean, self.discrimination_spread]
        return {"kind": torch.tensor([1]), "features": self.features, "stats": torch.tensor(stats, dtype=torch.float64)}

    @classmethod
    def from_payload(cls, payload: dict[str, torch.Tensor]) -> "PatchReference":
        stats = [float(v) for v in payload["stats"].tolist()]
        if len(stats) != 4 or payload["features"].dim() != 2:
            raise ValueError("its shapes do not fit a patch model")
        return cls(payload["features"].float(), *stats)

    def to(self, device: torch.device) -> "PatchReference":
        return PatchReference(self.features.to(device), self.residual_mean, self.residual_spread,
                              self.discrimination_mean, self.discrimination_spread)


def greedy_coreset(features: torch.Tensor, size: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``size`` rows chosen by greedy k-center: each next row is the one farthest from
    those already chosen, so rare normal patterns are kept (PatchCore's coreset). Distances are
    measured in a random projection to PROJECTION dimensions, which keeps them nearly the same."""
    count = features.shape[0]
    if count <= size:
        return torch.arange(count)
    generator = torch.Generator().manual_seed(seed)
    projected = features
    if features.shape[1] > PROJECTION:
        matrix = torch.randn(features.shape[1], PROJECTION, generator=generator).to(features.device)
        projected = features @ (matrix / PROJECTION**0.5)
    squares = projected.square().sum(dim=1)
    pick = int(torch.randint(count, (1,), generator=generator))
    chosen = [pick]
    nearest = torch.full((count,), float("inf"), device=features.device)
    for _ in range(size - 1):  # squared distances to the newest centre as one matrix-vector product
        centre = projected[pick]
        nearest = torch.minimum(nearest, squares - 2.0 * (projected @ centre) + squares[pick])
        pick = int(torch.argmax(nearest))
        chosen.append(pick)
    return torch.tensor(chosen)


def build_patch_reference(
    networks: Networks, images: torch.Tensor, normalisation: Normalisation, config: ScoreConfig, seed: int = 0,
    thorough: bool = True,
) -> tuple[PatchReference, np.ndarray]:
    """The memory bank from most of a bounded sample of the training images, and the term spreads
    and scores from the rest, which the bank never saw: the scores a new normal image would get.

    ``thorough`` chooses the bank by greedy coreset (a run's last checkpoint, and a stopped one);
    otherwise a random sample, some seconds quicker, for the checkpoints written along the way."""
    generator = torch.Generator().manual_seed(seed)
    count = images.shape[0]
    order = torch.randperm(count, generator=generator)[: min(count, config.reference_images)]
    held = max(1, int(round(len(order) * HELD_OUT)))
    bank_images, held_images = images[order[held:]], images[order[:held]]
    device = networks.device
    networks = folded(networks)
    every = []
    with torch.inference_mode(), autocast(device.type, config.mixed_precision):
        for _, batch in batches(bank_images, max(1, config.batch_size // 16)):
            features = local_features(networks, networks.layout(normalisation.apply(batch.to(device))), config.stages)
            every.append(features.permute(0, 2, 3, 1).reshape(-1, features.shape[1]))
        every = torch.cat(every)
        if every.shape[0] > CANDIDATES:
            every = every[torch.randperm(every.shape[0], generator=generator)[:CANDIDATES].to(every.device)]
        if thorough:
            keep = greedy_coreset(every, config.memory_size, seed)
        else:
            keep = torch.randperm(every.shape[0], generator=generator)[: config.memory_size]
        memory = every[keep.to(every.device)]
        residuals, distances = [], []
        for _, batch in batches(held_images, max(1, config.batch_size // 16)):
            x = networks.layout(normalisation.apply(batch.to(device)))
            _, residual, distance = raw_terms(networks, x, config, memory)
            residuals.append(residual.float())
            distances.append(distance)
    residual, distance = torch.cat(residuals), torch.cat(distances)
    reference = PatchReference(memory.float().cpu(), float(residual.mean()), spread_of(residual),
                               float(distance.mean()), spread_of(distance))
    _, _, maps = local_maps(residual, distance, reference, config)
    scores = image_scores(maps, config)
    return reference, scores.double().cpu().numpy()


# ---------------------------------------------------------------------------------------- maps and scores


def standardised(residual: torch.Tensor, distance: torch.Tensor, reference: PatchReference):
    """Both terms in units of their spread over held-out training images."""
    return ((residual - reference.residual_mean) / reference.residual_spread,
            (distance - reference.discrimination_mean) / reference.discrimination_spread)


def local_maps(residual: torch.Tensor, distance: torch.Tensor, reference: PatchReference,
               config: ScoreConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(R, Dis, the anomaly map (1 − λ)·R + λ·Dis) per place, each term in its training spread and
    smoothed, all (N, H, W)."""
    r, d = standardised(residual, distance, reference)
    r = smooth(r[:, None], config.map_smoothing)[:, 0]
    d = smooth(d[:, None], config.map_smoothing)[:, 0]
    return r, d, (1.0 - config.lam) * r + config.lam * d


def image_scores(maps: torch.Tensor, config: ScoreConfig) -> torch.Tensor:
    """Each map's worst place (``max``), or the mean of its worst 1% (``top1``)."""
    flat = maps.flatten(1)
    if config.image_score == "top1":
        k = max(1, flat.shape[1] // 100)
        return flat.topk(k, dim=1).values.mean(dim=1)
    return flat.max(dim=1).values


def patch_scoring_task(
    networks: Networks,
    images: torch.Tensor,
    normalisation: Normalisation,
    config: ScoreConfig,
    reference: PatchReference,
    keep_images: bool = True,
    stop: threading.Event | None = None,
) -> Task[Scores | None]:
    """Anomaly maps and image scores of images as loaded, at the working size, as a task.

    An image's R and Dis are the two terms at its worst place, so score = (1 − λ)·R + λ·Dis still
    holds row by row; ``residual_maps`` holds the anomaly maps themselves."""
    start = time.perf_counter()
    device = networks.device
    reference = reference.to(device)
    images = pinned(images, device)
    networks = folded(networks)
    residuals, discriminations, scores, recon, maps_kept, places = [], [], [], [], [], []
    size = max(1, config.batch_size // 16)
    for done, batch in batches(images, size):
        if stopped(stop):
            return None
        with torch.inference_mode(), autocast(device.type, config.mixed_precision):
            x = networks.layout(normalisation.apply(batch.to(device, non_blocking=True)))
            reconstruction, residual, distance = raw_terms(networks, x, config, reference.features)
            r, d, maps = local_maps(residual.float(), distance, reference, config)
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
    residual = torch.cat(residuals).double()
    discrimination = torch.cat(discriminations).double()
    score = torch.cat(scores).double()
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
