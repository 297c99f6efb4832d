"""Experiment definitions: the model, the loaders, and the definitions shipped with Marquee.

The YAML files in this folder are the repository's experiments; ``DEFAULT_DIR``
points at them. The code lives in ``experiments.spec`` (one definition),
``experiments.validation`` (definitions together) and ``experiments.loader``
(YAML); this module is the public face the API and the CLI import.
"""

from __future__ import annotations

from pathlib import Path

from experiments.loader import load_experiments, parse_experiment
from experiments.spec import (
    GLOBAL_LAYER,
    HOLDOUT_VARIANT,
    LAYOUTS,
    METRICS,
    MODEL_ALIASES,
    Experiment,
    Kind,
    Metrics,
    Status,
    Targeting,
    Variant,
)
from experiments.validation import validate_experiments

#: The folder of the definitions shipped in the repository.
DEFAULT_DIR = Path(__file__).resolve().parent

__all__ = [
    "DEFAULT_DIR",
    "GLOBAL_LAYER",
    "HOLDOUT_VARIANT",
    "LAYOUTS",
    "METRICS",
    "MODEL_ALIASES",
    "Experiment",
    "Kind",
    "Metrics",
    "Status",
    "Targeting",
    "Variant",
    "load_experiments",
    "parse_experiment",
    "validate_experiments",
]
