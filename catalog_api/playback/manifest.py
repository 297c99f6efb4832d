"""HLS master playlists and DASH MPDs for one title or episode.

Pure text generation from a ``PlaybackPlan``: the ladder, audio and subtitle
tracks, the edge and the signed query are decided by ``playback.service``.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from catalog_api.playback.ladder import Rendition

SEGMENT_S = 4


@dataclass(frozen=True)
class Track:
    """An audio or subtitle track in one language."""

    language: str
    default: bool


@dataclass(frozen=True)
class PlaybackPlan:
    """Everything a manifest needs.

    ``base_url`` is the edge plus the content prefix (``https://edge/v/<id>/``),
    ``query`` the signed query string valid for every path under it.
    """

    content_id: str
    duration_s: int
    renditions: list[Rendition]
    audio: list[Track]
    subtitles: list[Track]
    base_url: str
    query: str
    resume_s: int


def _url(plan: PlaybackPlan, path: str) -> str:
    return f"{plan.base_url}{path}?{plan.query}"


def hls_master(plan: PlaybackPlan) -> str:
    """An HLS master playlist: audio and subtitle groups, one variant stream per rendition."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if plan.resume_s:
        lines.append(f"#EXT-X-START:TIME-OFFSET={plan.resume_s},PRECISE=YES")
    for track in plan.audio:
        lines.append(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",LANGUAGE="{track.language}",NAME="{track.language}",'
            f"DEFAULT={'YES' if track.default else 'NO'},AUTOSELECT=YES,"
            f'URI="{_url(plan, f"audio-{track.language}/index.m3u8")}"'
        )
    for track in plan.subtitles:
        lines.append(
            f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="{track.language}",NAME="{track.language}",'
            f"DEFAULT={'YES' if track.default else 'NO'},AUTOSELECT=YES,"
            f'URI="{_url(plan, f"subs-{track.language}/index.m3u8")}"'
        )
    for rendition in plan.renditions:
        lines.append(
            f"#EXT-X-STREAM-INF:BANDWIDTH={rendition.bandwidth},RESOLUTION={rendition.width}x{rendition.height},"
            f'CODECS="{rendition.codecs}",AUDIO="aud"' + (',SUBTITLES="subs"' if plan.subtitles else "")
        )
        lines.append(_url(plan, f"{rendition.name}/index.m3u8"))
    return "\n".join(lines) + "\n"


def _duration(seconds: int) -> str:
    return f"PT{max(seconds, 1)}S"


def dash_mpd(plan: PlaybackPlan) -> str:
    """A static DASH MPD with one video adaptation set and one per audio and subtitle language."""
    query = plan.query.replace("&", "&amp;")
    template = (
        f'media="$RepresentationID$/seg-$Number%05d$.m4s?{query}" initialization="$RepresentationID$/init.mp4?{query}"'
    )
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" '
        f'type="static" mediaPresentationDuration="{_duration(plan.duration_s)}" minBufferTime="PT2S">',
        f"  <BaseURL>{plan.base_url}</BaseURL>",
        '  <Period id="0" start="PT0S">',
    ]
    if plan.resume_s:
        out.append(f'    <SupplementalProperty schemeIdUri="urn:marquee:resume" value="{plan.resume_s}"/>')
    out.append('    <AdaptationSet contentType="video" mimeType="video/mp4" segmentAlignment="true">')
    out.append(f'      <SegmentTemplate timescale="1" duration="{SEGMENT_S}" startNumber="1" {template}/>')
    for r in plan.renditions:
        out.append(
            f'      <Representation id="{r.name}" bandwidth="{r.bandwidth}" width="{r.width}" '
            f'height="{r.height}" codecs={quoteattr(r.codecs.split(",")[0])}/>'
        )
    out.append("    </AdaptationSet>")
    for track in plan.audio:
        out.append(f'    <AdaptationSet contentType="audio" mimeType="audio/mp4" lang="{track.language}">')
        if track.default:
            out.append('      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>')
        out.append(f'      <SegmentTemplate timescale="1" duration="{SEGMENT_S}" startNumber="1" {template}/>')
        out.append(f'      <Representation id="audio-{track.language}" bandwidth="128000" codecs="mp4a.40.2"/>')
        out.append("    </AdaptationSet>")
    for track in plan.subtitles:
        out.append(f'    <AdaptationSet contentType="text" mimeType="text/vtt" lang="{track.language}">')
        out.append(
            f'      <Representation id="subs-{track.language}" bandwidth="1000">'
            f"<BaseURL>subs-{track.language}/full.vtt?{query}</BaseURL></Representation>"
        )
        out.append("    </AdaptationSet>")
    out.extend(["  </Period>", "</MPD>"])
    return "\n".join(out) + "\n"
