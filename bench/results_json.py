"""Write a bench script's tables to ``bench/results/<name>.json`` for the docs site.

The docs build (``docsgen.results``) renders every JSON file there as a table,
with the command that made it and the machine it ran on, and a plot when the
table names one. A bench script calls ``write_results`` after printing its
tables; ``--no-json`` style opt-outs are the script's business.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> str:
    """The machine in words: CPU, core count, memory and the load average during the run."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    parts = [cpu, f"{os.cpu_count()} CPU(s)"]
    try:
        import psutil

        parts.append(f"{psutil.virtual_memory().total / 2**30:.0f} GiB")
    except ImportError:  # pragma: no cover - psutil is a dependency
        pass
    if hasattr(os, "getloadavg"):
        parts.append(f"load average {os.getloadavg()[0]:.1f} when the run ended")
    return ", ".join(parts)


def command_line() -> str:
    """How this script was run, as a reader would type it from the repository root."""
    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):  # run from outside the repository: keep the path as given
        script = script.resolve().relative_to(Path(__file__).resolve().parent.parent)
    return " ".join(["python", shlex.quote(str(script)), *(shlex.quote(arg) for arg in sys.argv[1:])])


def write_results(name: str, title: str, tables: list[dict[str, Any]], notes: str = "") -> Path:
    """Save ``tables`` (each ``{"caption", "columns", "rows", "plot"?}``) with the command and the machine."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {
        "title": title,
        "command": command_line(),
        "machine": machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "source": "run",
        "notes": notes,
        "tables": tables,
    }
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
