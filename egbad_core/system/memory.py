"""The C allocator's settings: what keeps peak resident memory near what tensors need.

glibc's malloc raises its mmap threshold each time a large block is freed, so after the first
training step most activation tensors come from the heap instead of their own mappings; freed
heap space is kept and fragments, and the peak grew by about 230 MB on the seed preset
(benchmarks/speed.py). A fixed threshold keeps large tensors in mappings that go back to the
system when freed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
import threading
from typing import Iterator

M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h
# Blocks from 4 MiB up get their own mapping: the seed preset's activations, which made the heap
# grow. At 1 MiB the default preset's smaller tensors were mapped too, and training ran 25-40% slower.
MMAP_THRESHOLD_BYTES = 4 << 20


def limit_heap_growth() -> bool:
    """Fix glibc's mmap threshold for this process; True where it was set (Linux with glibc)."""
    return _mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


M_TRIM_THRESHOLD = -1
# While scoring: blocks up to 32 MiB (glibc's largest threshold) come from the heap and are used
# again by the next batch, and free space is not handed back between batches. With every tensor
# above 4 MiB a new mapping, each batch's page faults had halved scoring's speed: 13 against 26
# images/s at 256 px, 1.0 against 1.8 megapixels/s on photos (benchmarks/RESULTS.md).
SCORING_MMAP_THRESHOLD = 32 << 20
SCORING_TRIM_THRESHOLD = 1 << 30
DEFAULT_TRIM_THRESHOLD = 128 << 10  # glibc's
_scoring = {"depth": 0, "lock": threading.Lock()}


@contextlib.contextmanager
def heap_for_scoring() -> Iterator[None]:
    """Within it the allocator keeps and reuses what a scoring batch frees (nested uses count
    once); at the end the fixed threshold is back and the free pages go back to the system.
    Without glibc it changes nothing."""
    with _scoring["lock"]:
        _scoring["depth"] += 1
        if _scoring["depth"] == 1:
            _mallopt(M_MMAP_THRESHOLD, SCORING_MMAP_THRESHOLD)
            _mallopt(M_TRIM_THRESHOLD, SCORING_TRIM_THRESHOLD)
    try:
        yield
    finally:
        with _scoring["lock"]:
            _scoring["depth"] -= 1
            if _scoring["depth"] == 0:
                _mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                _mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
                release_free_memory()


def _mallopt(parameter: int, value: int) -> bool:
    libc = _glibc()
    return bool(libc.mallopt(parameter, value)) if libc is not None else False


def _glibc():
    """The C library where it is glibc on Linux, else None (another OS, or musl: left as it is)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def release_free_memory() -> bool:
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``); True where it was
    done. Called when a long job ends in the window: the heap's free space is otherwise kept, and a
    window kept open through many runs holds the high-water mark of every one of them."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def available_bytes() -> int | None:
    """Memory the system can give this process now without swapping (Linux's MemAvailable), or
    None where it cannot be told."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
