"""The C allocator's settings and the release of free heap pages (system/memory.py)."""

import sys

import pytest

from egbad_core.system.memory import limit_heap_growth, release_free_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and malloc_trim")
def test_the_allocator_takes_the_fixed_threshold_and_gives_free_pages_back():
    assert limit_heap_growth() is True
    blocks = [bytearray(64 * 1024) for _ in range(2000)]  # 128 MB of heap blocks under the threshold
    del blocks
    assert release_free_memory() is True  # malloc_trim: pages were handed back
