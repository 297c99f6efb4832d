"""Packaging one title: a ladder of H.264 renditions, AAC audio per language, WebVTT subtitles,
as CMAF (fMP4) segments with HLS media playlists, a master playlist and a DASH MPD.

Layout under the media root (served as-is by the origin)::

    v/<content_id>/CURRENT                  the version the API streams (one line)
    v/<content_id>/<version>/package.json   what was made (``media.library.Package``); written last
    v/<content_id>/<version>/<rung>/        init.mp4, seg-00001.m4s…, index.m3u8, .done
    v/<content_id>/<version>/audio-<lang>/  the same for one audio language
    v/<content_id>/<version>/subs-<lang>/   full.vtt and a one-segment index.m3u8
    v/<content_id>/<version>/master.m3u8, manifest.mpd   the whole ladder, relative URLs

The version is a digest of the source and of the encoding settings, so a finished
version is never rewritten (its files are made read-only) and a new encode gets a
new path that edges cache separately. Each stream is encoded into a scratch folder
and renamed into place with a ``.done`` marker, so an interrupted run resumes where
it stopped and a repeated run does nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from media import manifests
from media.ladder import FIXED_LADDER, Rung, TrialPoint, per_title_ladder
from media.library import PACKAGE_FILE, AudioStream, Package, VideoStream, package_dir, write_current
from media.source import FPS, TitleSource, make_mezzanine, tone_args, webvtt
from media.tools import ToolError, ffmpeg

#: Segment length in seconds; every rendition has a keyframe exactly on each boundary.
SEGMENT_S = 4
#: Bumped whenever encoding settings change, so new encodes get new version paths.
ENCODER_VERSION = "x264-veryfast-cmaf-1"
AUDIO_BITRATE = 128_000
DONE = ".done"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PackagingOptions:
    """How to package.

    Attributes:
        ladder: ``per-title`` (trial encodes pick the bitrates) or ``fixed`` (``FIXED_LADDER``).
        rungs: the resolutions offered (default the fixed ladder's five, 240p to 1080p).
        trial_s: seconds of the source the per-title trials encode.
        preset: x264 preset of the renditions.
    """

    ladder: str = "per-title"
    rungs: tuple[Rung, ...] = FIXED_LADDER
    trial_s: int = 4
    preset: str = "veryfast"

    def fingerprint(self) -> str:
        """What of these options changes the output."""
        return json.dumps([ENCODER_VERSION, self.ladder, [asdict(r) for r in self.rungs], self.trial_s, self.preset])


def version_of(source: TitleSource, options: PackagingOptions) -> str:
    """The immutable version path of ``source`` packaged with ``options``."""
    return hashlib.sha256(f"{source.fingerprint()}|{options.fingerprint()}|{SEGMENT_S}".encode()).hexdigest()[:12]


def _hls_args(folder: Path) -> list[str]:
    return [
        "-f", "hls", "-hls_time", str(SEGMENT_S), "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
        "-hls_fmp4_init_filename", "init.mp4", "-start_number", "1", "-hls_flags", "independent_segments",
        "-hls_segment_filename", str(folder / "seg-%05d.m4s"), str(folder / "index.m3u8"),
    ]  # fmt: skip


def _x264(rung: Rung, preset: str) -> list[str]:
    gop = SEGMENT_S * FPS // 2  # a keyframe every 2 s: on every 4 s boundary, and a faster start
    return [
        "-c:v", "libx264", "-preset", preset, "-profile:v", "high", "-pix_fmt", "yuv420p",
        "-b:v", str(rung.bitrate), "-maxrate", str(int(rung.bitrate * 1.5)), "-bufsize", str(rung.bitrate * 2),
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-r", str(FPS),
        "-force_key_frames", f"expr:gte(t,n_forced*{SEGMENT_S // 2})",
    ]  # fmt: skip


def _segment_durations(playlist: Path) -> list[float]:
    return [float(line[8:].split(",")[0]) for line in playlist.read_text().splitlines() if line.startswith("#EXTINF:")]


def _bitrates(folder: Path, durations: list[float]) -> tuple[int, int]:
    """(average, peak) bits per second over the segments, init segment excluded."""
    sizes = [(folder / f"seg-{n:05d}.m4s").stat().st_size for n in range(1, len(durations) + 1)]
    average = int(sum(sizes) * 8 / max(sum(durations), 1e-6))
    peak = max(int(s * 8 / max(d, 1e-6)) for s, d in zip(sizes, durations, strict=True))
    return average, peak


def _avc_codec(folder: Path) -> str:
    """``avc1.PPCCLL`` from the ``avcC`` box of the init segment (profile, constraints, level)."""
    init = (folder / "init.mp4").read_bytes()
    at = init.find(b"avcC")
    if at < 0:
        raise ToolError(f"{folder / 'init.mp4'} has no avcC box: not an H.264 init segment")
    return "avc1." + init[at + 5 : at + 8].hex()


def _publish(scratch: Path, final: Path) -> None:
    (scratch / DONE).write_text("ok\n")
    if final.exists():
        shutil.rmtree(final)
    scratch.replace(final)


def _encode_video(mezzanine: Path, rung: Rung, out: Path, preset: str) -> None:
    scratch = out.with_name(out.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    scale = f"scale={rung.width}:{rung.height}:flags=bicubic"
    ffmpeg(["-i", str(mezzanine), "-map", "0:v:0", "-an", "-vf", scale, *_x264(rung, preset), *_hls_args(scratch)],
           f"encoding {rung.name}")  # fmt: skip
    _publish(scratch, out)


def _encode_audio(source: TitleSource, index: int, out: Path) -> None:
    scratch = out.with_name(out.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    args = [*tone_args(index, source.duration_s), "-c:a", "aac", "-b:a", str(AUDIO_BITRATE), "-ac", "2"]
    ffmpeg([*args, *_hls_args(scratch)], f"encoding audio {source.languages[index]}")
    _publish(scratch, out)


def _write_subtitles(source: TitleSource, language: str, out: Path) -> None:
    scratch = out.with_name(out.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    (scratch / "full.vtt").write_text(webvtt(source, language), encoding="utf-8")
    (scratch / "index.m3u8").write_text(manifests.subtitle_playlist(source.duration_s), encoding="utf-8")
    _publish(scratch, out)


def _freeze(folder: Path) -> None:
    """Make a finished version read-only: it is immutable by contract, now also on disk."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def steps(source: TitleSource, options: PackagingOptions) -> int:
    """How many progress steps ``package_title`` reports for this title."""
    trials = len(options.rungs) if options.ladder == "per-title" else 0
    return 1 + trials + len(options.rungs) + len(source.languages) + len(source.subtitle_languages) + 1


def package_title(
    source: TitleSource,
    media_root: Path,
    options: PackagingOptions | None = None,
    progress: Progress | None = None,
) -> tuple[Package, bool]:
    """Package ``source`` under ``media_root``; return the package and whether anything was encoded.

    Re-running with the same source and options finds the finished version and does
    nothing; an interrupted run redoes only the streams without a ``.done`` marker.
    """
    from media.pertitle import run_trials  # ffmpeg-heavy; only when a ladder is chosen per title

    options = options or PackagingOptions()
    tick = progress or (lambda _: None)
    version = version_of(source, options)
    folder = package_dir(media_root, source.content_id, version)
    if (folder / PACKAGE_FILE).exists():
        write_current(media_root, source.content_id, version)
        return Package.load(folder), False
    folder.mkdir(parents=True, exist_ok=True)
    work = media_root / "work" / source.content_id / version
    mezzanine = work / "mezzanine.mp4"
    if not mezzanine.exists():
        make_mezzanine(source, mezzanine)
    tick("source")
    trials: list[TrialPoint] = []
    rungs = list(options.rungs)
    if options.ladder == "per-title":
        trials = run_trials(mezzanine, work / "trials", options.rungs, options.trial_s, on_rung=tick)
        rungs = [rung for rung, _ in per_title_ladder(trials, options.rungs)]
    video: list[VideoStream] = []
    for rung in rungs:
        out = folder / rung.name
        if not (out / DONE).exists():
            _encode_video(mezzanine, rung, out, options.preset)
        durations = _segment_durations(out / "index.m3u8")
        average, peak = _bitrates(out, durations)
        video.append(VideoStream(rung.name, rung.width, rung.height, average, peak, _avc_codec(out), durations))
        tick(rung.name)
    audio: list[AudioStream] = []
    for index, language in enumerate(source.languages):
        out = folder / f"audio-{language}"
        if not (out / DONE).exists():
            _encode_audio(source, index, out)
        durations = _segment_durations(out / "index.m3u8")
        audio.append(AudioStream(language, _bitrates(out, durations)[0], "mp4a.40.2", durations))
        tick(f"audio {language}")
    for language in source.subtitle_languages:
        out = folder / f"subs-{language}"
        if not (out / DONE).exists():
            _write_subtitles(source, language, out)
        tick(f"subtitles {language}")
    package = Package(
        content_id=source.content_id,
        version=version,
        name=source.name,
        duration_s=float(source.duration_s),
        segment_s=SEGMENT_S,
        ladder=options.ladder,
        video=video,
        audio=audio,
        subtitles=list(source.subtitle_languages),
        trials=[asdict(t) for t in trials],
    )
    (folder / "master.m3u8").write_text(manifests.hls_master(manifests.plan_for(package)), encoding="utf-8")
    (folder / "manifest.mpd").write_text(manifests.dash_mpd(manifests.plan_for(package)), encoding="utf-8")
    package.save(folder)  # last: its presence means the version is complete
    _freeze(folder)
    write_current(media_root, source.content_id, version)
    shutil.rmtree(work, ignore_errors=True)
    tick("manifests")
    return package, True
