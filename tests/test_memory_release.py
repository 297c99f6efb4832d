"""core.memory: the free pages of a fragmented C heap go back to the operating system."""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from core.memory import (
    LAKE_ALLOCATOR_ENV,
    bound_lake_allocator,
    start_releasing_free_memory,
    tune_malloc,
)

glibc_only = pytest.mark.skipif(
    "glibc" not in (ctypes.util.find_library("c") or "") and not psutil.LINUX, reason="malloc tuning is glibc's"
)


#: Run in a fresh interpreter: in the test process another test's app may have started the once-a-minute
#: release thread, which can trim the heap between the frees and the first reading (CI saw 1158 -> 1158 MiB).
#: What a server holds after a burst: most blocks freed, a few still alive pinning the heap's top.
#: Prints the RSS before and after the release, in bytes.
_FRAGMENTED_HEAP = """
import gc
import psutil
from core.memory import release_free_memory

process = psutil.Process()
blocks = [bytearray(4096) for _ in range(40_000)]  # ~160 MiB of malloc'd blocks (too big for pymalloc)
survivors = blocks[::100]  # every 100th stays alive, so freeing the rest cannot shrink the heap from its top
del blocks
gc.collect()
before = process.memory_info().rss
release_free_memory()
after = process.memory_info().rss
assert len(survivors) == 400
print(before, after)
"""


@glibc_only
def test_release_hands_back_the_free_pages_of_a_fragmented_heap() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FRAGMENTED_HEAP], capture_output=True, text=True, check=True, timeout=120
    )
    before, after = (int(word) for word in done.stdout.split()[-2:])
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


#: Run in a fresh interpreter (jemalloc reads its settings once, when ``deltalake`` loads): what the API's
#: exporter does once a minute, an ``insert_new`` merge of a small batch, repeated; prints the RSS growth in MiB.
_MERGE_LOOP = """
import sys
import pandas as pd
import psutil
from core.lake import Lake
from features.ingest.synthetic import SyntheticConfig, generate

lake = Lake(sys.argv[1])
generate(lake, SyntheticConfig(n_titles=200, n_profiles=100, n_events=2000))
events = lake.read("watch_events")
process = psutil.Process()
def merge(i: int) -> None:
    batch = events.head(30).assign(event_id=[f"soak-{i}-{j}" for j in range(30)])
    lake.write("watch_events", batch, mode="insert_new")
for i in range(5):  # warm-up: the Tokio runtime, DataFusion's first plans
    merge(-1 - i)
before = process.memory_info().rss
for i in range(int(sys.argv[2])):
    merge(i)
print((process.memory_info().rss - before) / 2**20)
"""


def _merge_growth_mib(tmp_path: Path, name: str, lake_allocator_conf: str | None) -> float:
    env = {key: value for key, value in os.environ.items() if key != LAKE_ALLOCATOR_ENV}
    if lake_allocator_conf is not None:
        env[LAKE_ALLOCATOR_ENV] = lake_allocator_conf
    done = subprocess.run(
        [sys.executable, "-c", _MERGE_LOOP, str(tmp_path / name), "60"],
        env=env, capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return float(done.stdout.strip().splitlines()[-1])


def test_importing_core_bounds_the_lake_allocator_before_deltalake_loads() -> None:
    import core.lake  # noqa: F401 (core/__init__.py ran first)

    assert os.environ[LAKE_ALLOCATOR_ENV]  # set, or the operator's own settings kept
    assert bound_lake_allocator() == os.environ[LAKE_ALLOCATOR_ENV]


@pytest.mark.skipif(not psutil.LINUX, reason="delta-rs links jemalloc on Linux")
def test_bounded_lake_allocator_keeps_repeated_merges_from_growing_the_process(tmp_path: Path) -> None:
    """60 export merges: jemalloc's defaults keep pages per thread and per arena; the bound hands them back."""
    default = _merge_growth_mib(tmp_path, "default", "")  # empty: jemalloc's own defaults
    bounded = _merge_growth_mib(tmp_path, "bounded", None)  # what every Marquee process gets
    assert bounded < default / 4, f"RSS growth over 60 merges: default {default:.1f} MiB, bounded {bounded:.1f}"
    assert default > 8.0, f"the default allocator grew only {default:.1f} MiB: the test no longer shows the problem"
