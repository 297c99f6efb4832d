"""Playback: who may play what, where from, at which qualities, from which position."""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Literal

from catalog_api.playback.cdn import EdgeDirectory
from catalog_api.playback.ladder import START_RENDITION, ladder_for
from catalog_api.playback.manifest import PlaybackPlan, Track, dash_mpd, hls_master
from catalog_api.playback.signing import sign_url, signed_query
from catalog_api.services.catalog_cache import CatalogSnapshot, CatalogTitle
from core.errors import ForbiddenError, NotFoundError

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


def content_path(content_id: str) -> str:
    """The CDN path prefix of one movie or episode."""
    return f"/v/{content_id}/"


def check_access(title: CatalogTitle, viewer: Viewer) -> None:
    """403 when the title is above the profile's maturity level or not licensed in its country."""
    if title.maturity_level > viewer.maturity_level:
        raise ForbiddenError(
            f"title {title.title_id!r} is rated {title.maturity_rating or 'unrated'} (level {title.maturity_level}), "
            f"above this profile's maturity level {viewer.maturity_level}"
        )
    if title.countries and viewer.country not in title.countries:
        raise ForbiddenError(f"title {title.title_id!r} is not licensed in {viewer.country}")


class PlaybackService:
    """Builds manifests and prefetch hints."""

    def __init__(self, edges: EdgeDirectory, signing_key: str, url_ttl_s: int) -> None:
        self.edges = edges
        self.signing_key = signing_key
        self.url_ttl_s = url_ttl_s
        #: Step of prefetch URL expiries (a tenth of their lifetime, at most 30 s).
        self.reuse_s = max(1, min(30, url_ttl_s // 10))
        #: Signed prefetch URL lists per expiry, then per (edge, content id, segments).
        self._prefetch_urls: dict[int, dict[tuple[str, str, int], list[str]]] = {}

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
        renditions = ladder_for(title.video_qualities, viewer.plan, device)
        spoken = [language_code(lang) for lang in title.languages] or ["en"]
        wanted = language_code(viewer.language)
        audio_languages = list(dict.fromkeys(spoken))
        default_audio = wanted if wanted in audio_languages else audio_languages[0]
        audio = [Track(lang, lang == default_audio) for lang in audio_languages]
        subtitle_languages = list(dict.fromkeys([wanted, *audio_languages]))
        # Subtitles on by default only when the profile's language is not spoken in the title.
        subtitles = [Track(lang, lang == wanted and wanted != default_audio) for lang in subtitle_languages]
        edge = self.edges.choose(viewer.country)
        prefix = content_path(content_id)
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
        key = (edge.base_url, content_id, segments)
        urls = signed.get(key)
        if urls is None:
            base = f"{content_path(content_id)}{START_RENDITION}/"
            paths = [f"{base}init.mp4"] + [f"{base}seg-{n:05d}.m4s" for n in range(1, segments + 1)]
            urls = signed[key] = [sign_url(edge.base_url, p, self.signing_key, expires) for p in paths]
        return START_RENDITION, list(urls)
