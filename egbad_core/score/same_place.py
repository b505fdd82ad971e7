"""The same-place comparison of aligned images (issue 19): each place of a test image against the
same place, give or take one step, in each of the training images.

A memory bank of places answers "does this look like anything normal anywhere?"; on an aligned part
that misses a piece gone from one place that looks like another place's background, or a stain of a
tone the part has elsewhere. Here a place's pixel moments (score.local.local_moments) are compared
only with the training images' moments at the same place and its eight neighbours one step away
(half a moment window: 4 px at the preset's window of 8), which takes up a fixture's jitter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

REACH = 1  # neighbouring steps searched each way: the jitter the comparison forgives


def place_distance(moments: torch.Tensor, places: torch.Tensor, reach: int = REACH) -> torch.Tensor:
    """(N, D, h, w) test moments and (M, D, h, w) training moments → (N, h, w): the distance from
    each test place to the nearest training image's moments there or up to ``reach`` steps away
    (within the frame).

    Squared distances as batched matrix products over the places, |q|² − 2·q·t + |t|². The
    training moments are laid out once a call, and for each step it is the test moments that are
    shifted, then their result shifted back: shifting the training images' (150 images against a
    batch's 16) had taken two thirds of the time."""
    n, d, h, w = moments.shape
    train = places.float().permute(2, 3, 1, 0).reshape(h * w, d, -1)  # (places, D, M)
    train_squares = train.square().sum(dim=1, keepdim=True)
    padded = F.pad(moments.float(), (reach, reach, reach, reach), mode="replicate")
    best = torch.full((n, h, w), float("inf"), device=moments.device)
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            # the test place p set at p + (dy, dx), beside the training places it is compared with
            shifted = padded[:, :, reach - dy : reach - dy + h, reach - dx : reach - dx + w]
            queries = shifted.permute(2, 3, 0, 1).reshape(h * w, n, d)
            squares = torch.baddbmm(train_squares, queries, train, alpha=-2.0).amin(dim=2) + queries.square().sum(dim=2)
            found = F.pad(squares.t().reshape(n, h, w), (reach, reach, reach, reach), value=float("inf"))
            best = torch.minimum(best, found[:, reach + dy : reach + dy + h, reach + dx : reach + dx + w])
    return best.clamp_min_(0.0).sqrt_()
