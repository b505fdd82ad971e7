"""A training run's record as it goes: its pace, and the losses a checkpoint keeps."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Clock:
    """A run's pace: images and iterations so far against the iterations it will take."""

    started: float
    total_iterations: int
    images_seen: int = 0
    iterations: int = 0

    def count(self, images: int) -> None:
        self.images_seen += images
        self.iterations += 1

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def rate(self) -> float:
        """Images a second so far."""
        elapsed = self.elapsed()
        return self.images_seen / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float:
        """Seconds to the end of the last epoch, at the pace so far."""
        return self.elapsed() / max(1, self.iterations) * (self.total_iterations - self.iterations)


@dataclass
class History:
    iteration_losses: list[tuple[float, float, float]] = field(default_factory=list)
    epoch_summaries: list[dict[str, float]] = field(default_factory=list)
