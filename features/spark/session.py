"""The one place a Spark session is started: master and memory from settings, quiet local defaults.

A process keeps one session (Spark allows one ``SparkContext`` per JVM); the first
call decides its master, later calls get the same session. Local defaults suit a
small machine: a few shuffle partitions instead of 200, no web UI, warnings only,
UTC as the session time zone (lake timestamps are UTC), and arrow transfers to pandas.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from core.settings import Settings

logger = logging.getLogger(__name__)

_LOCK = threading.Lock()

#: Shuffle partitions for a ``local[n]`` master: a few per core; 200 (Spark's default) costs seconds of
#: scheduling per stage on small data.
LOCAL_PARTITIONS_PER_CORE = 2


def local_cores(master: str) -> int | None:
    """The cores of a ``local``, ``local[n]`` or ``local[*]`` master; None for a cluster master."""
    if master == "local":
        return 1
    if master.startswith("local[") and master.endswith("]"):
        inner = master[len("local[") : -1].split(",")[0]
        return os.cpu_count() or 1 if inner == "*" else int(inner)
    return None


def spark_session(settings: Settings) -> SparkSession:
    """The process's Spark session, started on first use from ``settings`` (``spark_master``, memory)."""
    from pyspark.sql import SparkSession

    with _LOCK:
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        master = settings.spark_master
        cores = local_cores(master)
        partitions = max(2, LOCAL_PARTITIONS_PER_CORE * cores) if cores else 64
        builder = (
            SparkSession.builder.master(master)
            .appName("marquee")
            .config("spark.driver.memory", settings.spark_driver_memory)
            .config("spark.sql.shuffle.partitions", str(partitions))
            .config("spark.default.parallelism", str(partitions))
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.adaptive.enabled", "true")
            # Lake timestamps are UTC instants; the local JVM zone must not shift them.
            .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
            .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        )
        if cores:
            # A local master talks to itself only: loopback, whatever the host name resolves to.
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("WARN")
        # Iterative jobs (MLlib ALS) checkpoint here to cut their lineage.
        checkpoints = settings.workspace.home / "spark-checkpoints"
        checkpoints.mkdir(parents=True, exist_ok=True)
        session.sparkContext.setCheckpointDir(str(checkpoints))
        logger.info("spark session on %s (%d shuffle partitions)", master, partitions)
        return session


#: Models that fit on Spark whatever the engine (their fit starts the session from the settings).
SPARK_MODELS = frozenset({"mllib_als"})


def session_for(settings: Settings, models: Iterable[str] = ()) -> SparkSession | None:
    """The Spark session when ``MARQUEE_ENGINE=spark``, None for the pandas engine.

    A model of :data:`SPARK_MODELS` among ``models`` starts the session (from ``settings``)
    even for the pandas engine, so MLlib fits on the configured master, not Spark's default.
    """
    if settings.engine != "spark" and SPARK_MODELS.isdisjoint(models):
        return None
    session = spark_session(settings)
    return session if settings.engine == "spark" else None
