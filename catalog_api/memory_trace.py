"""Opt-in memory tracing of an API process, for finding what grows under a soak.

Off unless ``MARQUEE_MEMORY_TRACE`` names a file. Then ``tracemalloc`` runs
(10 frames) and every ``MARQUEE_MEMORY_TRACE_EVERY_S`` seconds (default 60) a
report is appended to that file: RSS, the Python heap that tracemalloc sees,
Arrow's pool (allocations tracemalloc cannot see), the size of every bounded
structure of the process state, and the allocation sites that grew most since
the first report. Tracing costs CPU and memory of its own, so it is for
diagnosis, never for production or for the soak's figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import psutil
import pyarrow as pa

logger = logging.getLogger(__name__)

TRACE_ENV = "MARQUEE_MEMORY_TRACE"
EVERY_ENV = "MARQUEE_MEMORY_TRACE_EVERY_S"
TOP_SITES = 25


def trace_target() -> Path | None:
    """The report file, when tracing was asked for."""
    value = os.environ.get(TRACE_ENV)
    return Path(value) if value else None


async def trace_memory(target: Path, sizes: Callable[[], dict[str, int]]) -> None:
    """Append a report to ``target`` every period until cancelled; ``sizes`` names the state's structures."""
    every = float(os.environ.get(EVERY_ENV) or 60.0)
    tracemalloc.start(10)
    process = psutil.Process()
    baseline: tracemalloc.Snapshot | None = None
    started = time.monotonic()
    try:
        while True:
            await asyncio.sleep(every)
            snapshot = await asyncio.to_thread(_filtered_snapshot)
            lines = [
                f"== t={time.monotonic() - started:.0f}s rss={process.memory_info().rss / 2**20:.1f}MiB "
                f"traced={tracemalloc.get_traced_memory()[0] / 2**20:.1f}MiB "
                f"arrow={pa.total_allocated_bytes() / 2**20:.1f}MiB "
                f"arrow_peak={pa.default_memory_pool().max_memory() / 2**20:.1f}MiB {_malloc_summary()}",
                "sizes: " + ", ".join(f"{name}={value}" for name, value in sizes().items()),
            ]
            if baseline is None:
                baseline = snapshot
            else:
                for stat in snapshot.compare_to(baseline, "traceback")[:TOP_SITES]:
                    lines.append(f"{stat.size_diff / 2**20:+.2f}MiB {stat.count_diff:+d} blocks")
                    lines.extend(f"    {line}" for line in stat.traceback.format(limit=6))
            with target.open("a", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")
    finally:
        with contextlib.suppress(Exception):
            tracemalloc.stop()


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"
    )]  # fmt: skip


def _malloc_summary() -> str:
    """glibc's view of the C heap: bytes in use and bytes held free (retained, not returned to the OS)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return "malloc=unknown"
    return (
        f"malloc_arena={info.arena / 2**20:.1f}MiB malloc_mmap={info.hblkhd / 2**20:.1f}MiB "
        f"malloc_used={info.uordblks / 2**20:.1f}MiB malloc_free={info.fordblks / 2**20:.1f}MiB"
    )


def _filtered_snapshot() -> tracemalloc.Snapshot:
    return tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>")]
    )
