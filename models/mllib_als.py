"""Spark MLlib's implicit ALS beside ``implicit``'s: the collaborative model when one machine is outgrown.

MLlib fits the factors on the process's Spark session (any master: a cluster
splits users and items into blocks); the fitted model holds plain numpy factors
and scores, folds in and saves exactly like :class:`models.als.ImplicitALS`, so
serving needs no Spark. The confidence of an interaction is ``1 + alpha * weight``
as in ``implicit``; MLlib scales the L2 weight by each user's (item's) number of
interactions (ALS-WR), so its ``regularization`` is not on implicit's scale, and a
fold-in scales it the same way.

The Spark session is the process's (``features.spark.session.spark_session``
starts it from the settings; ``marquee train``/``evaluate`` do so when this model is
asked for); a process with none gets Spark's default local one.
"""

from __future__ import annotations

import tempfile
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from models.als import ImplicitALS
from models.history import Histories
from models.scoring import column_major

#: Sweeps between checkpoints of the factors (bounds the lineage a task deserialises).
CHECKPOINT_INTERVAL = 5


class MllibALS(ImplicitALS):
    """Implicit-feedback ALS fitted by Spark MLlib (``pyspark.ml.recommendation.ALS``).

    Args:
        factors: latent dimensions (MLlib's ``rank``).
        regularization: MLlib's ``regParam`` (scaled per user and item by its interaction count).
        alpha: confidence scale of the interaction weights.
        iterations: ALS sweeps (``maxIter``).
        seed: seed of the factor initialisation.
    """

    name: ClassVar[str] = "mllib_als"
    tuning_space: ClassVar[dict[str, list[Any]]] = {
        "factors": [32, 64],
        "regularization": [0.01, 0.05],
        "alpha": [1.0, 10.0],
    }
    similar_priority: ClassVar[int] = 55

    def __init__(
        self, factors: int = 32, regularization: float = 0.01, alpha: float = 1.0, iterations: int = 15, seed: int = 0
    ) -> None:
        super().__init__(factors=factors, regularization=regularization, alpha=alpha, iterations=iterations, seed=seed)

    def _fit(self, hist: Histories, **context: Any) -> None:
        from pyspark.ml.recommendation import ALS
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        if spark.sparkContext.getCheckpointDir() is None:
            # Without checkpoints every sweep lengthens the factors' lineage until a task's
            # deserialisation overflows the stack (about 15-20 sweeps) and takes the JVM down.
            spark.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="marquee-mllib-als-"))
        counts = np.diff(hist.indptr)
        ratings = pd.DataFrame(
            {
                "user": np.repeat(np.arange(hist.n_users, dtype=np.int32), counts),
                "item": hist.item_idx.astype(np.int32),
                "weight": hist.weight.astype(np.float32),
            }
        )
        blocks = max(1, spark.sparkContext.defaultParallelism)
        als = ALS(
            rank=self.factors,
            maxIter=self.iterations,
            regParam=self.regularization,
            alpha=self.alpha,
            implicitPrefs=True,
            seed=self.seed,
            userCol="user",
            itemCol="item",
            ratingCol="weight",
            numUserBlocks=blocks,
            numItemBlocks=blocks,
            checkpointInterval=CHECKPOINT_INTERVAL,
        )
        model = als.fit(spark.createDataFrame(ratings))
        self._users = _dense(model.userFactors.toPandas(), hist.n_users, self.factors)
        self._items = column_major(_dense(model.itemFactors.toPandas(), hist.n_items, self.factors))
        self._gram_cache = None

    def _fold_in(self, items: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """User factors for a history, with MLlib's L2 weight (λ times the history's length)."""
        Y, _ = self._gram()
        A = Y.T @ Y + self.regularization * max(len(items), 1) * np.eye(Y.shape[1])
        if len(items):
            Yh = Y[items]
            A = A + self.alpha * Yh.T @ Yh
            b = (1.0 + self.alpha) * Yh.sum(axis=0)
        else:
            b = np.zeros(Y.shape[1])
        return np.linalg.solve(A, b).astype(np.float32)


def _dense(factors: pd.DataFrame, rows: int, rank: int) -> npt.NDArray[np.float32]:
    """MLlib's ``(id, features)`` rows as a dense (rows, rank) float32 matrix (absent ids: zeros)."""
    out = np.zeros((rows, rank), np.float32)
    if len(factors):
        out[factors["id"].to_numpy(np.int64)] = np.vstack(factors["features"].to_numpy()).astype(np.float32)
    return out
