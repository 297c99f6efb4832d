"""Bitrate ladders: the fixed ladder and the per-title choice on the bitrate/quality convex hull.

Pure functions over measured trial points (``TrialPoint``); the trials themselves are
encoded and measured by ``media.pertitle``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rung:
    """One video rendition to encode: resolution and target bitrate (bits per second)."""

    name: str
    width: int
    height: int
    bitrate: int


#: The one-size-fits-all ladder a generic packager would use for every title.
FIXED_LADDER: tuple[Rung, ...] = (
    Rung("240p", 426, 240, 400_000),
    Rung("360p", 640, 360, 800_000),
    Rung("480p", 854, 480, 1_400_000),
    Rung("720p", 1280, 720, 3_000_000),
    Rung("1080p", 1920, 1080, 6_000_000),
)
#: Fractions of a fixed rung's bitrate tried per resolution (the fixed point itself is the last).
TRIAL_FRACTIONS: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0)
#: Quality above which more bits are not worth spending (PSNR dB against the reference).
QUALITY_CAP_DB = 45.0
#: Quality difference taken as equal (PSNR dB; well under what a viewer notices).
EQUAL_DB = 0.5
#: Fewest renditions a ladder keeps.
MIN_RUNGS = 4


@dataclass(frozen=True)
class TrialPoint:
    """One trial encode: resolution, bitrate actually produced, quality measured at the reference size."""

    rung: str
    width: int
    height: int
    target_bitrate: int
    bitrate: int
    quality_db: float


def convex_hull(points: list[TrialPoint]) -> list[TrialPoint]:
    """The upper convex hull of quality over bitrate: the efficient frontier across resolutions.

    A point is on it when no mix of two other points gives more quality for its bits;
    sorted by bitrate, the hull's quality rises with falling slope.
    """
    hull: list[TrialPoint] = []
    for p in sorted(points, key=lambda t: (t.bitrate, -t.quality_db)):
        if hull and p.quality_db <= hull[-1].quality_db:
            continue  # more bits, no more quality
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # b lies under the segment a→p: drop it (cross product of (b-a) and (p-a) ≥ 0).
            if (b.bitrate - a.bitrate) * (p.quality_db - a.quality_db) - (b.quality_db - a.quality_db) * (
                p.bitrate - a.bitrate
            ) >= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    return hull


def fixed_quality(points: list[TrialPoint], rung: Rung) -> TrialPoint:
    """The trial of the fixed rung itself (its resolution at its full bitrate)."""
    same = [p for p in points if p.rung == rung.name]
    return max(same, key=lambda p: p.target_bitrate)


def per_title_ladder(
    points: list[TrialPoint], ladder: tuple[Rung, ...] = FIXED_LADDER
) -> list[tuple[Rung, TrialPoint]]:
    """Per-title renditions at the quality the fixed ladder gives this title, for fewer bits.

    For each rung, the target is the quality the fixed rung reaches on this title
    (capped at ``QUALITY_CAP_DB``); the rendition is the cheapest trial at that
    resolution within ``EQUAL_DB`` of it. A flat quality curve (a static cartoon,
    where extra bits buy nothing) moves the rung to a lower bitrate; a steep one
    (an action scene) keeps it. Renditions that fall under the convex hull (another
    chosen rendition has more quality for no more bits) are dropped while more than
    ``MIN_RUNGS`` remain. Returns (rung with its new bitrate, the trial it rests on).
    """
    chosen: list[tuple[Rung, TrialPoint]] = []
    for rung in ladder:
        target = min(fixed_quality(points, rung).quality_db, QUALITY_CAP_DB)
        candidates = sorted((p for p in points if p.rung == rung.name), key=lambda p: p.target_bitrate)
        pick = next((p for p in candidates if p.quality_db >= target - EQUAL_DB), candidates[-1])
        chosen.append((Rung(rung.name, rung.width, rung.height, pick.target_bitrate), pick))
    while len(chosen) > MIN_RUNGS:
        dominated = [
            i
            for i, (_, p) in enumerate(chosen)
            if any(q.bitrate <= p.bitrate and q.quality_db > p.quality_db for j, (_, q) in enumerate(chosen) if j != i)
        ]
        if not dominated:
            break
        del chosen[dominated[0]]
    return chosen


def bits_saved(points: list[TrialPoint], ladder: tuple[Rung, ...] = FIXED_LADDER) -> tuple[int, int]:
    """(fixed ladder's total bitrate, per-title ladder's total) over the rungs both keep, at equal quality."""
    chosen = per_title_ladder(points, ladder)
    kept = {rung.name for rung, _ in chosen}
    fixed_total = sum(fixed_quality(points, r).bitrate for r in ladder if r.name in kept)
    return fixed_total, sum(p.bitrate for _, p in chosen)
