"""Simple detectors computed on the same split as the model, to show what the model adds.

* PCA-k: reconstruction error of the whole image's pixels from k principal components;
* nearest training image: the pixel distance to the closest training image;
* nearest training patch: each 8×8 patch of raw pixels against a bank of training patches, the
  image scored by its worst patch (a crude PatchCore on pixels); it gives a map too.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

PATCH = 8
BANK = 30_000  # training patches kept, at most (a random sample)
STRIDE = 4  # pixels between patches, in training and test images


def pca_error(train: np.ndarray, test: np.ndarray, components: int) -> np.ndarray:
    pca = PCA(n_components=min(components, len(train) - 1), random_state=0).fit(train)
    return ((test - pca.inverse_transform(pca.transform(test))) ** 2).sum(axis=1)


def nearest_image(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    return NearestNeighbors(n_neighbors=1).fit(train).kneighbors(test)[0][:, 0]


def nearest_patch(train: torch.Tensor, test: torch.Tensor, stride: int = STRIDE) -> tuple[np.ndarray, np.ndarray]:
    """(image scores, maps (N, S, S)) from 8×8 raw-pixel patches every ``stride`` pixels: a random
    BANK of the training patches; each test patch scored by its distance to the nearest."""
    generator = torch.Generator().manual_seed(0)
    bank = F.unfold(train, PATCH, stride=stride).transpose(1, 2).reshape(-1, train.shape[1] * PATCH * PATCH)
    if bank.shape[0] > BANK:
        bank = bank[torch.randperm(bank.shape[0], generator=generator)[:BANK]]
    scores, maps = [], []
    size = test.shape[-1]
    for start in range(0, test.shape[0], 8):
        batch = test[start : start + 8]
        columns = F.unfold(batch, PATCH, stride=stride)  # (n, D, L)
        queries = columns.transpose(1, 2).reshape(-1, columns.shape[1])
        distance = torch.cat([torch.cdist(q, bank).min(dim=1).values for q in queries.split(4096)])
        side = (size - PATCH) // stride + 1
        grid = distance.view(batch.shape[0], 1, side, side)
        scores.append(grid.flatten(1).max(dim=1).values)
        maps.append(F.interpolate(grid, size=(size, size), mode="bilinear", align_corners=False)[:, 0])
    return torch.cat(scores).numpy(), torch.cat(maps).numpy()


def pixel_spread(train: torch.Tensor, test: torch.Tensor, floor: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """(image scores, maps (N, S, S)) for aligned parts: each pixel's distance from its own mean over
    the training images, in units of its own spread there (at least ``floor``), the largest over the
    channels, averaged over 5×5 pixels against noise; the image scored by its worst place."""
    mean, spread = train.mean(dim=0), train.std(dim=0).clamp_min(floor)
    maps = []
    for start in range(0, test.shape[0], 32):
        distance = ((test[start : start + 32] - mean) / spread).abs().amax(dim=1, keepdim=True)
        maps.append(F.avg_pool2d(distance, 5, stride=1, padding=2)[:, 0])
    maps = torch.cat(maps)
    return maps.flatten(1).amax(dim=1).numpy(), maps.numpy()
