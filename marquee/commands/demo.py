"""`marquee demo`: the whole loop on the embedded defaults, as a list of named steps.

Each step is a small function of a shared :class:`DemoContext`; later steps
(features -> train -> serve) are added to :data:`DEMO_STEPS` by the engineers
who own them. The first version generates data into the lake and describes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from core.settings import Settings
from marquee.commands._common import load_settings


@dataclass
class DemoContext:
    """What the steps share: settings, the demo's options and what earlier steps produced."""

    settings: Settings
    scale: float
    seed: int
    results: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoStep:
    """One named step of the demo."""

    name: str
    run: Callable[[DemoContext], str]
    """Does the work and returns a one-line summary to print."""


def generate_step(ctx: DemoContext) -> str:
    """Fill the lake with a synthetic streaming service."""
    from core.lake import Lake
    from features.ingest.synthetic import SyntheticConfig, generate

    config = SyntheticConfig(seed=ctx.seed, scale=ctx.scale, show_progress=True)
    report = generate(Lake(ctx.settings.workspace.lake_dir), config)
    ctx.results["ingest"] = report
    counts = ", ".join(f"{name} {rows:,}" for name, rows in report.rows.items())
    return f"{counts} in {report.seconds:.1f} s"


def describe_step(ctx: DemoContext) -> str:
    """Print what the lake holds now."""
    from core.lake import Lake
    from marquee.commands.data import describe_text

    lake = Lake(ctx.settings.workspace.lake_dir)
    text = describe_text(lake, lake.describe())
    typer.echo(text)
    return "lake described"


#: The demo, in order. Append steps here (``DEMO_STEPS.append(DemoStep("train", train_step))``).
DEMO_STEPS: list[DemoStep] = [
    DemoStep("generate", generate_step),
    DemoStep("describe", describe_step),
]


def run_steps(ctx: DemoContext, steps: list[DemoStep]) -> None:
    """Run ``steps`` in order, printing each step's name, summary and time."""
    for number, step in enumerate(steps, start=1):
        typer.echo(f"[{number}/{len(steps)}] {step.name} ...")
        began = time.perf_counter()
        summary = step.run(ctx)
        typer.echo(f"[{number}/{len(steps)}] {step.name}: {summary} ({time.perf_counter() - began:.1f} s)")


def register(app: typer.Typer) -> None:
    """Add the `demo` command to the root CLI."""

    @app.command("demo")
    def demo_command(
        scale: Annotated[float, typer.Option(help="Size of the generated data (1.0 = 1M events).")] = 0.2,
        seed: Annotated[int | None, typer.Option(help="Random seed (default: MARQUEE_SEED, 42).")] = None,
    ) -> None:
        """Run the whole loop on the embedded defaults: generate data, then each later step."""
        settings = load_settings()
        ctx = DemoContext(settings=settings, scale=scale, seed=settings.seed if seed is None else seed)
        run_steps(ctx, DEMO_STEPS)
