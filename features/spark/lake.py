"""Lake tables as Spark DataFrames: the Spark engine's only reader of the lake.

Spark reads the parquet files that make up a table's current version
(``Lake.parts``) itself, so nothing passes through the driver's memory. Whatever
the lake's format becomes, this function is the one to adapt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from core.errors import NotFoundError
from core.lake import Lake
from core.tables import TABLES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType


def read_table(spark: SparkSession, lake: Lake, name: str, columns: list[str] | None = None) -> DataFrame:
    """Table ``name`` (its current parts) as a Spark DataFrame; an empty one when the table is missing.

    Raises:
        NotFoundError: ``name`` is not a lake table.
    """
    if name not in TABLES:
        raise NotFoundError(f"unknown lake table {name!r}; known tables: {', '.join(sorted(TABLES))}")
    schema = TABLES[name].schema
    wanted = list(columns) if columns is not None else list(schema.names)
    parts = [str(p) for p in lake.parts(name)]
    if not parts:
        empty = schema.empty_table().select(wanted)
        return spark.createDataFrame(empty.to_pandas(), schema=_spark_schema(spark, empty.schema))
    return spark.read.parquet(*parts).select(*wanted)


def _spark_schema(spark: SparkSession, schema: pa.Schema) -> StructType:
    """The Spark schema of an arrow schema (for empty tables, which have no file to infer it from)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    del spark
    return from_arrow_schema(schema)
