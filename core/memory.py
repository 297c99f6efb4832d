"""Keep a long-running server's resident memory flat: fewer malloc arenas, free pages handed back.

Why this exists: under a steady soak the servers' Python heaps stayed flat while their
resident memory kept climbing (API +13.5 %, model server +22.5 % over 30 minutes). The
growth was native: glibc gives every thread that allocates an arena of its own (up to
8 per core: the event loop, the thread pool, the exporter, Feast's push, BLAS) and keeps
the freed pages of each for reuse; Arrow's allocator (mimalloc) likewise holds pages
after a lake read. Neither is a leak, but neither is ever given back, and fragmentation
across many arenas makes each new peak land on fresh pages.

The Delta Lake library (delta-rs) links an allocator of its own, jemalloc, which glibc's
settings do not reach: with its defaults (8 arenas on 2 cores, a cache per thread, freed
pages kept for 10 s) every lake merge on a fresh Tokio thread left pages behind, and a
bare process repeating the API's one-a-minute export merge grew 250 → 404 MiB in 200
merges. :func:`bound_lake_allocator` gives it one arena, no thread caches and immediate
purging (250 → 250 MiB), at about 50 ms of CPU per merge. ``core/__init__.py`` calls it,
because jemalloc reads its settings once, when the library loads: before any ``core``
module imports ``deltalake``.

Each long-running process calls :func:`tune_malloc` once at start (before its
threads start) and runs :func:`release_free_memory` on a schedule. The share of a
request's CPU this costs is nil: one ``malloc_trim`` a minute takes a few milliseconds.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from functools import cache

from core.periodic import Periodic

logger = logging.getLogger(__name__)

#: ``mallopt`` parameter numbers (malloc.h): the arena limit and the size from which a block is mmapped.
_M_ARENA_MAX = -8
_M_MMAP_THRESHOLD = -3

#: Blocks of at least this many bytes get a mapping of their own, returned to the system when freed.
#: Setting it also turns off glibc's sliding threshold, which after the first large free moves
#: blocks up to 32 MiB into the heap: the push's and the exporter's pandas frames (they grow with
#: the lake) then left holes that the heap kept (the API's soak growth). 512 KiB keeps the model
#: server's per-request score arrays (under 200 KiB) in the heap, where they are cheap.
MMAP_THRESHOLD_BYTES = 512 * 1024

#: Arenas a server keeps: the event loop's thread and one for every other thread together.
DEFAULT_ARENAS = 2

#: Environment variable that overrides :data:`DEFAULT_ARENAS`, as glibc's own ``MALLOC_ARENA_MAX`` does.
ARENAS_ENV = "MALLOC_ARENA_MAX"

#: Environment variable from which delta-rs's jemalloc (built with the ``_rjem_`` prefix) reads its settings.
LAKE_ALLOCATOR_ENV = "_RJEM_MALLOC_CONF"

#: One arena, no per-thread caches, free pages returned at once (see the module's docstring).
LAKE_ALLOCATOR_CONF = "narenas:1,tcache:false,dirty_decay_ms:0,muzzy_decay_ms:0"

#: Seconds between two releases of free memory in a server.
RELEASE_EVERY_S = 60.0


def bound_lake_allocator() -> str:
    """Set delta-rs's jemalloc settings (:data:`LAKE_ALLOCATOR_CONF`) unless the environment sets them.

    Takes effect only before ``deltalake`` is imported; returns the settings in force.
    Child processes (uvicorn and BentoML workers, consumers) inherit them.
    """
    return os.environ.setdefault(LAKE_ALLOCATOR_ENV, LAKE_ALLOCATOR_CONF)


@cache
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return None


def tune_malloc(count: int | None = None) -> bool:
    """Cap glibc's malloc arenas (``MALLOC_ARENA_MAX``, else :data:`DEFAULT_ARENAS`), fix the mmap threshold.

    Arrow is moved onto the same heap (see :func:`_arrow_on_the_c_heap`).

    Call it before the process starts its threads: an arena made before the cap stays.
    Returns whether the cap was set (False where the C library is not glibc).
    """
    if count is None:
        try:
            count = int(os.environ.get(ARENAS_ENV) or DEFAULT_ARENAS)
        except ValueError:
            count = DEFAULT_ARENAS
    libc = _libc()
    if libc is None or count < 1:
        return False
    libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    _arrow_on_the_c_heap()
    return bool(libc.mallopt(_M_ARENA_MAX, count))


def _arrow_on_the_c_heap() -> None:
    """Arrow allocates from glibc too (its default, mimalloc, kept a 1 GiB arena whose pages grew with every
    lake read): one heap, trimmed by :func:`release_free_memory`, large buffers returned as soon as freed."""
    try:
        import pyarrow as pa
    except ImportError:
        return
    pa.set_memory_pool(pa.system_memory_pool())


def release_free_memory() -> None:
    """Hand the free pages of the C heap and of Arrow's pool back to the operating system."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except ImportError:  # a process without Arrow has no pool to release
        pass


def start_releasing_free_memory(every_s: float = RELEASE_EVERY_S) -> bool:
    """Release free memory every ``every_s`` seconds in a daemon thread (``core.periodic``), once per process.

    A thread, not an event-loop task: ``malloc_trim`` walks the heap for a few milliseconds
    and the server keeps answering meanwhile; the model server's workers have no loop of
    their own at start-up. Returns False when this process already runs the thread.
    """
    global _releaser
    with _releaser_lock:
        if _releaser is not None and _releaser.running:
            return False
        _releaser = Periodic(release_free_memory, every_s, name="memory-release")
        return _releaser.start()


_releaser: Periodic | None = None
_releaser_lock = threading.Lock()
