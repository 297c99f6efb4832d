"""Defaults of ``marquee train`` that the CLI reads at start-up, without importing the training stack.

``training.pipeline`` imports pandas, Feast, MLflow and the models; the command line only
needs the default candidate list for its ``--models`` help, so it lives here, once.
"""

from __future__ import annotations

#: The candidate sources ``marquee train`` bundles into the default champion (the ranker orders their union).
DEFAULT_MODELS: tuple[str, ...] = ("popularity", "als", "lightfm", "item_knn", "seqknn")
