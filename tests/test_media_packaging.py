"""Packaging with the real ffmpeg: valid CMAF/HLS/DASH, aligned keyframes, audio per language, WebVTT,
idempotent and resumable runs, immutable versions, per-title ladders; the edge's signing scheme."""

from __future__ import annotations

import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import services_required

from core.errors import ConfigurationError, ForbiddenError
from media import tools
from media.ladder import FIXED_LADDER, Rung, TrialPoint, convex_hull, per_title_ladder
from media.library import MediaLibrary, Package
from media.package import PackagingOptions, package_title, version_of
from media.signing import sign_url, verify_signed_url
from media.source import TitleSource

MPD = {"d": "urn:mpeg:dash:schema:mpd:2011"}
SOURCE = TitleSource("m_demo", 'The "Media" Test: 100%', ("en", "es"), look="cartoon", duration_s=8)
FIXED = PackagingOptions(ladder="fixed")


def require_ffmpeg() -> None:
    """Skip without ffmpeg (fail under MARQUEE_REQUIRE_SERVICES=1)."""
    if tools.available("ffmpeg") and tools.available("ffprobe"):
        return
    if services_required():
        pytest.fail("ffmpeg is not installed and MARQUEE_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip("ffmpeg is not installed (apt-get install ffmpeg)")


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A media root shared by the media tests of this session (packaging is idempotent)."""
    return tmp_path_factory.getbasetemp() / "media-root"


@pytest.fixture(scope="module")
def packaged(media_root: Path) -> Package:
    """``SOURCE`` packaged with the fixed ladder."""
    require_ffmpeg()
    package, _ = package_title(SOURCE, media_root, FIXED)
    return package


def _first_frames(folder: Path, segment: int) -> list[dict[str, str]]:
    """Frames of one segment (init + segment bytes, as a player joins them)."""
    joined = folder / f"joined-{segment}.mp4"
    joined.write_bytes((folder / "init.mp4").read_bytes() + (folder / f"seg-{segment:05d}.m4s").read_bytes())
    try:
        frames = tools.probe(joined, "-show_frames", "-show_entries", "frame=key_frame,pict_type")["frames"]
    finally:
        joined.unlink()
    return list(frames)


@pytest.mark.integration
def test_package_has_a_ladder_audio_per_language_subtitles_and_both_manifests(
    packaged: Package, media_root: Path, tmp_path: Path
) -> None:
    folder = media_root / "v" / SOURCE.content_id / packaged.version
    assert [v.name for v in packaged.video] == ["240p", "360p", "480p", "720p", "1080p"]
    assert [a.language for a in packaged.audio] == ["en", "es"] and packaged.subtitles == ["en", "es"]
    durations = {tuple(v.segments) for v in packaged.video}
    assert len(durations) == 1, "renditions must share segment boundaries"
    (segments,) = durations
    assert all(2 <= d <= 4 for d in segments[:-1]) and abs(sum(segments) - SOURCE.duration_s) < 0.1
    for video in packaged.video:
        scratch = tmp_path / video.name
        scratch.mkdir()
        for name in ("init.mp4", *(f"seg-{n:05d}.m4s" for n in range(1, len(segments) + 1))):
            (scratch / name).write_bytes((folder / video.name / name).read_bytes())
        for n in range(1, len(segments) + 1):
            frames = _first_frames(scratch, n)
            assert frames[0]["key_frame"] == 1 and frames[0]["pict_type"] == "I", f"{video.name} segment {n}"
        info = tools.probe(scratch / "init.mp4", "-show_streams")["streams"][0]
        assert (info["codec_name"], info["width"], info["height"]) == ("h264", video.width, video.height)
        assert video.codecs.startswith("avc1.64") and video.bitrate > 0
    for audio in packaged.audio:
        info = tools.probe(folder / f"audio-{audio.language}" / "init.mp4", "-show_streams")["streams"][0]
        assert info["codec_name"] == "aac" and int(info["sample_rate"]) == 48000
    for language in packaged.subtitles:
        vtt = (folder / f"subs-{language}" / "full.vtt").read_text()
        assert vtt.startswith("WEBVTT") and f"[{language}] {SOURCE.name}" in vtt
    master = (folder / "master.m3u8").read_text()
    assert master.count("#EXT-X-STREAM-INF") == 5 and 'LANGUAGE="es"' in master and "TYPE=SUBTITLES" in master
    for line in (line for line in master.splitlines() if line.endswith("index.m3u8")):
        assert (folder / line).exists()
    mpd = ET.fromstring((folder / "manifest.mpd").read_text())
    video_set = mpd.find(".//d:AdaptationSet[@contentType='video']", MPD)
    assert video_set is not None and len(video_set.findall("d:Representation", MPD)) == 5
    timeline = video_set.findall("d:SegmentTemplate/d:SegmentTimeline/d:S", MPD)
    assert [int(s.get("d", "0")) for s in timeline] == [round(d * 1000) for d in segments]
    assert len(mpd.findall(".//d:AdaptationSet[@contentType='audio']", MPD)) == 2


@pytest.mark.integration
def test_rerun_does_nothing_and_the_version_is_immutable(packaged: Package, media_root: Path) -> None:
    folder = media_root / "v" / SOURCE.content_id / packaged.version
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    again, encoded = package_title(SOURCE, media_root, FIXED)
    assert not encoded and again == packaged
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()} == before
    assert all(not p.stat().st_mode & stat.S_IWUSR for p in before), "a finished version is read-only"
    assert MediaLibrary(media_root).current(SOURCE.content_id) == packaged
    changed = TitleSource(SOURCE.content_id, SOURCE.name, ("en",), look="cartoon", duration_s=4)
    assert version_of(changed, FIXED) != packaged.version  # a new encode gets a new path


@pytest.mark.integration
def test_an_interrupted_run_resumes_without_redoing_finished_streams(tmp_path: Path) -> None:
    require_ffmpeg()
    small = PackagingOptions(ladder="fixed", rungs=FIXED_LADDER[:2])
    source = TitleSource("m_small", "Small", ("en",), look="cartoon", duration_s=4)

    class StopError(Exception):
        pass

    def stop_after_first_rendition(what: str) -> None:
        if what == "240p":
            raise StopError

    with pytest.raises(StopError):
        package_title(source, tmp_path, small, progress=stop_after_first_rendition)
    folder = tmp_path / "v" / "m_small" / version_of(source, small)
    assert (folder / "240p" / ".done").exists() and not (folder / "package.json").exists()
    first = (folder / "240p" / "seg-00001.m4s").stat().st_mtime_ns
    steps: list[str] = []
    package, encoded = package_title(source, tmp_path, small, progress=steps.append)
    assert encoded and [v.name for v in package.video] == ["240p", "360p"]
    assert (folder / "240p" / "seg-00001.m4s").stat().st_mtime_ns == first  # not encoded again


def test_missing_ffmpeg_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigurationError, match=r"ffmpeg is not installed.*apt-get install -y ffmpeg"):
        package_title(TitleSource("m_x", "X"), tmp_path, FIXED)


def _points(curve: dict[str, list[tuple[int, float]]]) -> list[TrialPoint]:
    rungs = {r.name: r for r in FIXED_LADDER}
    return [
        TrialPoint(name, rungs[name].width, rungs[name].height, bits, bits, quality)
        for name, pairs in curve.items()
        for bits, quality in pairs
    ]


def test_convex_hull_drops_points_under_the_frontier() -> None:
    points = _points({"240p": [(100, 30.0), (400, 31.0)], "480p": [(200, 34.0), (800, 36.0)], "720p": [(300, 33.0)]})
    hull = convex_hull(points)
    assert [(p.rung, p.bitrate) for p in hull] == [("240p", 100), ("480p", 200), ("480p", 800)]


def test_per_title_ladder_spends_less_on_a_flat_quality_curve() -> None:
    ladder = FIXED_LADDER[:4]
    fractions = (0.125, 0.25, 0.5, 1.0)
    flat = _points(
        {r.name: [(int(r.bitrate * f), 40.0 + i + f * 0.3) for f in fractions] for i, r in enumerate(ladder)}
    )
    steep = _points({r.name: [(int(r.bitrate * f), 30.0 + i + f * 8) for f in fractions] for i, r in enumerate(ladder)})
    flat_bits = sum(p.bitrate for _, p in per_title_ladder(flat, ladder))
    steep_bits = sum(p.bitrate for _, p in per_title_ladder(steep, ladder))
    assert flat_bits < steep_bits == sum(r.bitrate for r in ladder)
    assert len(per_title_ladder(flat, ladder)) >= 4


@pytest.mark.integration
@pytest.mark.slow
def test_per_title_trials_give_a_static_source_fewer_bits_than_a_busy_one(tmp_path: Path) -> None:
    require_ffmpeg()
    from media.pertitle import run_trials
    from media.source import make_mezzanine

    rungs = (Rung("240p", 426, 240, 400_000), Rung("360p", 640, 360, 800_000), Rung("480p", 854, 480, 1_400_000))
    bits = {}
    for look in ("cartoon", "action"):
        mezzanine = make_mezzanine(TitleSource(f"m_{look}", look, look=look, duration_s=2), tmp_path / f"{look}.mp4")
        points = run_trials(mezzanine, tmp_path / look, rungs, seconds=2)
        bits[look] = sum(p.bitrate for _, p in per_title_ladder(points, rungs))
        fixed = sum(max((p for p in points if p.rung == r.name), key=lambda p: p.target_bitrate).bitrate for r in rungs)
        assert bits[look] <= fixed
    assert bits["cartoon"] < bits["action"] / 2


def test_python_verifier_agrees_with_the_scheme() -> None:
    # That nginx accepts these signatures is tested against the real edges (tests/api/test_api_media_edges.py).
    url = sign_url("http://edge", "/v/t1/abc/720p/seg-00001.m4s", "k" * 32, 2000, prefix="/v/t1/abc/")
    assert verify_signed_url(url, "k" * 32, now=1000) == "/v/t1/abc/720p/seg-00001.m4s"
    with pytest.raises(ForbiddenError, match="expired"):
        verify_signed_url(url, "k" * 32, now=2000)
    with pytest.raises(ForbiddenError, match="outside"):
        verify_signed_url(url.replace("/v/t1/abc/720p", "/v/t2/abc/720p"), "k" * 32, now=1000)
    with pytest.raises(ValueError, match="cannot sign prefix"):
        sign_url("http://edge", "/v/a b/x", "k" * 32, 2000, prefix="/v/a b/")
