"""Per-title trial encodes: each resolution at a few bitrates, quality measured with ffmpeg's ``psnr``.

Every trial is scaled back to the reference size (1080p) and compared with the
mezzanine, so a 240p and a 1080p encode are judged on the same screen. Results are
kept in ``points.json`` next to the trials, so an interrupted run does not redo them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from media.ladder import TRIAL_FRACTIONS, Rung, TrialPoint
from media.source import FPS, REFERENCE
from media.tools import ToolError, ffmpeg, run

_AVERAGE = re.compile(r"PSNR .*average:(\S+)")


def _encode(mezzanine: Path, rung: Rung, bitrate: int, seconds: int, out: Path) -> int:
    args = ["-t", str(seconds), "-i", str(mezzanine), "-an", "-vf", f"scale={rung.width}:{rung.height}:flags=bicubic"]
    args += ["-c:v", "libx264", "-preset", "veryfast", "-b:v", str(bitrate), "-maxrate", str(int(bitrate * 1.5))]
    args += ["-bufsize", str(bitrate * 2), "-g", str(FPS * 2), "-r", str(FPS), str(out)]
    ffmpeg(args, f"trial {rung.name} at {bitrate // 1000} kbit/s")
    return int(out.stat().st_size * 8 / seconds)


def psnr(distorted: Path, reference: Path, seconds: int) -> float:
    """Average PSNR (dB) of ``distorted`` against ``reference``, both at the reference size."""
    width, height = REFERENCE
    graph = (
        f"[0:v]scale={width}:{height}:flags=bicubic,format=yuv420p[d];"
        f"[1:v]trim=duration={seconds},setpts=PTS-STARTPTS,format=yuv420p[r];[d][r]psnr"
    )
    log = run(["ffmpeg", "-hide_banner", "-nostdin", "-i", str(distorted), "-i", str(reference),
               "-filter_complex", graph, "-f", "null", "-"], "measuring PSNR")  # fmt: skip
    match = _AVERAGE.search(log)
    if match is None:
        raise ToolError(f"ffmpeg's psnr filter reported no average for {distorted.name}")
    value = match.group(1)
    return 100.0 if value == "inf" else float(value)


def run_trials(
    mezzanine: Path,
    work: Path,
    rungs: tuple[Rung, ...],
    seconds: int,
    on_rung: Callable[[str], None] | None = None,
) -> list[TrialPoint]:
    """Encode and measure ``TRIAL_FRACTIONS`` of each rung's bitrate on the first ``seconds`` of the source."""
    work.mkdir(parents=True, exist_ok=True)
    saved = work / "points.json"
    done: dict[str, dict[str, object]] = json.loads(saved.read_text()) if saved.exists() else {}
    points: list[TrialPoint] = []
    for rung in rungs:
        for fraction in TRIAL_FRACTIONS:
            bitrate = int(rung.bitrate * fraction)
            key = f"{rung.name}@{bitrate}"
            if key not in done:
                out = work / f"{rung.name}-{bitrate}.mp4"
                produced = _encode(mezzanine, rung, bitrate, seconds, out)
                quality = psnr(out, mezzanine, seconds)
                out.unlink()
                done[key] = asdict(TrialPoint(rung.name, rung.width, rung.height, bitrate, produced, quality))
                saved.write_text(json.dumps(done))
            points.append(TrialPoint(**done[key]))  # type: ignore[arg-type]
        if on_rung is not None:
            on_rung(f"trials {rung.name}")
    return points
