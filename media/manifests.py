"""HLS master and media playlists and DASH MPDs, as text, from a ``PlaybackPlan``.

One writer for both users: the packager writes the whole ladder with relative URLs
next to the segments, and the API writes a manifest filtered by device and plan,
pointing at an edge with a signed query. Segment durations come from the package
(a ``SegmentTimeline``), so DASH players request exactly the segments that exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

from media.library import Package

AUDIO_CODEC = "mp4a.40.2"


@dataclass(frozen=True)
class Track:
    """An audio or subtitle track in one language."""

    language: str
    default: bool
    bandwidth: int = 128_000
    codecs: str = AUDIO_CODEC
    segments: tuple[float, ...] = ()


@dataclass(frozen=True)
class Rendition:
    """One video rendition: its folder name, size, bit rates, video codec and segment durations."""

    name: str
    width: int
    height: int
    bandwidth: int
    codecs: str = "avc1.640028"
    average_bandwidth: int = 0
    segments: tuple[float, ...] = ()


@dataclass(frozen=True)
class PlaybackPlan:
    """Everything a manifest needs.

    ``base_url`` is where the version's folders are (``https://edge/v/<id>/<version>/``,
    or empty for relative URLs), ``query`` the signed query valid for every path under
    it (empty for none).
    """

    content_id: str
    duration_s: float
    renditions: list[Rendition]
    audio: list[Track]
    subtitles: list[Track]
    base_url: str = ""
    query: str = ""
    resume_s: int = 0
    segment_s: int = 4
    extra: dict[str, str] = field(default_factory=dict)


def plan_for(package: Package, base_url: str = "", query: str = "") -> PlaybackPlan:
    """The plan of a whole package (every rendition, first audio language as default)."""
    return PlaybackPlan(
        content_id=package.content_id,
        duration_s=package.duration_s,
        renditions=[
            Rendition(v.name, v.width, v.height, v.peak_bitrate, v.codecs, v.bitrate, tuple(v.segments))
            for v in package.video
        ],
        audio=[Track(a.language, i == 0, a.bitrate, a.codecs, tuple(a.segments)) for i, a in enumerate(package.audio)],
        subtitles=[Track(lang, False) for lang in package.subtitles],
        base_url=base_url,
        query=query,
        segment_s=package.segment_s,
    )


def _url(plan: PlaybackPlan, path: str) -> str:
    return f"{plan.base_url}{path}?{plan.query}" if plan.query else f"{plan.base_url}{path}"


def hls_master(plan: PlaybackPlan) -> str:
    """An HLS master playlist: audio and subtitle groups, one variant stream per rendition."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if plan.resume_s:
        lines.append(f"#EXT-X-START:TIME-OFFSET={plan.resume_s},PRECISE=YES")
    for track in plan.audio:
        lines.append(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",LANGUAGE="{track.language}",NAME="{track.language}",'
            f'DEFAULT={"YES" if track.default else "NO"},AUTOSELECT=YES,CHANNELS="2",'
            f'URI="{_url(plan, f"audio-{track.language}/index.m3u8")}"'
        )
    for track in plan.subtitles:
        lines.append(
            f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="{track.language}",NAME="{track.language}",'
            f"DEFAULT={'YES' if track.default else 'NO'},AUTOSELECT=YES,"
            f'URI="{_url(plan, f"subs-{track.language}/index.m3u8")}"'
        )
    audio_bandwidth = max((t.bandwidth for t in plan.audio), default=0)
    audio_codec = plan.audio[0].codecs if plan.audio else ""
    for r in plan.renditions:
        codecs = ",".join(c for c in (r.codecs, audio_codec) if c)
        average = f",AVERAGE-BANDWIDTH={r.average_bandwidth + audio_bandwidth}" if r.average_bandwidth else ""
        lines.append(
            f"#EXT-X-STREAM-INF:BANDWIDTH={r.bandwidth + audio_bandwidth}{average},"
            f'RESOLUTION={r.width}x{r.height},CODECS="{codecs}",AUDIO="aud"'
            + (',SUBTITLES="subs"' if plan.subtitles else "")
        )
        lines.append(_url(plan, f"{r.name}/index.m3u8"))
    return "\n".join(lines) + "\n"


def subtitle_playlist(duration_s: float) -> str:
    """The HLS media playlist of a subtitle track: one WebVTT file covering the whole title."""
    seconds = max(duration_s, 1)
    return "\n".join([
        "#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{int(-(-seconds // 1))}", "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD", f"#EXTINF:{seconds:.3f},", "full.vtt", "#EXT-X-ENDLIST",
    ]) + "\n"  # fmt: skip


def _duration(seconds: float) -> str:
    return f"PT{max(seconds, 1):.3f}S"


def _template(plan: PlaybackPlan, segments: tuple[float, ...], indent: str) -> list[str]:
    query = f"?{plan.query}".replace("&", "&amp;") if plan.query else ""
    attrs = (
        f'media="$RepresentationID$/seg-$Number%05d$.m4s{query}" '
        f'initialization="$RepresentationID$/init.mp4{query}" startNumber="1"'
    )
    if not segments:
        return [f'{indent}<SegmentTemplate timescale="1" duration="{plan.segment_s}" {attrs}/>']
    out = [f'{indent}<SegmentTemplate timescale="1000" {attrs}>', f"{indent}  <SegmentTimeline>"]
    start = 0
    for seconds in segments:
        length = round(seconds * 1000)
        out.append(f'{indent}    <S t="{start}" d="{length}"/>')
        start += length
    out += [f"{indent}  </SegmentTimeline>", f"{indent}</SegmentTemplate>"]
    return out


def dash_mpd(plan: PlaybackPlan) -> str:
    """A static DASH MPD: one video adaptation set, one per audio and per subtitle language."""
    query = f"?{plan.query}".replace("&", "&amp;") if plan.query else ""
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" '
        f'type="static" mediaPresentationDuration="{_duration(plan.duration_s)}" minBufferTime="PT2S">',
    ]
    if plan.base_url:
        out.append(f"  <BaseURL>{plan.base_url}</BaseURL>")
    out.append('  <Period id="0" start="PT0S">')
    if plan.resume_s:
        out.append(f'    <SupplementalProperty schemeIdUri="urn:marquee:resume" value="{plan.resume_s}"/>')
    out.append('    <AdaptationSet contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1">')
    timeline = plan.renditions[0].segments if plan.renditions else ()
    out.extend(_template(plan, timeline, "      "))
    for r in plan.renditions:
        out.append(
            f'      <Representation id="{r.name}" bandwidth="{r.bandwidth}" width="{r.width}" '
            f'height="{r.height}" codecs={quoteattr(r.codecs)}/>'
        )
    out.append("    </AdaptationSet>")
    for track in plan.audio:
        out.append(f'    <AdaptationSet contentType="audio" mimeType="audio/mp4" lang="{track.language}">')
        if track.default:
            out.append('      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>')
        out.extend(_template(plan, track.segments, "      "))
        out.append(
            f'      <Representation id="audio-{track.language}" bandwidth="{track.bandwidth}" '
            f'codecs="{track.codecs}" audioSamplingRate="48000"/>'
        )
        out.append("    </AdaptationSet>")
    for track in plan.subtitles:
        out.append(f'    <AdaptationSet contentType="text" mimeType="text/vtt" lang="{track.language}">')
        out.append(
            f'      <Representation id="subs-{track.language}" bandwidth="1000">'
            f"<BaseURL>subs-{track.language}/full.vtt{query}</BaseURL></Representation>"
        )
        out.append("    </AdaptationSet>")
    out.extend(["  </Period>", "</MPD>"])
    return "\n".join(out) + "\n"
