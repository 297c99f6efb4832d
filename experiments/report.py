"""Reports for people: markdown or HTML with a lift-with-CI plot per metric and variant.

The plot is a PNG written next to the report (markdown links it; HTML embeds
it as base64 so the file can be mailed alone). matplotlib runs on the Agg
backend: reports are written by servers and CLIs without a display.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

from experiments.analysis import MetricResult, Report


def _pct(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value * 100:+.2f}%"


def _p(value: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def _ci(pair: tuple[float, float]) -> str:
    return f"[{_pct(pair[0])}, {_pct(pair[1])}]"


def plot_lifts(report: Report, path: Path) -> Path:
    """Save one panel per metric: lift and 95 % CI per variant, raw and CUPED; return ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(dict.fromkeys(r.metric for r in report.results))
    fig, axes = plt.subplots(len(metrics), 1, figsize=(7, 1.2 + 1.1 * max(1, len(report.units) - 1) * len(metrics)))
    axes_list = list(axes) if len(metrics) > 1 else [axes]
    for ax, metric in zip(axes_list, metrics, strict=True):
        rows = [r for r in report.results if r.metric == metric]
        for i, row in enumerate(rows):
            for offset, (lift, ci, label, color) in enumerate(
                [
                    (row.lift, row.lift_ci, "raw", "tab:blue"),
                    (row.cuped_lift, row.cuped_lift_ci, "CUPED", "tab:orange"),
                ]
            ):
                y = i + (offset - 0.5) * 0.3
                ax.errorbar(
                    lift * 100,
                    y,
                    xerr=[[(lift - ci[0]) * 100], [(ci[1] - lift) * 100]],
                    fmt="o",
                    color=color,
                    capsize=4,
                    label=label if i == 0 else None,
                )
        ax.axvline(0, color="grey", linewidth=1)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.set_yticks(range(len(rows)), [r.variant for r in rows])
        ax.set_title(f"{metric}: lift vs {report.control} (95% CI)", fontsize=10)
        ax.set_xlabel("lift, %")
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


_HEADER = (
    "metric",
    "variant",
    "n (ctl / trt)",
    "mean (ctl / trt)",
    "lift [95% CI]",
    "p",
    "CUPED lift [95% CI]",
    "CUPED p",
    "var. reduction",
    "always-valid p",
)


def _cells(row: MetricResult) -> list[str]:
    return [
        row.metric,
        row.variant,
        f"{row.n_control} / {row.n_treatment}",
        f"{row.mean_control:.4g} / {row.mean_treatment:.4g}",
        f"{_pct(row.lift)} {_ci(row.lift_ci)}",
        _p(row.p_value),
        f"{_pct(row.cuped_lift)} {_ci(row.cuped_lift_ci)}",
        _p(row.cuped_p_value),
        "n/a" if math.isnan(row.variance_reduction) else f"{row.variance_reduction * 100:.0f}%",
        _p(row.sequential_p_value),
    ]


def _summary_lines(report: Report) -> list[str]:
    srm = report.srm
    lines = [
        f"Unit: {report.unit}; control: {report.control}; primary metric: {report.primary_metric}; "
        f"guardrails: {', '.join(report.guardrails) or 'none'}.",
        f"Window: {report.start} to {report.end}; pre-period {report.pre_period_days:g} days (CUPED).",
        f"Units: {', '.join(f'{k} {v}' for k, v in report.units.items())}"
        + (f"; left out: {', '.join(f'{k} {v}' for k, v in report.excluded.items())}" if report.excluded else ""),
        f"Sample ratio check: chi2 {srm.chi2:.2f}, p {_p(srm.p_value)} — "
        + ("**MISMATCH, results not trustworthy**" if srm.flagged else "ok"),
    ]
    if report.guardrail_checks:
        breached = [f"{c.metric} ({c.variant}, {_pct(c.lift)}, p {_p(c.p_value)})" for c in report.breaches]
        lines.append("Guardrails: " + ("**BREACHED: " + "; ".join(breached) + "**" if breached else "held"))
    return lines


def write_report_markdown(report: Report, path: Path) -> Path:
    """Write ``path`` (markdown) and its plot ``<stem>.lift.png`` beside it; return ``path``."""
    path = Path(path)
    plot = plot_lifts(report, path.with_name(f"{path.stem}.lift.png"))
    lines = [f"# Experiment `{report.experiment_key}`", ""]
    if report.hypothesis:
        lines += [f"> {report.hypothesis}", ""]
    lines += [f"- {line}" for line in _summary_lines(report)]
    lines += [f"- ⚠ {w}" for w in report.warnings]
    lines += ["", "| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in report.results]
    lines += ["", f"![lift per metric and variant]({plot.name})", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_report_html(report: Report, path: Path) -> Path:
    """Write a self-contained HTML report (plot embedded as base64 PNG); return ``path``."""
    path = Path(path)
    plot = plot_lifts(report, path.with_name(f"{path.stem}.lift.png"))
    image = base64.b64encode(plot.read_bytes()).decode("ascii")
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in _HEADER)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in _cells(row)) + "</tr>" for row in report.results)
    summary = "".join(f"<li>{esc(line).replace('**', '')}</li>" for line in _summary_lines(report))
    warnings = "".join(f"<li class='warn'>{esc(w)}</li>" for w in report.warnings)
    document = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Experiment {esc(report.experiment_key)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}.warn{{color:#b00}}</style></head>
<body><h1>Experiment <code>{esc(report.experiment_key)}</code></h1>
<blockquote>{esc(report.hypothesis)}</blockquote>
<ul>{summary}{warnings}</ul>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<p><img alt="lift per metric and variant" src="data:image/png;base64,{image}"></p>
</body></html>
"""
    path.write_text(document, encoding="utf-8")
    return path
