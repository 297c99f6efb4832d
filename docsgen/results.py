"""The benchmark results page, rendered from ``bench/results/*.json``.

Each JSON file is what a bench script wrote with ``bench/results_json.py``
(``"source": "run"``) or a run recorded before the scripts wrote JSON
(``"source": "recorded"``, transcribed from the run's printed tables). Every
table is shown with the command that made it and the machine it ran on; a
table that names a ``plot`` gets an SVG drawn with matplotlib at build time.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Page:
    """The Markdown of the results page and the SVG plots it links (relative path → SVG text)."""

    markdown: str
    images: dict[str, str]


def load(results_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every result file, by name, sorted."""
    return [(path.stem, json.loads(path.read_text(encoding="utf-8"))) for path in sorted(results_dir.glob("*.json"))]


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value).replace("|", "\\|")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def plot_svg(table: dict[str, Any]) -> str:
    """A bar chart of ``plot.y`` columns against ``plot.x`` (or ``plot.label``), as self-contained SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = table["plot"]
    columns = table["columns"]
    label_col = columns.index(spec.get("label", spec["x"]))
    x_col = columns.index(spec["x"])
    labels = []
    for row in table["rows"]:
        label = str(row[label_col]).replace("`", "")
        if label_col != x_col:
            label = f"{label}\n{_fmt(row[x_col])}"
        labels.append(label)
    series = spec["y"]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(labels) * max(1, len(series)) + 1.2))
    height = 0.8 / len(series)
    for i, name in enumerate(series):
        col = columns.index(name)
        values = [_number(row[col]) or 0.0 for row in table["rows"]]
        positions = [j + i * height for j in range(len(labels))]
        ax.barh(positions, values, height=height, label=name)
    ax.set_yticks([j + height * (len(series) - 1) / 2 for j in range(len(labels))])
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    if spec.get("log"):
        ax.set_xscale("log")
    if "goal" in spec:
        ax.axvline(spec["goal"], color="black", linestyle="--", linewidth=1, label=f"goal {_fmt(spec['goal'])}")
    ax.legend(fontsize=8)
    ax.set_title(str(table.get("caption", "")).replace("`", "")[:90], fontsize=9)
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    plt.close(fig)
    svg = buffer.getvalue()
    # matplotlib names its own site in a comment; a page that names no outside address is simpler to check.
    return "\n".join(line for line in svg.splitlines() if "Created with matplotlib" not in line)


def render(results_dir: Path, image_dir: str = "img") -> Page:
    """The results page (Markdown) and its plots."""
    lines = [
        "# Benchmark results",
        "",
        "Generated at build time from `bench/results/*.json`, which the bench scripts write",
        "(`bench/results_json.py`). Each section names the command that produced it and the machine",
        "it ran on; *recorded* sections are runs made before their script wrote JSON, transcribed",
        "from the tables the run printed. Latency tails follow the machine's load more than the",
        "code (most runs shared 2 CPU cores with other jobs), so compare rows of one run side by side.",
        "Run one again with the command shown; `make bench` runs them all.",
        "",
    ]
    images: dict[str, str] = {}
    entries = load(results_dir)
    if not entries:
        lines += ["No results yet: run a bench script (`python bench/bench_assignment.py`).", ""]
    for name, result in entries:
        lines += [f"## {result.get('title', name)}", ""]
        source = "recorded run" if result.get("source") == "recorded" else "run"
        lines += [
            f"- command: `{result.get('command', '')}`",
            f"- machine: {result.get('machine', 'not recorded')}",
            f"- date: {result.get('date', 'not recorded')} ({source}; file `bench/results/{name}.json`)",
            "",
        ]
        if result.get("notes"):
            lines += [result["notes"], ""]
        for i, table in enumerate(result.get("tables", [])):
            if table.get("caption"):
                lines += [f"**{table['caption']}**", ""]
            columns = table["columns"]
            lines.append("| " + " | ".join(columns) + " |")
            lines.append("|" + "|".join("---" for _ in columns) + "|")
            for row in table["rows"]:
                lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
            lines.append("")
            if table.get("plot"):
                image = f"{image_dir}/{name}-{i}.svg"
                images[image] = plot_svg(table)
                lines += [f"![{table.get('caption', name)}]({image})", ""]
    return Page("\n".join(lines) + "\n", images)
