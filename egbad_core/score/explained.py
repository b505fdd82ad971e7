"""How much of the images' variation G(E(x)) explains: the coefficient of determination R².

R² = 1 − Σ(x − x')² / Σ(x − x̄)², with x̄ each input's own mean per channel (a patch model's input
is a tile). 1 is a perfect copy, 0 is no better than painting each input its own flat average, and
below 0 the reconstruction is worse than that. The residual half of the score means something only
where R² is well above 0: on photographed textures the first patch models reached 2.3 times the flat
patch's error (R² −1.3) while their scores came from D's features and the pixels' moments alone.
"""

from __future__ import annotations

import torch

POOR_FIT = 0.2  # below this the collapse watch says the reconstructions do not follow the images


def variation_sums(x: torch.Tensor, reconstruction: torch.Tensor) -> tuple[float, float]:
    """(Σ(x − x')², Σ(x − x̄)²) over a batch (N, C, H, W) in any one scale; add them over batches."""
    x, reconstruction = x.double(), reconstruction.double()
    mean = x.mean(dim=(2, 3), keepdim=True)
    return float(((x - reconstruction) ** 2).sum()), float(((x - mean) ** 2).sum())


def explained(residual: float, total: float) -> float | None:
    """R² from the two sums; None where the inputs do not vary (nothing to explain)."""
    return 1.0 - residual / total if total > 0 else None


def explained_variation(x: torch.Tensor, reconstruction: torch.Tensor) -> float | None:
    """R² of one batch."""
    return explained(*variation_sums(x, reconstruction))


def describe_fit(r2: float | None) -> str:
    """The figure in words for the window and the command line."""
    if r2 is None:
        return "the reconstructions cannot be judged (the images do not vary)"
    if r2 < 0:
        return f"the reconstructions explain none of the images' variation (R² {r2:.2f}: worse than a flat tone)"
    return f"the reconstructions explain {100 * r2:.0f}% of the images' variation (R² {r2:.2f})"
