"""A small packaged title for the player tests, made with ffmpeg.

Lays out one content id the way ``catalog_api.playback.manifest`` points at
it: ``<rendition>/index.m3u8`` + ``init.mp4`` + ``seg-00001.m4s``... for the
video ladder (240p to 1080p, constant bitrate so a throttled link really is
too slow for the top rungs), ``audio-<lang>/`` the same for an AAC tone, and
``subs-<lang>/index.m3u8`` + ``full.vtt``. The same fMP4 segments serve HLS
and DASH (``SegmentTemplate`` numbering from 1, 4 s segments, aligned
keyframes every 2 s).

``SigningMediaServer`` is a stand-in for a CDN edge, used until the project's
own edges are available in the test: a real HTTP server that checks every
request's signature and expiry with ``catalog_api.playback.signing`` (403 with
the reason otherwise), answers CORS, and appends the signed query to the
segment URIs of a media playlist (which ffmpeg writes relative and unsigned).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from core.errors import ForbiddenError

SEGMENT_S = 4
#: (name, width, height, real video bitrate in kbit/s): a quarter to a half of the declared ladder.
RUNGS = [("240p", 426, 240, 200), ("480p", 854, 480, 500), ("720p", 1280, 720, 1200), ("1080p", 1920, 1080, 2500)]


def ffmpeg_available() -> bool:
    """Whether an ffmpeg binary that runs is on the path (a broken install counts as missing)."""
    if shutil.which("ffmpeg") is None:
        return False
    try:
        return subprocess.run(["ffmpeg", "-version"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def package_clip(out_dir: Path, duration_s: int = 48, languages: tuple[str, ...] = ("en",)) -> Path:
    """Encode and segment a test-pattern clip with a tone into ``out_dir``; returns ``out_dir``."""
    for name, *_ in RUNGS:
        (out_dir / name).mkdir(parents=True, exist_ok=True)
    hls = [
        "-f", "hls", "-hls_time", str(SEGMENT_S), "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
        "-hls_fmp4_init_filename", "init.mp4", "-start_number", "1",
    ]  # fmt: skip
    split = ";".join(
        [f"[0:v]split={len(RUNGS)}" + "".join(f"[s{i}]" for i in range(len(RUNGS)))]
        + [f"[s{i}]scale={w}:{h}[v{i}]" for i, (_, w, h, _) in enumerate(RUNGS)]
    )
    command = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=24:duration={duration_s}",
        "-filter_complex", split,
    ]  # fmt: skip
    for i, (name, _, _, kbps) in enumerate(RUNGS):
        command += [
            "-map", f"[v{i}]", "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "high", "-level", "4.0",
            "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{kbps}k",
            "-x264-params", "nal-hrd=cbr:keyint=48:min-keyint=48:scenecut=0", "-an", *hls,
            "-hls_segment_filename", str(out_dir / name / "seg-%05d.m4s"), str(out_dir / name / "index.m3u8"),
        ]  # fmt: skip
    subprocess.run(command, check=True, timeout=600)
    for lang in languages:
        audio = out_dir / f"audio-{lang}"
        audio.mkdir(parents=True, exist_ok=True)
        tone = [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={duration_s}",
            "-c:a", "aac", "-b:a", "64k", "-ac", "2", *hls,
            "-hls_segment_filename", str(audio / "seg-%05d.m4s"), str(audio / "index.m3u8"),
        ]  # fmt: skip
        subprocess.run(tone, check=True, timeout=300)
        subs = out_dir / f"subs-{lang}"
        subs.mkdir(parents=True, exist_ok=True)
        cues = "".join(
            f"\n{t:02d}\n00:{t // 60:02d}:{t % 60:02d}.000 --> 00:{t // 60:02d}:{t % 60 + 2:02d}.000\nSecond {t}\n"
            for t in range(0, duration_s - 2, 4)
        )
        (subs / "full.vtt").write_text("WEBVTT\n" + cues)
        (subs / "index.m3u8").write_text(
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:"
            f"{duration_s}\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:{duration_s}.0,\nfull.vtt\n#EXT-X-ENDLIST\n"
        )
    return out_dir


class _Handler(SimpleHTTPRequestHandler):
    """Static files under the root, each request checked like a signing edge checks it."""

    signing_key = ""
    #: Seconds added to this edge's clock: a skew of an hour makes every fresh URL look expired.
    clock: ClassVar[dict[str, float]] = {"skew_s": 0.0}

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read the browser, not this log."""

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Expose-Headers", "Content-Length, Content-Range")
        super().end_headers()

    def _verified(self) -> bool:
        from catalog_api.playback.signing import verify_signed_url

        try:
            verify_signed_url(self.path, self.signing_key, now=time.time() + self.clock["skew_s"])
        except ForbiddenError as exc:
            body = str(exc).encode()
            self.send_response(403)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return False
        return True

    def do_OPTIONS(self) -> None:
        self.send_response(204)
        self.send_header("Access-Control-Allow-Headers", "*")
        self.end_headers()

    def do_GET(self) -> None:
        if not self._verified():
            return
        parts = urlsplit(self.path)
        if parts.path.endswith(".m3u8"):
            local = Path(self.translate_path(parts.path))
            if not local.is_file():
                self.send_error(404)
                return
            lines = []
            for line in local.read_text().splitlines():
                if line and not line.startswith("#"):
                    line = f"{line}?{parts.query}"
                elif line.startswith("#EXT-X-MAP:URI="):
                    uri = line.split('"')[1]
                    line = f'#EXT-X-MAP:URI="{uri}?{parts.query}"'
                lines.append(line)
            body = ("\n".join(lines) + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.apple.mpegurl")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


@contextmanager
def signing_media_server(root: Path, signing_key: str, clock: dict[str, float]) -> Iterator[str]:
    """Serve ``root`` on a free loopback port; yields the base URL (the edge's ``base_url``).

    ``clock["skew_s"]`` may be changed while it runs (the expired-URL test).
    """
    handler = type("Handler", (_Handler,), {"signing_key": signing_key, "clock": clock})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
