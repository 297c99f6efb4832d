"""The ranker's training data: candidate unions labelled by what each profile watched next.

For every validation profile the candidate models (fitted on the profile's
earlier interactions) propose their top ``k``; the union is labelled 1 where the
profile went on to watch the title (the validation interactions) and 0 elsewhere.
Features are taken **as of the profile's cutoff** — the time of its last training
interaction, i.e. the moment the recommendation would have been asked for — by a
point-in-time (as-of) join against the feature tables of ``features.pipelines``,
the same rows Feast's offline store serves: the last row of an entity stamped at
or before the cutoff, so no feature sees the label's future.

Negatives are the union's other titles; ``models.ranker`` samples them per
positive when it builds its training lists.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import sparse

from features.ranking_frame import candidate_columns, candidate_frame, numeric_feature_columns, ranking_matrix

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

TS = "event_timestamp"
PROFILE_TABLES = ("profile_activity",)
TITLE_TABLES = ("title_popularity", "title_metadata")
AFFINITY_TABLE = "profile_genre_affinity"
#: The on-demand profile × title feature of the ``ranker_v1`` feature service.
GENRE_MATCH = "genre_match"


@dataclass(frozen=True)
class RankerData:
    """Ranker rows for a set of validation profiles.

    Attributes:
        frame: one row per (profile, candidate title): ``user_id``, ``title_id``, the
            candidate columns, the feature columns and ``label`` (1.0 watched next, else 0.0).
        columns: the ranker's input columns, in order (stored in the bundle as ``ranker_columns``).
    """

    frame: pd.DataFrame
    columns: list[str]

    def matrix(self, rows: npt.NDArray[np.bool_] | None = None) -> npt.NDArray[np.float32]:
        """The input matrix (all rows, or the masked ones), float32, NaN → 0."""
        frame = self.frame if rows is None else self.frame[rows]
        return ranking_matrix(frame, self.columns)

    def groups(self, rows: npt.NDArray[np.bool_] | None = None) -> npt.NDArray[np.int64]:
        """The query (profile) code of each row."""
        frame = self.frame if rows is None else self.frame[rows]
        return pd.factorize(frame["user_id"])[0].astype(np.int64)

    def labels(self, rows: npt.NDArray[np.bool_] | None = None) -> npt.NDArray[np.float32]:
        """1.0 for a title watched next, 0.0 otherwise."""
        frame = self.frame if rows is None else self.frame[rows]
        return frame["label"].to_numpy(np.float32)


def _epoch_ns(values: pd.Series) -> npt.NDArray[np.int64]:
    """int64 nanoseconds since the epoch (vectorised: tz-aware ``to_numpy`` would box every value)."""
    stamps = pd.to_datetime(values, utc=True)
    return ((stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "ns")).to_numpy(np.int64)  # type: ignore[no-any-return]


def as_of_join(rows: pd.DataFrame, table: pd.DataFrame, key: str, columns: Sequence[str]) -> pd.DataFrame:
    """For each row (``key``, ``event_timestamp``) the table's last row of that key stamped at or before it.

    This is the point-in-time join Feast's offline store performs; rows without an
    earlier table row get NaN. The result is aligned with ``rows``' order.
    """
    left = pd.DataFrame({key: rows[key].astype(str).to_numpy(), TS: _epoch_ns(rows[TS])})
    left["_row"] = np.arange(len(left))
    right = table[[key, *columns]].copy()
    right[key] = right[key].astype(str)
    right[TS] = _epoch_ns(table[TS])
    merged = pd.merge_asof(
        left.sort_values(TS, kind="mergesort"),
        right.sort_values(TS, kind="mergesort"),
        on=TS,
        by=key,
        direction="backward",
        allow_exact_matches=True,
    )
    return merged.sort_values("_row")[list(columns)].reset_index(drop=True)


def table_columns(tables: Mapping[str, pd.DataFrame], names: Sequence[str], key: str) -> dict[str, list[str]]:
    """Numeric feature columns of each named table (lists, like genres, are not ranker inputs)."""
    return {
        name: numeric_feature_columns(tables[name], exclude=(key, TS))
        for name in names
        if name in tables and len(tables[name])
    }


def genre_match(
    users: npt.NDArray[np.object_],
    titles: npt.NDArray[np.object_],
    stamp: pd.Series,
    tables: Mapping[str, pd.DataFrame],
) -> npt.NDArray[np.float64]:
    """The profile's genre-affinity share summed over the title's genres, as of each row's time.

    The definition of the ``genre_match`` on-demand feature of ``ranker_v1``
    (``features.pipelines.match.genre_match_scores``), vectorised: the affinity is
    joined once per distinct (profile, time), and the per-row sum is a row-wise
    product of a sparse profile × genre share matrix and a title × genre indicator.
    ``tests/test_training_features_feast.py`` checks it equals Feast's value.
    """
    keys = pd.DataFrame({"profile_id": np.asarray(users, dtype=object), TS: _epoch_ns(stamp)})
    codes, uniques = pd.factorize(pd.MultiIndex.from_frame(keys))
    distinct = uniques.to_frame(index=False, name=["profile_id", TS])
    distinct[TS] = pd.to_datetime(distinct[TS], unit="ns", utc=True)
    affinity = as_of_join(distinct, tables[AFFINITY_TABLE], "profile_id", ["affinity_genres", "affinity_shares"])
    meta = tables["title_metadata"]
    title_genres = pd.Series(meta["genres"].to_numpy(), index=meta["title_id"].astype(str)).groupby(level=0).last()
    vocabulary: dict[str, int] = {}
    profile_matrix = _sparse_rows(affinity["affinity_genres"], affinity["affinity_shares"], vocabulary)
    title_codes, title_uniques = pd.factorize(pd.Series(titles, dtype=object))
    per_title = title_genres.reindex(pd.Index(title_uniques))
    title_matrix = _sparse_rows(per_title, None, vocabulary)
    width = max(len(vocabulary), 1)
    profile_matrix.resize((profile_matrix.shape[0], width))
    title_matrix.resize((title_matrix.shape[0], width))
    product = profile_matrix[codes].multiply(title_matrix[title_codes])
    return np.asarray(product.sum(axis=1), dtype=np.float64).reshape(-1)


def _sparse_rows(names: pd.Series, values: pd.Series | None, vocabulary: dict[str, int]) -> sparse.csr_matrix:
    """One sparse row per entry: ``values`` (or 1.0) at the columns of ``names``; NaN/None rows are empty.

    Repeated names in a row count once (a title listing a genre twice matches it once).
    """
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    value_rows = values.to_numpy() if values is not None else [None] * len(names)
    for row_names, row_values in zip(names.to_numpy(), value_rows, strict=True):
        if isinstance(row_names, (list, tuple, np.ndarray)) and len(row_names):
            seen: set[int] = set()
            weights = row_values if isinstance(row_values, (list, tuple, np.ndarray)) else None
            for position, name in enumerate(row_names):
                column = vocabulary.setdefault(str(name), len(vocabulary))
                if column in seen or (weights is not None and position >= len(weights)):
                    continue
                seen.add(column)
                indices.append(column)
                data.append(float(weights[position]) if weights is not None else 1.0)
        indptr.append(len(indices))
    return sparse.csr_matrix(
        (np.asarray(data, np.float64), np.asarray(indices, np.int64), np.asarray(indptr, np.int64)),
        shape=(len(indptr) - 1, max(len(vocabulary), 1)),
    )


def point_in_time_features(entity: pd.DataFrame, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The ``ranker_v1`` features of each (``profile_id``, ``title_id``, ``event_timestamp``) row.

    Numerically the same as ``features.retrieval.training_frame(store, entity, "ranker_v1")``
    (Feast's point-in-time join over the same tables; ``tests/test_training_features_feast.py``
    checks it), computed in memory because Feast's offline retrieval of a few hundred thousand
    rows would take most of the training time budget.

    Returns:
        One column per numeric feature (profile tables, title tables, then ``genre_match``),
        NaN where an entity has no row at or before the time, in ``entity``'s row order.
    """
    features: dict[str, npt.NDArray[np.float64]] = {}
    for key, names in (("profile_id", PROFILE_TABLES), ("title_id", TITLE_TABLES)):
        # Join each distinct (entity, time) once: many candidate rows share a profile and cutoff.
        codes, uniques = pd.factorize(pd.MultiIndex.from_arrays([entity[key].astype(str), _epoch_ns(entity[TS])]))
        distinct = uniques.to_frame(index=False, name=[key, TS])
        distinct[TS] = pd.to_datetime(distinct[TS], unit="ns", utc=True)
        for name, cols in table_columns(tables, names, key).items():
            joined = as_of_join(distinct, tables[name], key, cols)
            features.update({c: joined[c].to_numpy(np.float64)[codes] for c in cols})
    if AFFINITY_TABLE in tables and "title_metadata" in tables:
        features[GENRE_MATCH] = genre_match(
            entity["profile_id"].to_numpy(), entity["title_id"].to_numpy(), entity[TS], tables
        )
    return pd.DataFrame(features, index=entity.index)


def build_ranker_data(
    lists: pd.DataFrame,
    cutoffs: Mapping[str, int],
    relevant: Mapping[str, set[str]],
    sources: Sequence[str],
    tables: Mapping[str, pd.DataFrame],
    catalog_title: Mapping[str, str] | None = None,
    spark: SparkSession | None = None,
) -> RankerData:
    """Label the candidate union of each profile and attach point-in-time features.

    Args:
        lists: long candidate lists (``user_id``, ``title_id``, ``source``, ``score``, ``rank``).
        cutoffs: user_id → cutoff time (int64 seconds): features are taken as of then.
        relevant: user_id → titles watched after the cutoff (the labels).
        sources: candidate sources in column order.
        tables: feature tables by name (``features.pipelines.compute_feature_tables``).
        catalog_title: episode id → series id. Candidates are what was played (an episode),
            title features are per catalog title (the series), so features are looked up
            under the catalog title; ids not in the map are their own catalog title.
        spark: join the features in this Spark session (``MARQUEE_ENGINE=spark``); None: pandas.
    """
    wide = candidate_frame(lists, sources, keys=["user_id"])
    users = wide["user_id"].astype(str).to_numpy()
    cutoff_s = pd.Series(cutoffs, dtype="int64").reindex(pd.Index(users)).to_numpy()
    if np.isnan(cutoff_s.astype(np.float64)).any():
        raise ValueError("every profile with candidates needs a cutoff time")
    stamp = pd.Series(pd.to_datetime(cutoff_s, unit="s", utc=True))
    titles = wide["title_id"].astype(str).to_numpy()
    if catalog_title:
        titles = pd.Series(titles).map(catalog_title).fillna(pd.Series(titles)).to_numpy()
    entity = pd.DataFrame({"profile_id": users, "title_id": titles, TS: stamp})
    if spark is not None:
        from training.spark_frames import point_in_time_features as spark_point_in_time_features

        features = spark_point_in_time_features(spark, entity, tables)
    else:
        features = point_in_time_features(entity, tables)
    features.index = wide.index
    columns = candidate_columns(sources) + list(features.columns)
    frame = pd.concat([wide, features], axis=1)
    pairs = pd.MultiIndex.from_arrays([users, wide["title_id"].astype(str).to_numpy()])
    positives = pd.MultiIndex.from_tuples([(u, t) for u, items in relevant.items() for t in items])
    frame["label"] = pairs.isin(positives).astype(np.float32)
    logger.info(
        "ranker data: %d rows, %d profiles, %d positives, %d columns",
        len(frame),
        len(set(users)),
        int(frame["label"].sum()),
        len(columns),
    )
    return RankerData(frame=frame, columns=columns)


#: The ranker's own columns under ``marquee evaluate``, computed from the protocol frame alone
#: (a dataset folder has no feature store): how much the title and the profile were watched, and
#: how long the title had been in the data when the profile's history stops.
INTERACTION_FEATURES = ("item_log_watches", "profile_log_watches", "item_log_age_days")


def interaction_features(
    train: pd.DataFrame, users: npt.NDArray[np.object_], titles: npt.NDArray[np.object_]
) -> pd.DataFrame:
    """``INTERACTION_FEATURES`` of each (profile, title) row, from a protocol frame (``user_id``, ``item_id``, ``ts``).

    Every value is known at the profile's cutoff under the protocol (the train frame is all the
    model may see); the title's age is measured from its first watch in ``train`` to the profile's
    last one, 0 when the profile's history ends before the title's first watch.
    """
    item_watches = train.groupby("item_id", sort=False).size()
    item_first = train.groupby("item_id", sort=False)["ts"].min()
    user_watches = train.groupby("user_id", sort=False).size()
    user_last = train.groupby("user_id", sort=False)["ts"].max()
    title_index = pd.Index(titles)
    user_index = pd.Index(users)
    age = user_last.reindex(user_index).to_numpy(np.float64) - item_first.reindex(title_index).to_numpy(np.float64)
    return pd.DataFrame(
        {
            "item_log_watches": np.log1p(item_watches.reindex(title_index).fillna(0).to_numpy(np.float64)),
            "profile_log_watches": np.log1p(user_watches.reindex(user_index).fillna(0).to_numpy(np.float64)),
            "item_log_age_days": np.log1p(np.clip(np.nan_to_num(age), 0, None) / 86_400),
        }
    )


def protocol_ranker_data(
    lists: pd.DataFrame, sources: Sequence[str], train: pd.DataFrame, relevant: Mapping[str, set[str]]
) -> RankerData:
    """Ranker rows of an offline evaluation: the candidate union per profile, its columns and labels.

    The same candidate columns as ``build_ranker_data`` (``features.ranking_frame``), plus
    ``INTERACTION_FEATURES`` from the protocol frame ``train`` in place of the feature store's.
    ``relevant`` (user_id → held-out titles) gives the labels; profiles outside it are labelled 0.
    """
    wide = candidate_frame(lists, sources, keys=["user_id"])
    users = wide["user_id"].astype(str).to_numpy(dtype=object)
    titles = wide["title_id"].astype(str).to_numpy(dtype=object)
    features = interaction_features(train, users, titles)
    features.index = wide.index
    frame = pd.concat([wide, features], axis=1)
    pairs = pd.MultiIndex.from_arrays([users, titles])
    held = [(u, t) for u, items in relevant.items() for t in items]
    labels = pairs.isin(pd.MultiIndex.from_tuples(held)) if held else np.zeros(len(frame), bool)
    frame["label"] = np.asarray(labels, np.float32)
    return RankerData(frame=frame, columns=candidate_columns(sources) + list(INTERACTION_FEATURES))
