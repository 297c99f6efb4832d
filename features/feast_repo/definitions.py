"""Feast objects of Marquee: entities, sources, feature views, feature services.

Declarative only; the values come from :mod:`features.pipelines`, which writes
the parquet files these sources name (paths are relative to the generated repo,
``<workspace>/feast``). Only long-stable Feast objects are used.

Feature views (Feast names; Python objects end in ``_fv``):

- ``profile_activity`` (profile): ``plays_{1,7,30}d``, ``watch_minutes_{1,7,30}d``,
  ``completed_{1,7,30}d``, ``plays_total``, ``days_since_last_watch``,
  ``completion_rate``, ``distinct_genres``, ``binge_ratio``.
- ``profile_genre_affinity`` (profile): ``affinity_genres``, ``affinity_shares``
  (top genres by time-decayed share of watch time, parallel arrays).
- ``title_popularity`` (title): ``title_plays_{1,7,30}d``, ``title_viewers_{1,7,30}d``,
  ``title_plays_total``, ``title_viewers_total``, ``title_completion_rate``,
  ``title_trend``, ``title_days_since_release``, ``title_days_since_added``.
- ``title_metadata`` (title): ``genres``, ``languages``, ``maturity_level``,
  ``release_year``, ``duration_min``, ``is_series``.
- ``genre_match`` (on demand, profile × title): the profile's affinity share summed
  over the title's genres.

Feature services, versioned per consumer: ``ranker_v1`` (everything, entity rows
carry ``profile_id`` and ``title_id``), ``profile_v1`` (the profile views) and
``title_v1`` (the title views). A consumer that needs other columns gets a new
``*_v2``; existing versions are never edited, so a model trained on ``ranker_v1``
keeps reading the same columns.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Array, Float32, Float64, Int64, String
from feast.value_type import ValueType

#: Feature tables are as-of snapshots: the latest row stays valid however old it is
#: (MovieLens ends in 2018), so no view expires its rows (Feast: a TTL of 0 is forever).
FOREVER = timedelta(0)

TIMESTAMP_FIELD = "event_timestamp"

profile = Entity(
    name="profile",
    join_keys=["profile_id"],
    value_type=ValueType.STRING,
    description="A viewer inside an account.",
)
title = Entity(
    name="title",
    join_keys=["title_id"],
    value_type=ValueType.STRING,
    description="A catalog title (a movie or a series; episodes count for their series).",
)


def _file_source(name: str) -> FileSource:
    return FileSource(name=f"{name}_source", path=f"data/{name}.parquet", timestamp_field=TIMESTAMP_FIELD)


profile_activity_source = _file_source("profile_activity")
profile_genre_affinity_source = _file_source("profile_genre_affinity")
title_popularity_source = _file_source("title_popularity")
title_metadata_source = _file_source("title_metadata")

profile_activity_push = PushSource(name="profile_activity_push", batch_source=profile_activity_source)
profile_genre_affinity_push = PushSource(name="profile_genre_affinity_push", batch_source=profile_genre_affinity_source)
title_popularity_push = PushSource(name="title_popularity_push", batch_source=title_popularity_source)

WINDOWS = (1, 7, 30)

profile_activity_fv = FeatureView(
    name="profile_activity",
    entities=[profile],
    ttl=FOREVER,
    schema=[
        *(Field(name=f"plays_{w}d", dtype=Int64) for w in WINDOWS),
        *(Field(name=f"watch_minutes_{w}d", dtype=Float32) for w in WINDOWS),
        *(Field(name=f"completed_{w}d", dtype=Int64) for w in WINDOWS),
        Field(name="plays_total", dtype=Int64),
        Field(name="days_since_last_watch", dtype=Float32),
        Field(name="completion_rate", dtype=Float32),
        Field(name="distinct_genres", dtype=Int64),
        Field(name="binge_ratio", dtype=Float32),
    ],
    source=profile_activity_push,
    online=True,
    description="What a profile watched lately: plays, minutes and completions over 1/7/30 days.",
)

profile_genre_affinity_fv = FeatureView(
    name="profile_genre_affinity",
    entities=[profile],
    ttl=FOREVER,
    schema=[
        Field(name="affinity_genres", dtype=Array(String)),
        Field(name="affinity_shares", dtype=Array(Float32)),
    ],
    source=profile_genre_affinity_push,
    online=True,
    description="Top genres by time-decayed share of watch time (half-life 30 days by default).",
)

title_popularity_fv = FeatureView(
    name="title_popularity",
    entities=[title],
    ttl=FOREVER,
    schema=[
        *(Field(name=f"title_plays_{w}d", dtype=Int64) for w in WINDOWS),
        *(Field(name=f"title_viewers_{w}d", dtype=Int64) for w in WINDOWS),
        Field(name="title_plays_total", dtype=Int64),
        Field(name="title_viewers_total", dtype=Int64),
        Field(name="title_completion_rate", dtype=Float32),
        Field(name="title_trend", dtype=Float32),
        Field(name="title_days_since_release", dtype=Float32),
        Field(name="title_days_since_added", dtype=Float32),
    ],
    source=title_popularity_push,
    online=True,
    description="How much a title is watched, by how many profiles, and whether that is rising.",
)

title_metadata_fv = FeatureView(
    name="title_metadata",
    entities=[title],
    ttl=FOREVER,
    schema=[
        Field(name="genres", dtype=Array(String)),
        Field(name="languages", dtype=Array(String)),
        Field(name="maturity_level", dtype=Int64),
        Field(name="release_year", dtype=Int64),
        Field(name="duration_min", dtype=Float32),
        Field(name="is_series", dtype=Int64),
    ],
    source=title_metadata_source,
    online=True,
    description="Catalog facts the rankers read (stamped at the epoch: always joinable).",
)


@on_demand_feature_view(
    sources=[profile_genre_affinity_fv, title_metadata_fv],
    schema=[Field(name="genre_match", dtype=Float64)],
    mode="pandas",
    description="Share of the profile's decayed watch time spent on the title's genres (0..1).",
)
def genre_match(inputs: pd.DataFrame) -> pd.DataFrame:
    """Sum of the profile's affinity shares over the title's genres; 0 when either is unknown."""
    from features.pipelines.match import genre_match_scores

    out = pd.DataFrame(index=inputs.index)
    out["genre_match"] = genre_match_scores(
        inputs["affinity_genres"].tolist(), inputs["affinity_shares"].tolist(), inputs["genres"].tolist()
    )
    return out


ranker_v1 = FeatureService(
    name="ranker_v1",
    features=[profile_activity_fv, profile_genre_affinity_fv, title_popularity_fv, title_metadata_fv, genre_match],
    description="Every feature the rankers read; entity rows carry profile_id and title_id.",
)
profile_v1 = FeatureService(
    name="profile_v1",
    features=[profile_activity_fv, profile_genre_affinity_fv],
    description="The profile's activity and genre affinity (one profile per request).",
)
title_v1 = FeatureService(
    name="title_v1",
    features=[title_popularity_fv, title_metadata_fv],
    description="Popularity and metadata of candidate titles (batches of ~100).",
)

#: Everything ``apply`` registers, in dependency order.
FEAST_OBJECTS = [
    profile,
    title,
    profile_activity_source,
    profile_genre_affinity_source,
    title_popularity_source,
    title_metadata_source,
    profile_activity_push,
    profile_genre_affinity_push,
    title_popularity_push,
    profile_activity_fv,
    profile_genre_affinity_fv,
    title_popularity_fv,
    title_metadata_fv,
    genre_match,
    ranker_v1,
    profile_v1,
    title_v1,
]

#: Feature views served online, with their entity's join key.
ONLINE_TABLES = {
    profile_activity_fv.name: "profile_id",
    profile_genre_affinity_fv.name: "profile_id",
    title_popularity_fv.name: "title_id",
    title_metadata_fv.name: "title_id",
}

#: Push source of each feature view that accepts pushes.
PUSH_SOURCES = {
    "profile_activity": profile_activity_push.name,
    "profile_genre_affinity": profile_genre_affinity_push.name,
    "title_popularity": title_popularity_push.name,
}
