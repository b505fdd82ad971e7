"""What a patch model's maps measure against: memory banks of training places, and each term's units.

The banks are chosen from most of a bounded sample of the training images by greedy k-center
coreset (PatchCore's), in two steps: each image's own most distinct places, then the bank from all
of those; the units come from the rest of the images, which the banks never saw.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np
import torch

from ..config import Normalisation, ScoreConfig, autocast
from ..model.inference import folded
from ..model.networks import Networks
from ..model.references import PatchReference
from .lines import BANK_SIZE as LINE_BANK_SIZE
from .lines import line_places, line_responses, line_statistics, line_step, line_sums
from .local import TERM_UNITS, image_scores, local_features, local_maps, raw_maps, smoothed
from .moments import layouts_of, moments_of
from .same_place import lay_out
from .tensors import batches, spread_of

CANDIDATES = 60_000  # places the bank is chosen from, at most: an equal share of each image's most distinct
HELD_OUT = 0.25  # share of the reference images kept out of the memory bank, to score as new normal images
PROJECTION = 64  # dimensions the coreset search runs in (a random projection, as PatchCore)


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


def distinct_places(described: torch.Tensor, each: int, seed: int | None, generator: torch.Generator) -> torch.Tensor:
    """The places of a batch of described images (N×C×H×W) as rows, each image's thinned to its
    ``each`` most distinct (its own greedy coreset; with no ``seed``, a random few, for a quick
    bank), so that a place rare in the set but present in one image reaches the bank's coreset: a
    random sample of the whole set's places had left a busy painting's rare strokes out (issue 20)."""
    rows = described.permute(0, 2, 3, 1).flatten(1, 2)
    if rows.shape[1] <= each:
        return rows.reshape(-1, rows.shape[2])
    picks = [greedy_coreset(r.float(), each, seed) if seed is not None
             else torch.randperm(len(r), generator=generator)[:each] for r in rows]
    return torch.cat([r[i.to(r.device)] for r, i in zip(rows, picks)])


def build_patch_reference(
    networks: Networks, images: torch.Tensor, normalisation: Normalisation, config: ScoreConfig, seed: int = 0,
    thorough: bool = True, held_last: int = 0,
) -> tuple[PatchReference, np.ndarray]:
    """The memory banks from most of a bounded sample of the training images, and the terms' spreads
    and scores from the rest, which the banks never saw: the scores a new normal image would get.
    ``held_last`` > 0: the last that many images are the rest and the others all go to the banks
    (photos' windows, chosen so by ``train.references.reference_inputs``).

    ``thorough`` chooses the banks by greedy coreset (a run's last checkpoint, and a stopped one);
    otherwise a random sample, some seconds quicker, for the checkpoints written along the way."""
    generator = torch.Generator().manual_seed(seed)
    bank_images, held_images = _split(images, config, held_last, generator)
    device = networks.device
    networks = folded(networks)
    size = max(1, config.batch_size // 16)

    each = max(1, -(-CANDIDATES // max(1, len(bank_images))))  # candidates an image gives, at most

    def bank(rows: list[torch.Tensor], keep: int) -> torch.Tensor:
        every = torch.cat(rows)
        chosen = greedy_coreset(every, keep, seed) if thorough else torch.randperm(every.shape[0], generator=generator)[:keep]
        return every[chosen.to(every.device)].float()

    def places(described: torch.Tensor) -> torch.Tensor:
        return distinct_places(described, each, seed if thorough else None, generator)

    def prepared(batch: torch.Tensor) -> torch.Tensor:
        return networks.layout(normalisation.apply(batch.to(device)))

    with torch.inference_mode(), autocast(device.type, config.mixed_precision):
        features, moments, shapes, aligned, lined = _bank_rows(networks, bank_images, config, size, prepared, places)
        same = torch.cat(aligned) if aligned else None
        place_bank = lay_out(same) if same is not None else None
        banks = PatchReference(bank(features, config.memory_size), 0.0, 1.0, 0.0, 1.0,
                               moments=bank(moments, config.moment_memory_size) if moments else None,
                               shapes=bank(shapes, config.shape_memory_size) if shapes else None)
        if lined is not None:  # a second pass, in the directions' units known only now: the first pass's
            # blocks kept would be 6 floats a pixel at 128 px, 1.6 GB for a photo model's bank windows
            statistics, step = line_statistics(lined), line_step(*bank_images.shape[-2:], config.feature_grid)
            banks = replace(banks, lines=statistics, line_memory=bank(
                [places(line_places(line_responses(prepared(batch), config.line_length), statistics, step))
                 for _, batch in batches(bank_images, size)], LINE_BANK_SIZE))
        held_maps = [raw_maps(networks, prepared(batch), config, banks, place_bank) for _, batch in batches(held_images, size)]
    reference = _assembled(held_maps, config, banks, same)
    on_device = reference.to(device)
    scores = torch.cat([image_scores(local_maps(m, on_device, config)[2], config) for m in held_maps])
    return reference, scores.double().cpu().numpy()


def _bank_rows(networks: Networks, images: torch.Tensor, config: ScoreConfig, size: int,
               prepared: Callable[[torch.Tensor], torch.Tensor], places: Callable[[torch.Tensor], torch.Tensor]) -> tuple:
    """The bank images' places for each bank (D's features, the moments, the layouts: each image's
    most distinct by ``places``), or the moments place by place for an aligned set, and the line
    responses' sums for their units."""
    features, moments, shapes, aligned, lined = [], [], [], [], None
    for _, batch in batches(images, size):
        x = prepared(batch)
        features.append(places(local_features(networks, x, config.stages, config.feature_grid)))
        if config.line_length:
            sums = line_sums(line_responses(x, config.line_length))
            lined = sums if lined is None else lined + sums
        if config.moment_window:
            if config.same_place:  # place by place, instead of a bank of every place's
                aligned.append(moments_of(x, config).float())
            else:  # the layouts, where asked for, in a bank of their own, chosen in their own space
                moments.append(places(moments_of(x, config, layouts=False)))
                if config.shape_window:
                    shapes.append(places(layouts_of(x, config)))
    return features, moments, shapes, aligned, lined


def _split(images: torch.Tensor, config: ScoreConfig, held_last: int,
           generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The images the banks are chosen from, and those held out of them for the units."""
    count = images.shape[0]
    if held_last:
        return images[: count - held_last], images[count - held_last :]
    order = torch.randperm(count, generator=generator)[: min(count, config.reference_images)]
    held = max(1, int(round(len(order) * HELD_OUT)))
    return images[order[held:]], images[order[:held]]


def _assembled(held_maps: list, config: ScoreConfig, banks: PatchReference, same: torch.Tensor | None) -> PatchReference:
    """The reference record: each bank with its term's units from the held-out images' maps."""
    reference = banks.to(torch.device("cpu"))
    for name, unit in TERM_UNITS.items():
        if getattr(held_maps[0], name) is not None:
            mean, spread = _worst_places([getattr(m, name).float() for m in held_maps], config, name)
            reference = replace(reference, **{f"{unit}_mean": mean, f"{unit}_spread": spread})
    if same is not None:
        reference = replace(reference, places=same.cpu())
    return reference


def _worst_places(maps: list[torch.Tensor], config: ScoreConfig, term: str) -> tuple[float, float]:
    """Mean and spread of the held-out images' worst place in one term's smoothed map."""
    worst = torch.cat([smoothed(m, config, term).flatten(1).max(dim=1).values for m in maps])
    return float(worst.mean()), spread_of(worst)
