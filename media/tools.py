"""Finding and running the external media tools (ffmpeg, ffprobe, nginx) with clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from core.errors import ConfigurationError, MarqueeError

INSTALL_HINT = "install it with your system's package manager (Debian/Ubuntu, as root: apt-get install -y {package})"


class ToolError(MarqueeError):
    """An external tool ran and failed; the message carries the end of its error output."""


def require(tool: str, package: str | None = None) -> str:
    """The path of ``tool`` on ``PATH``, or ``ConfigurationError`` saying how to install it."""
    found = shutil.which(tool)
    if found is None:
        raise ConfigurationError(
            f"{tool} is not installed or not on PATH; " + INSTALL_HINT.format(package=package or tool)
        )
    return found


def available(tool: str) -> bool:
    """Whether ``tool`` is on ``PATH`` and answers ``-version`` (a broken install counts as missing)."""
    path = shutil.which(tool)
    if path is None:
        return False
    flag = "-v" if tool == "nginx" else "-version"
    try:
        return subprocess.run([path, flag], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run(args: list[str], what: str, timeout_s: float = 1800.0) -> str:
    """Run a tool; return its stderr (ffmpeg reports there); raise ``ToolError`` on failure."""
    tool = require(args[0])
    try:
        done = subprocess.run([tool, *args[1:]], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{what}: {args[0]} did not finish in {timeout_s:.0f} s") from None
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise ToolError(f"{what}: {args[0]} exited with code {done.returncode}:\n{tail}")
    return done.stderr


def ffmpeg(args: list[str], what: str, timeout_s: float = 1800.0) -> str:
    """``ffmpeg -hide_banner -nostdin -y ARGS`` (errors and stats only)."""
    return run(["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *args], what, timeout_s)


def probe(path: Path, *entries: str) -> dict[str, Any]:
    """``ffprobe`` JSON of ``path`` (streams, format, or frames as ``entries`` asks)."""
    require("ffprobe", "ffmpeg")
    args = ["ffprobe", "-v", "error", "-of", "json", *entries, str(path)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise ToolError(f"ffprobe {path.name}: {done.stderr.strip()[-400:]}")
    result: dict[str, Any] = json.loads(done.stdout or "{}")
    return result
