"""Stable bucketing hash: ``(salt, unit_id) -> bucket in [0, 10000)``.

Why this hash: assignment must give the same bucket in every process, every
Python version and on every machine (so no ``hash()``), and the same bucket for
one call in the API as for ten million ids in a notebook. The algorithm is
FNV-1a 64 over the UTF-8 bytes of ``salt + ":" + unit_id`` followed by the
murmur3 64-bit finaliser (FNV-1a alone mixes its low bits poorly, and the
bucket is taken modulo 10,000). Both forms below compute exactly this, one in
plain Python integers, one column by column over a numpy ``uint8`` matrix.

NUL bytes are skipped by both forms (numpy pads fixed-width byte strings with
NULs, so skipping them is what makes the vectorised form exact).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

#: Buckets per hash: traffic and weights have a resolution of 0.01 %.
N_BUCKETS = 10_000

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = 0xFFFFFFFFFFFFFFFF
_M1 = 0xFF51AFD7ED558CCD
_M2 = 0xC4CEB9E87A6CE53


def _fnv_update(state: int, data: bytes) -> int:
    for byte in data:
        if byte:
            state = ((state ^ byte) * _FNV_PRIME) & _MASK
    return state


def _fmix64(h: int) -> int:
    h ^= h >> 33
    h = (h * _M1) & _MASK
    h ^= h >> 33
    h = (h * _M2) & _MASK
    h ^= h >> 33
    return h


@lru_cache(maxsize=4096)
def salt_state(salt: str) -> int:
    """FNV state after ``salt + ":"``: computed once per salt (cached), reused for every unit."""
    return _fnv_update(_FNV_OFFSET, salt.encode("utf-8") + b":")


def bucket(salt: str, unit_id: str, *, state: int | None = None) -> int:
    """Bucket of one unit under ``salt``, in ``[0, N_BUCKETS)``.

    Args:
        salt: the layer's or the experiment's salt.
        unit_id: the external id of the randomisation unit (profile or account id).
        state: ``salt_state(salt)`` when the caller has it cached (saves ~1 µs).
    """
    start = salt_state(salt) if state is None else state
    return _fmix64(_fnv_update(start, unit_id.encode("utf-8"))) % N_BUCKETS


#: Rows hashed per block: the running hash of a block stays in the CPU cache across byte columns.
_BLOCK = 1 << 15


def byte_columns(unit_ids: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """UTF-8 bytes of each id as the columns of a zero-padded ``(width, n)`` uint8 matrix.

    Computed once per batch and shared by every salt (``buckets_from_columns``).
    ASCII str arrays (the usual case) are converted without a Python loop.
    """
    array = np.asarray(unit_ids)
    if array.ndim != 1:
        raise ValueError(f"unit_ids must be a 1-d array, got shape {array.shape}")
    n = len(array)
    if array.dtype.kind == "U" and array.dtype.itemsize:
        codes = array.view(np.uint32).reshape(n, array.dtype.itemsize // 4)
        if n == 0 or int(codes.max()) < 128:
            return np.ascontiguousarray(codes.T.astype(np.uint8))
    if array.dtype.kind == "S":
        encoded = array
    else:
        try:
            encoded = array.astype("S")
        except UnicodeEncodeError:
            encoded = np.array([str(u).encode("utf-8") for u in array.tolist()], dtype="S")
    width = encoded.dtype.itemsize
    if n == 0 or width == 0:
        return np.zeros((0, n), dtype=np.uint8)
    matrix = np.ascontiguousarray(encoded).view(np.uint8).reshape(n, width)
    return np.ascontiguousarray(matrix.T)


def buckets_from_columns(salt: str, columns: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """Buckets under ``salt`` of the ids whose ``byte_columns`` are given; shape ``(n,)`` int64."""
    width, n = columns.shape
    result = np.empty(n, dtype=np.int64)
    start_state = np.uint64(salt_state(salt))
    prime = np.uint64(_FNV_PRIME)
    with np.errstate(over="ignore"):
        for lo in range(0, n, _BLOCK):
            hi = min(n, lo + _BLOCK)
            h = np.full(hi - lo, start_state, dtype=np.uint64)
            mixed = np.empty_like(h)
            for j in range(width):
                column = columns[j, lo:hi]
                np.bitwise_xor(h, column, out=mixed)
                np.multiply(mixed, prime, out=mixed)
                if column.all():
                    h, mixed = mixed, h
                else:
                    np.copyto(h, mixed, where=column != 0)
            h ^= h >> np.uint64(33)
            h *= np.uint64(_M1)
            h ^= h >> np.uint64(33)
            h *= np.uint64(_M2)
            h ^= h >> np.uint64(33)
            result[lo:hi] = h % np.uint64(N_BUCKETS)
    return result


def buckets(salt: str, unit_ids: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Buckets of many units under ``salt``; equal element-wise to ``bucket``.

    Args:
        salt: the layer's or the experiment's salt.
        unit_ids: shape ``(n,)``, str (or UTF-8 bytes) ids.

    Returns:
        shape ``(n,)`` int64 buckets in ``[0, N_BUCKETS)``.
    """
    return buckets_from_columns(salt, byte_columns(unit_ids))
