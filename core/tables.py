"""Arrow schemas of the lake tables, derived from the domain schema.

Each table has an explicit schema, the columns that may not be null and a
primary key; ``core.lake`` validates every write against them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

TS = pa.timestamp("ms", tz="UTC")
STR_LIST = pa.list_(pa.string())


@dataclass(frozen=True)
class TableSpec:
    """What a lake table must look like."""

    name: str
    schema: pa.Schema
    primary_key: tuple[str, ...]
    required: tuple[str, ...] = field(default=())
    time_column: str | None = None
    #: The column naming the person a row is about (``account_id`` or ``profile_id``): erasing that
    #: person deletes the table's rows by it (``Lake.erase``). ``None``: the table holds no personal rows.
    subject_column: str | None = None


TITLES = TableSpec(
    name="titles",
    schema=pa.schema(
        [
            ("title_id", pa.string()),
            ("type", pa.string()),
            ("title", pa.string()),
            ("synopsis", pa.string()),
            ("genres", STR_LIST),
            ("languages", STR_LIST),
            ("maturity_rating", pa.string()),
            ("maturity_level", pa.int8()),
            ("release_year", pa.int16()),
            ("date_added", TS),
            ("duration_s", pa.int32()),
            ("cast", STR_LIST),
            ("director", STR_LIST),
            ("countries", STR_LIST),
            ("video_qualities", STR_LIST),
            ("tags", STR_LIST),
        ]
    ),
    primary_key=("title_id",),
    required=("title_id", "type", "title", "maturity_level"),
)

EPISODES = TableSpec(
    name="episodes",
    schema=pa.schema(
        [
            ("episode_id", pa.string()),
            ("series_id", pa.string()),
            ("season_number", pa.int16()),
            ("episode_number", pa.int16()),
            ("title", pa.string()),
            ("duration_s", pa.int32()),
        ]
    ),
    primary_key=("episode_id",),
    required=("episode_id", "series_id", "season_number", "episode_number", "duration_s"),
)

ACCOUNTS = TableSpec(
    name="accounts",
    schema=pa.schema(
        [
            ("account_id", pa.string()),
            ("email", pa.string()),
            ("country", pa.string()),
            ("plan", pa.string()),
            ("created_at", TS),
        ]
    ),
    primary_key=("account_id",),
    required=("account_id", "country"),
    subject_column="account_id",
)

PROFILES = TableSpec(
    name="profiles",
    schema=pa.schema(
        [
            ("profile_id", pa.string()),
            ("account_id", pa.string()),
            ("name", pa.string()),
            ("language", pa.string()),
            ("maturity_level", pa.int8()),
            ("is_kids", pa.bool_()),
            ("country", pa.string()),
            ("created_at", TS),
        ]
    ),
    primary_key=("profile_id",),
    required=("profile_id", "maturity_level", "is_kids"),
    subject_column="profile_id",
)

WATCH_EVENTS = TableSpec(
    name="watch_events",
    schema=pa.schema(
        [
            ("event_id", pa.string()),
            ("profile_id", pa.string()),
            ("title_id", pa.string()),
            ("ts", TS),
            ("position_s", pa.int32()),
            ("duration_s", pa.int32()),
            ("device", pa.string()),
            ("country", pa.string()),
            ("rating", pa.float32()),
        ]
    ),
    primary_key=("event_id",),
    required=("event_id", "profile_id", "title_id", "ts", "position_s", "duration_s"),
    time_column="ts",
    subject_column="profile_id",
)

EXPOSURES = TableSpec(
    name="exposures",
    schema=pa.schema(
        [
            ("request_id", pa.string()),
            ("ts", TS),
            ("profile_id", pa.string()),
            ("row_key", pa.string()),
            ("position", pa.int16()),
            ("title_id", pa.string()),
            ("model_version", pa.string()),
            ("experiment_key", pa.string()),
            ("variant", pa.string()),
        ]
    ),
    # experiment_key is part of the key so that a title shown to a profile in two
    # experiments (two layers) can be logged once per experiment.
    primary_key=("request_id", "row_key", "position", "experiment_key"),
    required=("request_id", "ts", "profile_id", "row_key", "position", "title_id"),
    time_column="ts",
    subject_column="profile_id",
)

#: Players' QoE reports, exported from the API; ``core.qoe.latest_reports`` makes them sessions.
PLAYBACK_REPORTS = TableSpec(
    name="playback_reports",
    schema=pa.schema(
        [
            ("seq", pa.int64()),
            ("ts", TS),
            ("session_id", pa.string()),
            ("report_seq", pa.int32()),
            ("profile_id", pa.string()),
            ("title_id", pa.string()),
            ("format", pa.string()),
            ("device", pa.string()),
            ("edge", pa.string()),
            ("country", pa.string()),
            ("startup_ms", pa.int32()),
            ("played_s", pa.float64()),
            ("rebuffer_count", pa.int32()),
            ("rebuffer_s", pa.float64()),
            ("bitrate_switches", pa.int32()),
            ("avg_bitrate_kbps", pa.int32()),
            ("fatal_error", pa.string()),
            ("ended", pa.bool_()),
        ]
    ),
    primary_key=("session_id", "report_seq"),
    required=("session_id", "report_seq", "profile_id", "title_id", "ts", "played_s"),
    time_column="ts",
    subject_column="profile_id",
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec for spec in (TITLES, EPISODES, ACCOUNTS, PROFILES, WATCH_EVENTS, EXPOSURES, PLAYBACK_REPORTS)
}
