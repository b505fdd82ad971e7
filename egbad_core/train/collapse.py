"""Notices the two ways EGBAD training degenerates, and says what to do about each."""

from __future__ import annotations

import numpy as np

from ..events import WarningEvent


class CollapseWatch:
    """Checked once an epoch; warns once per kind of collapse."""

    D_LOSS_FLOOR = 0.01  # mean D loss under this for a whole epoch: D separates every pair
    ALIKE_RATIO = 0.1  # reconstructions vary less than a tenth as much as their inputs
    GRACE_EPOCHS = 2

    def __init__(self) -> None:
        self.warned: set[str] = set()

    def check(self, epoch: int, d_loss: float, originals: np.ndarray, reconstructions: np.ndarray) -> list[WarningEvent]:
        """The warnings this epoch brings: D has won, or the reconstructions have become alike."""
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
        self.warned.update(w.kind for w in found)
        return found
