"""The bitrate / resolution ladder, filtered by the title, the device and the plan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.domain import VIDEO_QUALITIES
from media.library import Package
from media.manifests import Rendition as PackagedRendition

Device = Literal["tv", "web", "mobile"]


@dataclass(frozen=True)
class Rendition:
    """One video rendition of the ladder."""

    name: str
    quality: str
    width: int
    height: int
    bandwidth: int
    codecs: str = "avc1.640028,mp4a.40.2"


LADDER: tuple[Rendition, ...] = (
    Rendition("240p", "SD", 426, 240, 400_000),
    Rendition("480p", "SD", 854, 480, 1_200_000),
    Rendition("720p", "HD", 1280, 720, 3_000_000),
    Rendition("1080p", "FHD", 1920, 1080, 6_000_000),
    Rendition("2160p", "UHD", 3840, 2160, 16_000_000, codecs="hvc1.2.4.L150.B0,mp4a.40.2"),
)

#: The best quality each plan includes.
PLAN_MAX = {"basic": "HD", "standard": "FHD", "premium": "UHD"}
#: The best quality each device class can show.
DEVICE_MAX = {"mobile": "FHD", "web": "FHD", "tv": "UHD"}
#: Where playback starts (and what prefetch hints warm): a quick-starting rung.
START_RENDITION = "480p"


def _rank(quality: str) -> int:
    return VIDEO_QUALITIES.index(quality) if quality in VIDEO_QUALITIES else 0


def ladder_for(video_qualities: tuple[str, ...] | list[str], plan: str, device: str) -> list[Rendition]:
    """Renditions allowed by the title's encodings, the plan's cap and the device's cap, lowest first.

    SD is always available so playback never has an empty ladder.
    """
    cap = min(_rank(PLAN_MAX.get(plan, "HD")), _rank(DEVICE_MAX.get(device, "FHD")))
    encoded = {q for q in video_qualities} | {"SD"}
    return [r for r in LADDER if r.quality in encoded and _rank(r.quality) <= cap]


def quality_of(height: int) -> str:
    """The quality class of a picture height (SD up to 576 lines, HD 720, FHD 1080, UHD above)."""
    return "SD" if height <= 576 else "HD" if height <= 720 else "FHD" if height <= 1080 else "UHD"


def packaged_ladder(
    package: Package, video_qualities: tuple[str, ...] | list[str], plan: str, device: str
) -> list[PackagedRendition]:
    """A package's renditions allowed by the title's encodings, the plan's cap and the device's cap, lowest first.

    The lowest rendition is always kept so playback never has an empty ladder.
    """
    cap = min(_rank(PLAN_MAX.get(plan, "HD")), _rank(DEVICE_MAX.get(device, "FHD")))
    encoded = {q for q in video_qualities} | {"SD"}
    streams = sorted(package.video, key=lambda v: v.height)
    allowed = [v for v in streams if quality_of(v.height) in encoded and _rank(quality_of(v.height)) <= cap]
    return [
        PackagedRendition(v.name, v.width, v.height, v.peak_bitrate, v.codecs, v.bitrate, tuple(v.segments))
        for v in (allowed or streams[:1])
    ]
