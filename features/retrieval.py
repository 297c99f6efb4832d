"""Point-in-time training frames from the offline store.

For each row of the entity frame (who, what, when), Feast joins the last
feature row at or before ``event_timestamp``. The feature tables' rows use only
plays strictly before their own timestamp (see :mod:`features.pipelines.build`),
so a label at time t never sees an event after t.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pandas as pd

from core.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from feast import FeatureStore

logger = logging.getLogger(__name__)

#: The entity-frame column holding each label's time.
TIMESTAMP_COLUMN = "event_timestamp"

#: The join keys each feature service needs in the entity frame.
SERVICE_KEYS = {"ranker_v1": ("profile_id", "title_id"), "profile_v1": ("profile_id",), "title_v1": ("title_id",)}


def training_frame(
    store: FeatureStore,
    entity_df: pd.DataFrame,
    service: str = "ranker_v1",
    full_feature_names: bool = False,
) -> pd.DataFrame:
    """Point-in-time correct features for every row of ``entity_df``.

    Args:
        store: from :func:`features.store.open_store`, after ``materialize`` built the tables.
        entity_df: ``event_timestamp`` (label time; naive values are read as UTC)
            plus the service's join keys (``profile_id`` and/or ``title_id``, str);
            any other columns (labels, group ids) are passed through.
        service: a feature service name, e.g. ``ranker_v1``.
        full_feature_names: prefix columns with their view (``profile_activity__plays_7d``).

    Returns:
        ``entity_df``'s columns plus the service's features, in ``entity_df``'s row
        order. Features of an entity with no history before t are null (NaN).

    Raises:
        InvalidInputError: a required column is missing.
        NotFoundError: the service is not registered.
    """
    keys = SERVICE_KEYS.get(service, ())
    missing = [c for c in (TIMESTAMP_COLUMN, *keys) if c not in entity_df.columns]
    if missing:
        raise InvalidInputError(
            f"entity frame for {service!r} lacks column(s) {missing}; it needs {[TIMESTAMP_COLUMN, *keys]}"
        )
    try:
        feature_service = store.get_feature_service(service)
    except Exception as exc:
        raise NotFoundError(f"feature service {service!r} is not registered; run `marquee features apply`") from exc
    frame = entity_df.copy()
    frame[TIMESTAMP_COLUMN] = pd.to_datetime(frame[TIMESTAMP_COLUMN], utc=True)
    for key in keys:
        frame[key] = frame[key].astype(str)
    order_column = "__row"
    frame[order_column] = range(len(frame))
    result = store.get_historical_features(
        entity_df=frame, features=feature_service, full_feature_names=full_feature_names
    ).to_df()
    result = result.sort_values(order_column, kind="stable").drop(columns=order_column).reset_index(drop=True)
    logger.info("training frame: %d rows × %d columns from %s", len(result), result.shape[1], service)
    return result
