"""Playback: who may play what, where from, at which qualities, from which position."""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from catalog_api.options import DEFAULT_EDGES, ApiOptions, CdnEdge
from catalog_api.playback.cdn import EdgeDirectory
from catalog_api.playback.ladder import START_RENDITION, ladder_for, packaged_ladder
from catalog_api.playback.manifest import PlaybackPlan, Rendition, Track, dash_mpd, hls_master
from catalog_api.playback.signing import sign_url, signed_query
from catalog_api.playback.warm import EdgeWarmer
from catalog_api.services.catalog_cache import CatalogSnapshot, CatalogTitle
from core import rules
from core.errors import ForbiddenError, NotFoundError
from core.settings import Settings
from media.library import EDGES_FILE, MediaLibrary, Package, read_edges

ManifestFormat = Literal["hls", "dash"]
CONTENT_TYPES = {"hls": "application/vnd.apple.mpegurl", "dash": "application/dash+xml"}

#: Display language names (as catalogs list them) to the codes profiles use.
_LANGUAGE_CODES = {
    "english": "en", "spanish": "es", "french": "fr", "german": "de", "hindi": "hi", "japanese": "ja",
    "korean": "ko", "portuguese": "pt", "italian": "it", "arabic": "ar", "turkish": "tr", "mandarin": "zh",
}  # fmt: skip


def language_code(language: str) -> str:
    """``"English"`` or ``"en-US"`` → ``"en"``."""
    lowered = language.strip().lower()
    return _LANGUAGE_CODES.get(lowered, lowered.split("-")[0][:3] or "en")


@dataclass(frozen=True)
class Viewer:
    """The facts about the requesting profile that playback depends on."""

    profile_id: str
    maturity_level: int
    country: str
    language: str
    plan: str


@dataclass(frozen=True)
class Manifest:
    """A rendered manifest and what it was built from."""

    body: str
    content_type: str
    content_id: str
    edge: str
    resume_s: int
    qualities: list[str]


def content_path(content_id: str, package: Package | None = None) -> str:
    """The CDN path prefix of one movie or episode: its packaged version's folder, if it has one."""
    return package.prefix if package is not None else f"/v/{content_id}/"


def published_edges(path: Path) -> tuple[CdnEdge, ...]:
    """The edges ``marquee serve edge`` published (empty when none run)."""
    return tuple(CdnEdge(e.name, e.base_url, e.regions) for e in read_edges(path))


def check_access(title: CatalogTitle, viewer: Viewer) -> None:
    """403 when the title is above the profile's maturity level or not licensed in its country."""
    if not rules.level_allows(title.maturity_level, viewer.maturity_level):
        raise ForbiddenError(
            f"title {title.title_id!r} is rated {title.maturity_rating or 'unrated'} (level {title.maturity_level}), "
            f"above this profile's maturity level {viewer.maturity_level}"
        )
    if not rules.may_see(title.maturity_level, title.countries, viewer.maturity_level, viewer.country):
        raise ForbiddenError(f"title {title.title_id!r} is not licensed in {viewer.country}")


class PlaybackService:
    """Builds manifests and prefetch hints."""

    def __init__(
        self,
        edges: EdgeDirectory,
        signing_key: str,
        url_ttl_s: int,
        library: MediaLibrary | None = None,
        warmer: EdgeWarmer | None = None,
    ) -> None:
        self.edges = edges
        self.signing_key = signing_key
        self.url_ttl_s = url_ttl_s
        self.library = library
        self.warmer = warmer
        #: Step of prefetch URL expiries (a tenth of their lifetime, at most 30 s).
        self.reuse_s = max(1, min(30, url_ttl_s // 10))
        #: Signed prefetch URL lists per expiry, then per (edge, the version's path prefix, segments).
        self._prefetch_urls: dict[int, dict[tuple[str, str, int], list[str]]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, options: ApiOptions) -> PlaybackService:
        """The service of an API process: packaged media from the workspace, edges from ``edges.json``.

        When ``marquee serve edge`` has published running edges (and the options name no
        edges of their own) those are used, health-checked every second; otherwise the
        configured edges, unchecked. Manifests point at a title's packaged version when
        it has one (else at the shared sample clip, else at the nominal ladder).
        """
        edges_file = settings.workspace.run_dir / EDGES_FILE
        published = published_edges(edges_file)
        if options.cdn_edges is DEFAULT_EDGES and published:
            directory = EdgeDirectory(
                published, failure_threshold=2, check_interval_s=1.0, edges_file=edges_file, load_edges=published_edges
            )
            directory.start_checks()
        else:
            directory = EdgeDirectory(options.cdn_edges)
        library = MediaLibrary(settings.workspace.media_dir)
        warmer = EdgeWarmer() if published else None
        return cls(directory, settings.cdn_signing_key, options.url_ttl_s, library, warmer)

    def package(self, content_id: str) -> Package | None:
        """The packaged version streamed for ``content_id`` (its own, or the sample clip), if any."""
        return self.library.for_content(content_id) if self.library is not None else None

    def resolve(self, snapshot: CatalogSnapshot, title_id: str) -> tuple[CatalogTitle, str, int]:
        """The title whose rules apply, the content id to stream and its duration.

        A series id streams its first episode; an episode id streams itself
        under its series' rating and licence.
        """
        title = snapshot.resolve(title_id)
        if title is None:
            raise NotFoundError(f"no title or episode {title_id!r} in the catalog")
        episode = snapshot.episodes.get(title_id)
        if episode is not None:
            return title, episode.episode_id, episode.duration_s
        episodes = snapshot.episodes_by_series.get(title.title_id)
        if title.type == "series" and episodes:
            return title, episodes[0].episode_id, episodes[0].duration_s
        return title, title.title_id, title.duration_s or 0

    def manifest(
        self,
        snapshot: CatalogSnapshot,
        title_id: str,
        viewer: Viewer,
        fmt: ManifestFormat,
        device: str,
        resume_s: int,
        now: float | None = None,
    ) -> Manifest:
        """An HLS or DASH manifest for ``title_id`` as ``viewer`` may watch it."""
        title, content_id, duration_s = self.resolve(snapshot, title_id)
        check_access(title, viewer)
        package = self.package(content_id)
        wanted = language_code(viewer.language)
        if package is not None:
            renditions = packaged_ladder(package, title.video_qualities, viewer.plan, device)
            audio_languages = [a.language for a in package.audio] or ["en"]
            subtitle_languages = list(package.subtitles)
            duration_s = int(package.duration_s)
        else:
            renditions = [
                Rendition(r.name, r.width, r.height, r.bandwidth, r.codecs.split(",")[0])
                for r in ladder_for(title.video_qualities, viewer.plan, device)
            ]
            audio_languages = list(dict.fromkeys([language_code(lang) for lang in title.languages] or ["en"]))
            subtitle_languages = list(dict.fromkeys([wanted, *audio_languages]))
        default_audio = wanted if wanted in audio_languages else audio_languages[0]
        bandwidths = {a.language: (a.bitrate, tuple(a.segments)) for a in package.audio} if package else {}
        audio = [
            Track(lang, lang == default_audio, bandwidths[lang][0], segments=bandwidths[lang][1])
            if lang in bandwidths
            else Track(lang, lang == default_audio)
            for lang in audio_languages
        ]
        # Subtitles on by default only when the profile's language is not spoken in the title.
        subtitles = [Track(lang, lang == wanted and wanted != default_audio) for lang in subtitle_languages]
        edge = self.edges.choose(viewer.country)
        prefix = content_path(content_id, package)
        expires = int((time.time() if now is None else now) + self.url_ttl_s)
        plan = PlaybackPlan(
            content_id=content_id,
            duration_s=duration_s,
            renditions=renditions,
            audio=audio,
            subtitles=subtitles,
            base_url=f"{edge.base_url}{prefix}",
            query=signed_query(prefix, self.signing_key, expires),
            resume_s=min(resume_s, max(duration_s - 1, 0)),
            segment_s=package.segment_s if package is not None else 4,
        )
        body = hls_master(plan) if fmt == "hls" else dash_mpd(plan)
        return Manifest(body, CONTENT_TYPES[fmt], content_id, edge.name, plan.resume_s, [r.name for r in renditions])

    def prefetch_expiry(self, spread_key: str = "", now: float | None = None) -> int:
        """The expiry prefetch URLs signed now carry: ``now + url_ttl_s``, rounded down to a ``reuse_s`` step.

        Each ``spread_key`` (a profile id) has its own phase in the step, so the moment
        every cached home page must be rebuilt with new URLs is spread over the step
        instead of falling on one second for all profiles at once. URLs live between
        ``url_ttl_s - reuse_s`` and ``url_ttl_s`` seconds, never longer.
        """
        phase = zlib.crc32(spread_key.encode()) % self.reuse_s
        latest = int((time.time() if now is None else now) + self.url_ttl_s)
        return (latest + phase) // self.reuse_s * self.reuse_s - phase

    def prefetch_urls(
        self, snapshot: CatalogSnapshot, title_id: str, viewer: Viewer, segments: int = 3, expires: int | None = None
    ) -> tuple[str, list[str]]:
        """Signed URLs of the first ``segments`` segments at the starting quality (exact-path signatures).

        Every home page carries a few of these, and the same popular titles recur on most
        pages, so the expiry is stepped (``prefetch_expiry``, the viewer's phase unless
        ``expires`` is given) and the signed lists are reused while their expiry is current.
        The access check runs every time.
        """
        title, content_id, _ = self.resolve(snapshot, title_id)
        check_access(title, viewer)
        edge = self.edges.choose(viewer.country)
        if expires is None:
            expires = self.prefetch_expiry(viewer.profile_id)
        signed = self._prefetch_urls.get(expires)
        if signed is None:
            # Expiries earlier than any step still in use are dropped: at most ``reuse_s`` lists live.
            oldest = int(time.time() + self.url_ttl_s) - self.reuse_s
            for old in [e for e in self._prefetch_urls if e <= oldest]:
                del self._prefetch_urls[old]
            signed = self._prefetch_urls[expires] = {}
        package = self.package(content_id)
        prefix = content_path(content_id, package)
        # Keyed by the version's path, not the content id: a new version is signed anew at once.
        key = (edge.base_url, prefix, segments)
        urls = signed.get(key)
        start = START_RENDITION
        if package is not None and package.video:
            names = [v.name for v in package.video]
            start = START_RENDITION if START_RENDITION in names else names[0]
        if urls is None:
            base = f"{prefix}{start}/"
            count = segments
            if package is not None and package.video:
                count = min(segments, len(package.video[0].segments))
            paths = [f"{base}init.mp4"] + [f"{base}seg-{n:05d}.m4s" for n in range(1, count + 1)]
            urls = signed[key] = [sign_url(edge.base_url, p, self.signing_key, expires, prefix=prefix) for p in paths]
            if self.warmer is not None:
                self.warmer.warm(urls)  # the likely next title's first segments, into the edge's cache
        return start, list(urls)
