"""What a scoring run returns: per-image terms and scores, and the pictures where they are kept."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..config import Normalisation


@dataclass
class Scores:
    """Per-image results of one scoring run, in the order the images came."""

    method: str
    residual: np.ndarray  # (N,)
    discrimination: np.ndarray  # (N,)
    score: np.ndarray  # (N,) the combined A(x)
    reconstructions: np.ndarray | None  # (N, C, S, S) in [0, 1], for drawing
    residual_maps: np.ndarray | None  # (N, S, S) per-pixel |x − x'| summed over channels
    seconds: float
    lam: float
    worst_places: np.ndarray | None = None  # (N, 2) row, column of each image's worst place at the model's size
    local: bool = False  # a local (patch) model's: the maps are anomaly maps in score units, the score their maximum

    def __len__(self) -> int:
        return self.score.shape[0]

    def places(self) -> np.ndarray | None:
        """(N, 2) row and column of each image's worst place at the model's size: a local model's
        own, else the residual map's largest pixel; None where neither was kept."""
        if self.worst_places is not None or self.residual_maps is None:
            return self.worst_places
        maps = self.residual_maps
        flat = maps.reshape(len(self), -1).argmax(axis=1)
        return np.stack([flat // maps.shape[-1], flat % maps.shape[-1]], axis=1)

    def subset(self, rows: np.ndarray) -> "Scores":
        """The images at ``rows``, in that order, with their pictures where they are kept."""
        pick = lambda values: None if values is None else values[rows]  # noqa: E731
        return Scores(self.method, self.residual[rows], self.discrimination[rows], self.score[rows],
                      pick(self.reconstructions), pick(self.residual_maps), self.seconds, self.lam,
                      pick(self.worst_places), self.local)

    @property
    def images_per_s(self) -> float:
        return len(self) / self.seconds if self.seconds > 0 else float("inf")


def joined_scores(parts: list[Scores]) -> Scores:
    """One Scores of several runs' images, in order; pictures where every part kept them."""
    first = parts[0]
    join = lambda name: (None if any(getattr(p, name) is None for p in parts)  # noqa: E731
                         else np.concatenate([getattr(p, name) for p in parts]))
    return Scores(first.method, join("residual"), join("discrimination"), join("score"), join("reconstructions"),
                  join("residual_maps"), sum(p.seconds for p in parts), first.lam, join("worst_places"), first.local)


def combine(residual: torch.Tensor, discrimination: torch.Tensor, lam: float) -> torch.Tensor:
    """A = (1 − λ)·R + λ·Dis."""
    return (1.0 - lam) * residual + lam * discrimination


def new_parts() -> dict[str, list[torch.Tensor]]:
    """Empty lists for the per-batch results ``collect`` joins."""
    return {"residual": [], "discrimination": [], "recon": [], "maps": []}


def add_parts(parts: dict[str, list[torch.Tensor]], residual: torch.Tensor, discrimination: torch.Tensor,
              reconstruction: torch.Tensor | None, maps: torch.Tensor) -> None:
    """One batch's results onto the host; reconstructions and maps only where they are kept."""
    parts["residual"].append(residual.float().cpu())
    parts["discrimination"].append(discrimination.float().cpu())
    if reconstruction is not None:
        parts["recon"].append(reconstruction.float().cpu())
        parts["maps"].append(maps.float().cpu())


def collect(
    method: str,
    parts: dict[str, list[torch.Tensor]],
    normalisation: Normalisation,
    lam: float,
    seconds: float,
    keep_images: bool,
    scales: tuple[float, float] = (1.0, 1.0),
) -> Scores:
    """One Scores from the batches' parts; R and Dis divided by ``scales`` (their training spreads)."""
    residual = torch.cat(parts["residual"]).double() / scales[0]
    discrimination = torch.cat(parts["discrimination"]).double() / scales[1]
    reconstructions = maps = None
    if keep_images:
        reconstructions = (torch.cat(parts["recon"]) * normalisation.std + normalisation.mean).clamp_(0, 1).numpy()
        maps = torch.cat(parts["maps"]).numpy()
    return Scores(
        method=method,
        residual=residual.numpy(),
        discrimination=discrimination.numpy(),
        score=combine(residual, discrimination, lam).numpy(),
        reconstructions=reconstructions,
        residual_maps=maps,
        seconds=seconds,
        lam=lam,
    )
