"""The ``marquee`` command line: the composition root's entry point.

Each command group lives in ``marquee.commands.<group>`` and imports its heavy
dependencies (torch, Feast, MLflow, BentoML) inside the command functions, so
``marquee --help`` and light commands start fast.
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from core.errors import MarqueeError
from core.logs import configure_logging
from marquee.commands import consume, data, demo, evaluate, experiments, features, lake, media, serve, train

# implicit's ALS is 40x slower per call with a multi-threaded OpenBLAS on small machines.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

app = typer.Typer(
    name="marquee",
    help="Marquee: recommendations and personalization for a video-streaming service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (data, lake, features, train, evaluate, experiments, serve, consume, media, demo):
    module.register(app)

logger = logging.getLogger("marquee")


def main() -> None:
    """Run the CLI; Marquee errors become one clear line on stderr and exit code 2."""
    configure_logging(os.environ.get("MARQUEE_LOG_LEVEL", "WARNING"))
    try:
        app()
    except MarqueeError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("MARQUEE_DEBUG"):
            raise
        typer.secho(
            f"internal error: {type(exc).__name__}: {exc}\n(set MARQUEE_DEBUG=1 to see the traceback)",
            err=True,
            fg=typer.colors.RED,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
