"""The same-place comparison of aligned images (issue 19): each place of a test image against the
same place, give or take one step, in each of the training images.

A memory bank of places answers "does this look like anything normal anywhere?"; on an aligned part
that misses a piece gone from one place that looks like another place's background, or a stain of a
tone the part has elsewhere. Here a place's pixel moments (score.moments.local_moments) are compared
only with the training images' moments at the same place and its eight neighbours one step away
(half a moment window: 4 px at the preset's window of 8), which takes up a fixture's jitter.
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F

REACH = 1  # neighbouring steps searched each way: the jitter the comparison forgives
PLACE_CHUNK = 64  # places whose products are taken in one batched product: ~6 MB for 16 test images, in cache


def lay_out(places: torch.Tensor) -> torch.Tensor:
    """(M, D, h, w) training moments → (h·w, D + 1, M): each place's training moments as the
    columns of one matrix, |t|²/2 below them. Done once a scoring run, not once a batch."""
    m, d, h, w = places.shape
    train = places.float().permute(2, 3, 1, 0).reshape(h * w, d, m)
    return torch.cat([train, train.square().sum(dim=1, keepdim=True) / 2], dim=1).contiguous()


_laid_out: dict[int, tuple[weakref.ref, torch.Tensor]] = {}  # by the places' id; the weak reference tells a reused id


def laid_out(places: torch.Tensor) -> torch.Tensor:
    """``lay_out`` of a checkpoint's places, made once for them: a live watch scores one image a
    call, and laying a 256-px model's places out again each time had taken a fifth of a second."""
    kept = _laid_out.get(id(places))
    if kept is not None and kept[0]() is places:
        return kept[1]
    bank = lay_out(places)
    while len(_laid_out) >= 2:
        _laid_out.pop(next(iter(_laid_out)))
    _laid_out[id(places)] = (weakref.ref(places), bank)
    return bank


def place_distance(moments: torch.Tensor, bank: torch.Tensor, reach: int = REACH) -> torch.Tensor:
    """(N, D, h, w) test moments and a ``lay_out`` bank → (N, h, w): the distance from each test
    place to the nearest training image's moments there or up to ``reach`` steps away (within the
    frame).

    Turned round for speed: at each training place t, the test places t − o of every step o are
    gathered (one unfold) and compared with t's training moments in one product, the nearest being
    the largest q·t − |t|²/2 (the −1 beside each query takes the half square). One product per
    block of PLACE_CHUNK places, not one per step, the queries set out in one copy, no bias
    copied: at 256 px on two cores 9 ms an image where the per-step products took 19, 12 ms with
    twice the columns (the 32-px moments), and with the cores shared it slows a tenth as much."""
    n, d, h, w = moments.shape
    side = 2 * reach + 1
    steps = side * side
    columns = F.unfold(F.pad(moments.float(), (reach,) * 4, mode="replicate"), side)  # (N, D·steps, h·w)
    queries = torch.empty(h * w, n * steps, d + 1, device=moments.device)  # set out once, the −1 beside
    queries[..., :d].view(h * w, n, steps, d).copy_(columns.view(n, d, steps, h * w).permute(3, 0, 2, 1))
    queries[..., d] = -1.0
    squares = columns.square().view(n, d, steps, h * w).sum(dim=1).permute(2, 0, 1).reshape(h * w, n * steps)
    nearest = torch.empty(h * w, n * steps, device=moments.device)
    for start in range(0, h * w, PLACE_CHUNK):
        block = slice(start, start + PLACE_CHUNK)
        nearest[block] = torch.bmm(queries[block], bank[block]).amax(dim=2)
    # at training place t, step (ky, kx): the test place t + (ky − reach, kx − reach) against t
    found = F.pad((squares - 2.0 * nearest).view(h, w, n, steps).permute(2, 3, 0, 1), (reach,) * 4, value=float("inf"))
    best = torch.full((n, h, w), float("inf"), device=moments.device)
    for step in range(steps):
        dy, dx = step // side - reach, step % side - reach
        best = torch.minimum(best, found[:, step, reach - dy : reach - dy + h, reach - dx : reach - dx + w])
    return best.clamp_min_(0.0).sqrt_()
