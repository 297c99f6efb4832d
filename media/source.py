"""What gets packaged: a generated clip per title (or a user's file), its audio tones and subtitles.

A generated clip is a 1080p mezzanine carrying the title's name, in one of two looks
so per-title ladders have something to tell apart: ``cartoon`` (flat colours, one
shape moving slowly: cheap to encode) and ``action`` (a busy moving test pattern
with film grain: expensive).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from media.tools import ffmpeg

Look = Literal["cartoon", "action"]
FPS = 24
REFERENCE = (1920, 1080)
#: Genres drawn in the cheap-to-encode look.
CARTOON_GENRES = {"animation", "anime", "kids", "children", "family", "kids' tv", "children & family movies"}


def look_for(genres: list[str] | tuple[str, ...]) -> Look:
    """``cartoon`` for animation and family titles, ``action`` for the rest."""
    lowered = {g.strip().lower() for g in genres}
    return "cartoon" if lowered & CARTOON_GENRES else "action"


@dataclass(frozen=True)
class TitleSource:
    """One title to package.

    Attributes:
        content_id: the id the API streams (movie id or episode id); part of the URL path.
        name: the title's name, drawn on the generated picture and named in the subtitles.
        languages: audio languages (codes), the first is the original; one track each.
        subtitles: subtitle languages (codes); default the audio languages.
        look: the generated picture's look (ignored with ``file``).
        duration_s: clip length in seconds.
        file: a user's own video to package instead of the generated picture (its audio is not used:
            each language gets its own track).
    """

    content_id: str
    name: str
    languages: tuple[str, ...] = ("en",)
    subtitles: tuple[str, ...] = ()
    look: Look = "action"
    duration_s: int = 12
    file: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def subtitle_languages(self) -> tuple[str, ...]:
        """Subtitle languages in force."""
        return self.subtitles or self.languages

    def fingerprint(self) -> str:
        """A digest of everything the encode depends on in the source (the file's bytes included)."""
        digest = hashlib.sha256()
        parts = [self.content_id, self.name, ",".join(self.languages), ",".join(self.subtitle_languages)]
        parts += [self.look if self.file is None else "file", str(self.duration_s)]
        digest.update("\x1f".join(parts).encode())
        if self.file is not None:
            with open(self.file, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()


def _picture(source: TitleSource, text_file: Path) -> list[str]:
    width, height = REFERENCE
    text = (
        f"drawtext=textfile='{text_file}':expansion=none:fontsize=72:fontcolor=white:box=1:boxcolor=black@0.5:"
        "boxborderw=20:x=(w-text_w)/2:y=h*0.12"
    )
    clock = "drawtext=text='%{pts\\:hms}':fontsize=48:fontcolor=white:x=(w-text_w)/2:y=h*0.82"
    d = source.duration_s
    if source.look == "cartoon":
        graph = (
            f"color=c=0x2a6fb0:s={width}x{height}:r={FPS}:d={d}[bg];"
            f"color=c=0xf2c14e:s=320x320:r={FPS}:d={d}[ball];"
            f"[bg][ball]overlay=x='mod(t*160,{width - 320})':y=420,{text},{clock},format=yuv420p[v]"
        )
    else:
        graph = (
            f"testsrc2=s={width}x{height}:r={FPS}:d={d},noise=alls=2:allf=t,"
            f"hue=H=t*0.6,{text},{clock},format=yuv420p[v]"
        )
    return ["-filter_complex", graph, "-map", "[v]"]


def make_mezzanine(source: TitleSource, out: Path) -> Path:
    """A near-lossless 1080p, 24 fps video of ``duration_s`` seconds: the reference every rendition is cut from."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".part.mp4")
    if source.file is not None:
        args = ["-i", str(source.file), "-t", str(source.duration_s), "-map", "0:v:0"]
        args += ["-vf", f"scale={REFERENCE[0]}:{REFERENCE[1]}:force_original_aspect_ratio=decrease,"
                 f"pad={REFERENCE[0]}:{REFERENCE[1]}:(ow-iw)/2:(oh-ih)/2,fps={FPS},format=yuv420p"]  # fmt: skip
    else:
        text_file = out.with_suffix(".title.txt")
        text_file.write_text(source.name, encoding="utf-8")
        args = _picture(source, text_file)
    ffmpeg([*args, "-an", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", str(partial)], "mezzanine")
    partial.replace(out)
    return out


def tone_args(language_index: int, duration_s: int) -> list[str]:
    """An ffmpeg input of a beeping tone, one pitch per language (so tracks are told apart by ear)."""
    frequency = 330 + 110 * language_index
    return ["-f", "lavfi", "-i", f"sine=frequency={frequency}:beep_factor=4:sample_rate=48000:duration={duration_s}"]


def _timestamp(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}.{round((seconds - whole) * 1000):03d}"


def webvtt(source: TitleSource, language: str, cue_s: float = 3.0) -> str:
    """A WebVTT file with a cue every ``cue_s`` seconds naming the title, the language and the time."""
    lines = ["WEBVTT", ""]
    start = 0.0
    n = 1
    while start < source.duration_s:
        end = min(start + cue_s, float(source.duration_s))
        lines += [
            str(n),
            f"{_timestamp(start)} --> {_timestamp(end)}",
            f"[{language}] {source.name} ({int(start)} s)",
            "",
        ]
        start, n = end, n + 1
    return "\n".join(lines)
