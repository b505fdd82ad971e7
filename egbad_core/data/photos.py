"""Photos kept at their own resolution (a model's ``photo_scale``): the size a folder's training
photos are held at, and where they are held.

300 colour photos of 12 megapixels are 11 GB decoded. Up to PHOTO_MEMORY_SHARE of the free memory
they are held in memory; beyond it in a cache file mapped into memory, which the system pages in
as the training's random patches touch it. The file is removed from the folder the moment it is
mapped, so nothing is left on the disk however the process ends.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..errors import EgbadError
from ..system.memory import available_bytes
from .decoding import header_size, scaled_size

PHOTO_MEMORY_SHARE = 0.5  # of the free memory the decoded training photos may take; beyond it, a cache file
CACHE_FOLDER_VARIABLE = "EGBAD_CACHE"  # where that file goes (the system's temporary folder if unset)


def common_shape(paths: list[Path], scale: float) -> tuple[tuple[int, int], str]:
    """The (height, width) a folder's training photos are held at, their median own size at
    ``scale`` (each photo is resized to it, so that one block holds them all), and a sentence
    naming the photos of another size, or "" where they are all one size."""
    sizes = {path: size for path in paths if (size := header_size(path)) is not None}
    if not sizes:
        return (1, 1), ""  # nothing readable: the decoding names each file
    height = int(statistics.median(h for h, _ in sizes.values()))
    width = int(statistics.median(w for _, w in sizes.values()))
    others = [f"{path.name} ({w}×{h})" for path, (h, w) in sizes.items() if (h, w) != (height, width)]
    note = (f"; {len(others)} of another size resized to the median {width}×{height} first, their detail changed: "
            + ", ".join(others[:3]) + (" …" if len(others) > 3 else "")) if others else ""
    return scaled_size(height, width, scale), note


def gigabytes(count: int) -> str:
    return f"{count / 2**30:.1f} GB"


def photo_block(count: int, channels: int, shape: tuple[int, int], free: int | None = None) -> tuple[torch.Tensor, str]:
    """An uninitialised uint8 block (count, channels, height, width) for decoded photos, and where it
    lies in a sentence for the user: in memory while it takes at most PHOTO_MEMORY_SHARE of the free
    memory, else in a mapped cache file. Raises EgbadError where the disk cannot hold that file."""
    need = count * channels * shape[0] * shape[1]
    free = available_bytes() if free is None else free
    if free is None or need <= free * PHOTO_MEMORY_SHARE:
        return torch.empty((count, channels, *shape), dtype=torch.uint8), f"held in memory ({gigabytes(need)})"
    folder = Path(os.environ.get(CACHE_FOLDER_VARIABLE) or tempfile.gettempdir())
    room = shutil.disk_usage(folder).free
    if room < need:
        raise EgbadError(f"The {count:,} photos at {shape[1]}×{shape[0]} px need {gigabytes(need)}: more than half the "
                         f"free memory ({gigabytes(free)}) and more than {folder} has free ({gigabytes(room)}); "
                         f"set {CACHE_FOLDER_VARIABLE} to a folder with room, or use a smaller photo scale.")
    handle, name = tempfile.mkstemp(prefix="egbad-photos-", suffix=".cache", dir=folder)
    try:
        os.ftruncate(handle, need)
        block = np.memmap(name, dtype=np.uint8, mode="r+", shape=(count, channels, *shape))
    finally:
        os.close(handle)
        os.unlink(name)  # the mapping stays; the name goes at once, whatever ends the process
    return torch.from_numpy(block), (f"{gigabytes(need)}, more than half the free memory ({gigabytes(free)}): "
                                     f"memory-mapped from a cache file in {folder}, read as training needs it")
