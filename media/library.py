"""What is published on disk: packaged titles (``package.json`` per version, a ``CURRENT`` pointer per
content id) and the running edges (``edges.json``), read by the API and written by the packager and
``marquee serve edge``.

Pure standard library: the API reads these without loading ffmpeg or nginx code.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PACKAGE_FILE = "package.json"
CURRENT_FILE = "CURRENT"
#: Seconds a looked-up package pointer is trusted before it is looked at again (``MediaLibrary``).
RECHECK_S = 1.0
EDGES_FILE = "edges.json"
#: The content id of the sample clip streamed for titles that have no package of their own.
SAMPLE_CONTENT_ID = "_sample"


@dataclass(frozen=True)
class VideoStream:
    """One packaged video rendition (bit rates measured on its segments)."""

    name: str
    width: int
    height: int
    bitrate: int
    peak_bitrate: int
    codecs: str
    segments: list[float]


@dataclass(frozen=True)
class AudioStream:
    """One packaged audio language."""

    language: str
    bitrate: int
    codecs: str
    segments: list[float]


@dataclass(frozen=True)
class Package:
    """One immutable packaged version of a title."""

    content_id: str
    version: str
    name: str
    duration_s: float
    segment_s: int
    ladder: str
    video: list[VideoStream]
    audio: list[AudioStream]
    subtitles: list[str]
    trials: list[dict[str, Any]] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        """The URL path prefix of this version (what a signature covers)."""
        return f"/v/{self.content_id}/{self.version}/"

    def save(self, folder: Path) -> None:
        """Write ``package.json`` atomically."""
        partial = folder / (PACKAGE_FILE + ".partial")
        partial.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")
        partial.replace(folder / PACKAGE_FILE)

    @classmethod
    def load(cls, folder: Path) -> Package:
        """Read ``package.json`` of a version folder."""
        raw = json.loads((folder / PACKAGE_FILE).read_text(encoding="utf-8"))
        raw["video"] = [VideoStream(**v) for v in raw["video"]]
        raw["audio"] = [AudioStream(**a) for a in raw["audio"]]
        return cls(**raw)


def package_dir(media_root: Path, content_id: str, version: str) -> Path:
    """The folder of one version."""
    return media_root / "v" / content_id / version


def write_current(media_root: Path, content_id: str, version: str) -> None:
    """Point ``content_id`` at ``version`` (atomic rename; readers see the old or the new one)."""
    pointer = media_root / "v" / content_id / CURRENT_FILE
    partial = pointer.with_name(f"{CURRENT_FILE}.{os.getpid()}")
    partial.write_text(version + "\n")
    partial.replace(pointer)


class MediaLibrary:
    """The packaged titles under a media root, cached per ``CURRENT`` file modification time.

    Each content id's pointer is looked at (``os.stat``) at most once every
    :data:`RECHECK_S`: a new version reaches manifests and prefetch hints within
    that time. A home page asks for the packages of three prefetched titles, each
    its own and the shared sample's: six ``stat`` calls, 4 % of a cold page's CPU.
    """

    def __init__(
        self, media_root: Path, recheck_s: float = RECHECK_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.media_root = media_root
        self.recheck_s = recheck_s
        self._clock = clock
        # ``current`` runs for a few titles of every home page: a string path and ``os.stat`` instead of
        # three ``Path`` joins and ``Path.stat`` per call.
        self._versions = os.path.join(media_root, "v")
        #: content id -> (when its pointer was last looked at, the pointer's mtime or None, its package)
        self._cache: dict[str, tuple[float, float | None, Package | None]] = {}
        self._lock = threading.Lock()

    def current(self, content_id: str) -> Package | None:
        """The current package of ``content_id``, or ``None`` when it has none."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get(content_id)
        if cached is not None and now - cached[0] < self.recheck_s:
            return cached[2]
        pointer = os.path.join(self._versions, content_id, CURRENT_FILE)
        try:
            stamp: float | None = os.stat(pointer).st_mtime
        except OSError:
            stamp = None
        if stamp is None:
            package: Package | None = None
        elif cached is not None and cached[1] == stamp:
            package = cached[2]
        else:
            try:
                version = Path(pointer).read_text().strip()
                package = Package.load(package_dir(self.media_root, content_id, version))
            except (OSError, ValueError, TypeError, KeyError):
                package = None
        with self._lock:
            self._cache[content_id] = (now, stamp, package)
        return package

    def for_content(self, content_id: str) -> Package | None:
        """The package to stream for ``content_id``: its own, else the shared sample clip, else ``None``."""
        return self.current(content_id) or self.current(SAMPLE_CONTENT_ID)


@dataclass(frozen=True)
class EdgeRecord:
    """A running edge as the API needs it: name, base URL, regions served."""

    name: str
    base_url: str
    regions: tuple[str, ...]


def write_edges(path: Path, edges: list[EdgeRecord], origin_url: str) -> None:
    """Publish the running edges (``marquee serve edge`` writes this when they are up)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    body = {"origin": origin_url, "edges": [{**asdict(e), "regions": list(e.regions)} for e in edges]}
    partial.write_text(json.dumps(body, indent=1), encoding="utf-8")
    partial.replace(path)


def read_edges(path: Path) -> list[EdgeRecord]:
    """The published edges, or an empty list when none are (missing or unreadable file)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return [EdgeRecord(e["name"], e["base_url"], tuple(e["regions"])) for e in raw["edges"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
