"""The distance from each place's features to the nearest row of a training bank.

Every place of every image is measured against a bank of a few thousand rows, twice (D's features
and the pixels' moments): at a photo's own resolution that is 16,384 places a 512-px window, and
the two searches had taken two thirds of the scoring time. A large search is made in groups: the
bank is clustered once (k-means), each place is compared only with the rows of the few clusters
nearest its own, and the places that came out furthest (where a defect is, and so the map's worst
place and the image's score) are measured again against the whole bank. A grouped distance is
never below the true one, so no place can hide among the ones not measured again.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import weakref
from dataclasses import dataclass
from typing import Iterator

import torch

from .tensors import exporting

NEAREST_CHUNK = 1024  # places whose nearest bank rows are found in one matrix product
EXPORTED_CHUNK = 8192  # and in an exported graph, which holds each chunk's products as nodes of its own
BANK_BLOCK = 512  # bank rows a product takes at a time (its 2 MB block stays in the cache)
GROUPED_FROM = 16  # a search of at least this many places per bank row is made in groups
ROWS_PER_CLUSTER = 64  # the bank is grouped by k-means into clusters of about this many rows,
MIN_CLUSTERS = 64  # and into at least this many
NEIGHBOURS = 8  # a place is compared with the rows of this many clusters nearest its own
KMEANS_STEPS = 10
REMEASURED = 1 / 64  # the share of each image's places, the furthest, measured against the whole bank
KEPT_GROUPINGS = 4  # banks whose groups are kept (a run scores against one or two)


@dataclass(frozen=True)
class _Groups:
    """A bank clustered for the grouped search: the centres, and for each cluster the rows of it
    and its NEIGHBOURS nearest clusters, laid out for the product (``_augmented``)."""

    centres: torch.Tensor
    candidates: list[torch.Tensor]
    whole: torch.Tensor  # the whole bank, laid out so, for the places measured again


_groupings: dict[int, tuple[weakref.ref, _Groups]] = {}  # by the bank's id; the weak reference tells a reused id
_grouping = contextvars.ContextVar("grouping", default=False)


@contextlib.contextmanager
def grouped_search() -> Iterator[None]:
    """Within it a large search is made in groups: a photo's windows (each of them a quarter of a
    million places). Elsewhere every search is exact, as an exported model's (whose graph holds no
    clusters) is: the smoothed map's worst place takes in its neighbours, and a grouped neighbour,
    a little above the truth, had moved image scores by up to 0.2% (benchmarks/RESULTS.md)."""
    token = _grouping.set(True)
    try:
        yield
    finally:
        _grouping.reset(token)


def nearest_map(features: torch.Tensor, memory: torch.Tensor, exact: bool = False) -> torch.Tensor:
    """(N, F, h, w) features → (N, h, w) Euclidean distance to the nearest memory row: exact, or
    within ``grouped_search`` in groups for a large search (the furthest places of each image exact)
    unless ``exact``: a bank whose rows k-means does not group tightly (the tone layouts, alone or
    beside the moments: a grouped distance there was up to 10% above the true one, away from the worst places)."""
    n, f, h, w = features.shape
    queries = features.permute(0, 2, 3, 1).reshape(-1, f)
    if (exact or not _grouping.get() or queries.shape[0] < GROUPED_FROM * memory.shape[0]
            or memory.shape[0] < 4 * MIN_CLUSTERS):
        return exact_distances(queries, memory).view(n, h, w)
    groups = _groups_of(memory)
    distances = _grouped(queries, groups).view(n, h * w)
    again = distances.topk(max(1, math.ceil(h * w * REMEASURED)), dim=1).indices  # (N, k)
    rows = (again + torch.arange(n, device=again.device)[:, None] * (h * w)).reshape(-1)
    distances.view(-1)[rows] = _nearest_in(queries[rows], groups.whole)
    return distances.view(n, h, w)


def exact_distances(queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """(Q, F) → (Q,) distance to the nearest of ``memory``'s rows.

    |q − m|² = |q|² − 2·(q·m − |m|²/2): the bracket is one matrix product of the queries with a
    column of −1 beside them against the bank with |m|²/2 beside it, and its largest value is the
    nearest row. No bias is copied into the product and no index is kept for the maximum: at 256 px
    those two had taken 60% of a patch model's scoring time. In chunks of NEAREST_CHUNK places
    against BANK_BLOCK rows at a time, the running maximum kept: a chunk's products with a whole
    4,096-row bank (16 MB) had left the cache before their maximum was taken, which with few
    columns (the moments' 6, the layouts' 18) cost more than the product (at 256 px the moments'
    search 5.6 → 3.2 ms an image, the layouts' 5.5 → 5.0; benchmarks/RESULTS.md, nineteenth session)."""
    return _nearest_in(queries, _augmented(memory))


def _nearest_in(queries: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """exact_distances against a bank already laid out by ``_augmented``."""
    size = EXPORTED_CHUNK if exporting() else NEAREST_CHUNK
    ones = torch.full((size, 1), -1.0, dtype=queries.dtype, device=queries.device)
    blocks = bank.split(BANK_BLOCK, dim=1)
    out = []
    for chunk in queries.split(size):
        augmented = torch.cat([chunk, ones[: chunk.shape[0]]], dim=1)
        nearest = augmented.mm(blocks[0]).amax(dim=1)
        for block in blocks[1:]:
            torch.maximum(nearest, augmented.mm(block).amax(dim=1), out=nearest)
        out.append((chunk.square().sum(dim=1) - 2.0 * nearest).clamp_min_(0.0).sqrt_())
    return torch.cat(out) if out else queries.new_empty(0)


def grouped_distances(queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """(Q, F) → (Q,) distance to the nearest row among the clusters next to each query's own: at
    least the true distance, equal to it for most places (a fifth of the work of the whole bank)."""
    return _grouped(queries, _groups_of(memory))


def _grouped(queries: torch.Tensor, groups: _Groups) -> torch.Tensor:
    """grouped_distances against a bank's groups."""
    own = _nearest_centre(queries, groups.centres)
    order = torch.argsort(own)
    counts = torch.bincount(own, minlength=len(groups.centres)).tolist()
    ordered = queries[order]
    found = torch.empty(len(queries), dtype=queries.dtype, device=queries.device)
    start = 0
    for candidates, count in zip(groups.candidates, counts):
        if count:
            found[start : start + count] = _nearest_in(ordered[start : start + count], candidates)
        start += count
    out = torch.empty_like(found)
    out[order] = found
    return out


def _groups_of(memory: torch.Tensor) -> _Groups:
    """The bank's groups, made once for each bank (a run searches the same one for every window)."""
    kept = _groupings.get(id(memory))
    if kept is not None and kept[0]() is memory:
        return kept[1]
    centres, members = _clusters(memory)
    near = _centre_distances(centres, centres).topk(min(NEIGHBOURS, len(centres)), dim=1, largest=False).indices
    groups = _Groups(centres, [_augmented(memory[torch.isin(members, around)]) for around in near], _augmented(memory))
    while len(_groupings) >= KEPT_GROUPINGS:
        _groupings.pop(next(iter(_groupings)))
    _groupings[id(memory)] = (weakref.ref(memory), groups)
    return groups


def _clusters(memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means of the bank, seeded from evenly spaced rows (the same clusters every time): the
    centres and each row's cluster."""
    count = min(memory.shape[0], max(MIN_CLUSTERS, memory.shape[0] // ROWS_PER_CLUSTER))
    centres = memory[torch.linspace(0, memory.shape[0] - 1, count, device=memory.device).long()].clone()
    for _ in range(KMEANS_STEPS):
        members = _nearest_centre(memory, centres)
        sums = torch.zeros_like(centres).index_add_(0, members, memory)
        sizes = torch.bincount(members, minlength=count).to(memory.dtype)[:, None]
        centres = torch.where(sizes > 0, sums / sizes.clamp_min(1.0), centres)
    return centres, _nearest_centre(memory, centres)


def _nearest_centre(rows: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    return (centres.square().sum(dim=1) - 2.0 * rows @ centres.t()).argmin(dim=1)


def _centre_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a.square().sum(dim=1, keepdim=True) - 2.0 * a @ b.t() + b.square().sum(dim=1)


def _augmented(memory: torch.Tensor) -> torch.Tensor:
    """The bank with |m|²/2 beside each row, transposed for the product."""
    return torch.cat([memory, memory.square().sum(dim=1, keepdim=True) / 2], dim=1).t().contiguous()
