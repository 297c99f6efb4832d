"""Logging set-up, called only from entry points (CLI, servers)."""

from __future__ import annotations

import logging
import os


def configure_logging(level: str | None = None) -> None:
    """Configure root logging once; ``MARQUEE_LOG_LEVEL`` overrides the default INFO."""
    chosen = (level or os.environ.get("MARQUEE_LOG_LEVEL") or "INFO").upper()
    logging.basicConfig(level=chosen, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("urllib3", "alembic", "numba", "matplotlib", "feast", "bentoml", "mlflow", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
