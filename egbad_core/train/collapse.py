"""Notices the ways EGBAD training degenerates, and says what to do about each."""

from __future__ import annotations

import numpy as np

from ..events import WarningEvent
from ..score.explained import POOR_FIT, describe_fit


class CollapseWatch:
    """Checked once an epoch; warns once per kind of collapse."""

    D_LOSS_FLOOR = 0.01  # mean D loss under this for a whole epoch: D separates every pair
    ALIKE_RATIO = 0.1  # reconstructions vary less than a tenth as much as their inputs
    GRACE_EPOCHS = 2

    def __init__(self, epochs: int = 0) -> None:
        self.warned: set[str] = set()
        # R² climbs for most of a run (the demo's: −0.99 after 10 of 60 epochs, 0.29 after 30): it is
        # judged from half-way through the run's epochs on, not while G is still learning to draw.
        self.fit_from = max(self.GRACE_EPOCHS + 1, epochs // 2)

    def check(self, epoch: int, d_loss: float, originals: np.ndarray, reconstructions: np.ndarray,
              fit: float | None = None) -> list[WarningEvent]:
        """The warnings this epoch brings: D has won, the reconstructions have become alike, or they
        explain less than a fifth of the images' variation (``fit``, R²)."""
        found: list[WarningEvent] = []
        if d_loss < self.D_LOSS_FLOOR and "discriminator" not in self.warned:
            found.append(
                WarningEvent(
                    epoch,
                    "discriminator",
                    f"The discriminator has won (D loss {d_loss:.1e}): G and E get no useful signal "
                    "and scores will only count ink. Use the default preset (spectral normalisation "
                    "and a balanced D), or lower the D learning rate.",
                )
            )
        spread_in = float(originals.std(axis=0).mean()) if len(originals) > 1 else 0.0
        spread_out = float(reconstructions.std(axis=0).mean()) if len(reconstructions) > 1 else 0.0
        settled = epoch > self.GRACE_EPOCHS  # every fresh G starts out drawing the same blur
        if settled and spread_in > 0 and spread_out < self.ALIKE_RATIO * spread_in and "alike" not in self.warned:
            found.append(
                WarningEvent(
                    epoch,
                    "alike",
                    "The reconstructions of different images have become alike (mode collapse): "
                    "G ignores what E encodes. Train longer, or restart with another seed.",
                )
            )
        if epoch >= self.fit_from and fit is not None and fit < POOR_FIT and "fit" not in self.warned:
            found.append(
                WarningEvent(
                    epoch,
                    "fit",
                    f"After {epoch} epochs {describe_fit(fit)}: G(E(x)) does not follow the images, so the "
                    "residual half of the score says little and the maps show the model's noise. Train "
                    "longer; if it stays low, the score rests on D's features alone.",
                )
            )
        self.warned.update(w.kind for w in found)
        return found
