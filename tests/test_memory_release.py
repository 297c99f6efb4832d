"""core.memory: the free pages of a fragmented C heap go back to the operating system."""

from __future__ import annotations

import ctypes.util
import gc

import psutil
import pytest

from core.memory import release_free_memory, start_releasing_free_memory, tune_malloc

glibc_only = pytest.mark.skipif(
    "glibc" not in (ctypes.util.find_library("c") or "") and not psutil.LINUX, reason="malloc tuning is glibc's"
)


@glibc_only
def test_release_hands_back_the_free_pages_of_a_fragmented_heap() -> None:
    """What a server holds after a burst: most blocks freed, a few still alive pinning the heap's top."""
    process = psutil.Process()
    blocks = [bytearray(4096) for _ in range(40_000)]  # ~160 MiB of malloc'd blocks (too big for pymalloc)
    survivors = blocks[::100]  # every 100th stays alive, so freeing the rest cannot shrink the heap from its top
    del blocks
    gc.collect()
    before = process.memory_info().rss
    release_free_memory()
    after = process.memory_info().rss
    assert len(survivors) == 400
    assert before - after > 64 * 2**20, f"RSS {before / 2**20:.0f} -> {after / 2**20:.0f} MiB"


@glibc_only
def test_arena_cap_is_accepted_and_the_release_thread_starts_once() -> None:
    assert tune_malloc(2)
    import pyarrow as pa

    assert pa.default_memory_pool().backend_name == "system", "Arrow allocates from the trimmed C heap"
    assert not tune_malloc(0)  # nonsense is refused, not passed to glibc
    first = start_releasing_free_memory(every_s=3600)
    assert start_releasing_free_memory(every_s=3600) is False  # one thread per process, however often asked
    assert first in (True, False)  # another test (an app's lifespan) may have started it already
