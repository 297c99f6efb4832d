"""The Spark engine (``MARQUEE_ENGINE=spark``): the same feature tables, frames and split as pandas, in Spark.

Every function here mirrors a pandas one of :mod:`features.pipelines` or
:mod:`training` and must return the same rows (``tests/test_spark_engine.py``
compares them row by row); pyspark is imported only when the engine is chosen.
"""
