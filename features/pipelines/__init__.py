"""Feature pipelines: lake watch events → as-of feature tables (pure pandas, no Feast).

Public entry points: :func:`build_feature_tables` (lake → parquet under the Feast
repo), :func:`compute_feature_tables` (frames → frames, for tests, benchmarks and
pushes) and :func:`read_manifest` (the data window of the last build).
"""

from features.pipelines.build import (
    FEATURE_TABLES,
    FeatureTables,
    FeatureTablesReport,
    PipelineOptions,
    build_feature_tables,
    compute_feature_tables,
    read_manifest,
)

__all__ = [
    "FEATURE_TABLES",
    "FeatureTables",
    "FeatureTablesReport",
    "PipelineOptions",
    "build_feature_tables",
    "compute_feature_tables",
    "read_manifest",
]
