"""Online feature reads for serving: one profile through Feast, candidate titles from memory.

A ranker scores ~100 candidate titles per request. Feast's Python read path
converts every value through protobuf, which costs about 0.1 ms per entity, so
title features are also held in memory: loaded from the online store (the same
values Feast serves) and reloaded when :func:`features.store.materialize` or a
push changes them. Profile features are one entity per request and go through
Feast every time, so they are always fresh.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.errors import InvalidInputError, NotFoundError
from core.periodic import Periodic
from features.store import online_changes_since, online_store_errors, online_version

if TYPE_CHECKING:
    from feast import FeatureStore

logger = logging.getLogger(__name__)

#: Titles read from the online store per Feast call when filling the cache.
LOAD_BATCH = 1000


def _numeric_matrix(frame: pd.DataFrame, columns: Sequence[str]) -> npt.NDArray[np.float32]:
    """``frame``'s ``columns`` made float64 in place (non-numbers become NaN), as one float32 matrix.

    Row-major: a request gathers a few hundred titles' rows, and pandas hands its
    block back column-major, where one row's values lie a whole column apart.
    """
    for column in columns:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(np.float64)
    return np.ascontiguousarray(frame[list(columns)].to_numpy(dtype=np.float32, na_value=np.nan))


@dataclass(frozen=True)
class _TitleCache:
    """One consistent snapshot of every title's online features.

    ``padded`` and ``matrix`` have one extra last row of nulls that unknown ids point at.
    """

    index: dict[str, int]
    padded: pd.DataFrame
    matrix: npt.NDArray[np.float32]
    numeric_columns: tuple[str, ...]


class OnlineFeatureReader:
    """Read online features for the serving pipeline.

    Args:
        store: from :func:`features.store.open_store`.
        profile_service: feature service of profile reads (default ``profile_v1``).
        title_service: feature service of title reads (default ``title_v1``).
        check_interval_s: how often title reads look for a newer materialize or push.
        background_refresh: reload a changed title cache in a background thread and keep
            answering from the old one meanwhile, so no request waits for a full reload
            (the first load is always synchronous).

    A server calls :meth:`follow` after the first load: a daemon thread then checks for
    changes every ``check_interval_s`` whether requests come or not, and reads leave the
    checking to it. Without it the first read after a quiet spell found every push of
    that spell at once and started the reload beside the requests it was meant to serve
    (a model server idle while 6,000 watch events were pushed spent its first ~1.5 s of
    traffic re-reading ~3,000 titles through Feast in each worker).
    """

    def __init__(
        self,
        store: FeatureStore,
        profile_service: str = "profile_v1",
        title_service: str = "title_v1",
        check_interval_s: float = 1.0,
        background_refresh: bool = True,
    ) -> None:
        self.store = store
        self._repo = Path(store.repo_path)
        try:
            self._profile_service = store.get_feature_service(profile_service)
            self._title_service = store.get_feature_service(title_service)
        except Exception as exc:
            raise NotFoundError(
                f"feature services {profile_service!r}/{title_service!r} are not registered; "
                "run `marquee features apply`"
            ) from exc
        self.check_interval_s = check_interval_s
        self.background_refresh = background_refresh
        self._version = ""
        self._checked = 0.0
        self._cache: _TitleCache | None = None
        self._refresh_lock = threading.Lock()
        self._following: Periodic | None = None

    # -- profiles -------------------------------------------------------------------------

    def profile_features(self, profile_id: str) -> dict[str, Any]:
        """Latest features of one profile: ``{feature name: value}`` (None when unknown)."""
        with online_store_errors("read profile features"):
            response = self.store.get_online_features(
                self._profile_service, [{"profile_id": str(profile_id)}]
            ).to_dict()
        return {name: values[0] for name, values in response.items()}

    def profiles_frame(self, profile_ids: Sequence[str]) -> pd.DataFrame:
        """Latest features of several profiles, one row each in the given order."""
        rows = [{"profile_id": str(p)} for p in profile_ids]
        with online_store_errors("read profile features"):
            return self.store.get_online_features(self._profile_service, rows).to_df()

    # -- titles ---------------------------------------------------------------------------

    def title_features(self, title_ids: Sequence[str]) -> pd.DataFrame:
        """Features of candidate titles from memory, one row per id in the given order.

        Unknown titles get a row of nulls. Columns are ``title_id`` then those of the
        title service (``title_popularity``, ``title_metadata``) in definition order;
        numbers come back as float64 (NaN for missing), genre and language lists as lists.
        """
        cache = self._current()
        missing = len(cache.index)
        positions = [cache.index.get(str(t), missing) for t in title_ids]
        frame = cache.padded.iloc[positions].reset_index(drop=True)
        frame.insert(0, "title_id", [str(t) for t in title_ids])
        return frame

    def title_matrix(self, title_ids: Sequence[str], columns: Sequence[str] | None = None) -> npt.NDArray[np.float32]:
        """Numeric title features as a matrix: shape (len(title_ids), d) float32, NaN when unknown.

        Args:
            title_ids: candidate titles.
            columns: which numeric columns, in order; default :attr:`numeric_columns`.
        """
        cache = self._current()
        missing = len(cache.index)
        # map() over the ids rather than a generator: the same lookups without a Python frame per title
        n = len(title_ids)
        positions = np.fromiter(map(cache.index.get, map(str, title_ids), repeat(missing, n)), np.intp, count=n)
        matrix = cache.matrix[positions]
        if columns is None:
            return matrix
        unknown = [c for c in columns if c not in cache.numeric_columns]
        if unknown:
            raise InvalidInputError(f"unknown title feature column(s) {unknown}; known: {list(cache.numeric_columns)}")
        wanted = [cache.numeric_columns.index(c) for c in columns]
        return matrix[:, wanted]

    @property
    def numeric_columns(self) -> list[str]:
        """Columns of :meth:`title_matrix`: the title service's scalar features, in definition order."""
        return list(self._current().numeric_columns)

    def feast_title_features(self, title_ids: Sequence[str]) -> pd.DataFrame:
        """The same features read through Feast (no cache): for checks and benchmarks."""
        rows = [{"title_id": str(t)} for t in title_ids]
        with online_store_errors("read title features"):
            return self.store.get_online_features(self._title_service, rows).to_df()

    def refresh(self) -> int:
        """Reload every title's features from the online store; return how many were loaded.

        The new cache is built aside and swapped in with one assignment, so
        concurrent readers see either the old or the new one, never a mix.
        """
        with self._refresh_lock:
            version = online_version(self._repo)
            ids = self._known_titles()
            parts = [self.feast_title_features(ids[i : i + LOAD_BATCH]) for i in range(0, len(ids), LOAD_BATCH)]
            frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"title_id": []})
            ordered = [c for c in _service_features(self._title_service, scalar_only=False) if c in frame.columns]
            numeric_columns = [c for c in _service_features(self._title_service, scalar_only=True) if c in ordered]
            values = frame.loc[:, ordered]
            padded = pd.concat([values, pd.DataFrame(index=[len(values)])])
            matrix = _numeric_matrix(padded, numeric_columns)
            index = {t: i for i, t in enumerate(frame["title_id"].astype(str))}
            self._cache = _TitleCache(index, padded, matrix, tuple(numeric_columns))
            self._version = version
            self._checked = time.monotonic()
        logger.info("online features: cached %d titles (%d numeric columns)", len(index), len(numeric_columns))
        return len(index)

    def refresh_titles(self, title_ids: set[str], version: str) -> int:
        """Reload the features of ``title_ids`` only (a push changed just them); return how many were read.

        The snapshot is copied, the rows of those titles replaced, and the copy swapped in
        with one assignment, as ``refresh`` does. Falls back to ``refresh`` when a title is
        not in the cache yet (a title added since the last full load).
        """
        with self._refresh_lock:
            cache = self._cache
            if cache is None or any(t not in cache.index for t in title_ids):
                missing = True
            else:
                missing = False
                ids = sorted(title_ids)
                frame = self.feast_title_features(ids) if ids else pd.DataFrame({"title_id": []})
                rows = [cache.index[t] for t in frame["title_id"].astype(str)]
                fresh = frame.reindex(columns=cache.padded.columns)
                fresh.index = pd.Index(rows)
                matrix = cache.matrix.copy()
                matrix[rows] = _numeric_matrix(fresh, cache.numeric_columns)
                # The changed rows replaced, the rest (and the null row of unknown ids) as they were.
                padded = pd.concat([cache.padded.drop(index=rows), fresh]).sort_index() if rows else cache.padded
                self._cache = _TitleCache(cache.index, padded, matrix, cache.numeric_columns)
                self._version = version
                self._checked = time.monotonic()
        if missing:
            return self.refresh()
        logger.info("online features: reloaded %d changed titles", len(title_ids))
        return len(title_ids)

    def follow(self) -> None:
        """Load the titles if not yet loaded, then keep them current from a daemon thread (idempotent).

        The thread checks the store's version every ``check_interval_s`` and reloads what
        a push or materialize changed; reads then answer from memory and never start a reload.
        """
        if self._following is not None:
            return
        self._current()
        self._following = Periodic(self._follow_once, max(self.check_interval_s, 0.05), name="title-feature-follow")
        self._following.start()

    def stop_following(self) -> None:
        """End :meth:`follow`'s thread (a server's shutdown; tests)."""
        if self._following is not None:
            self._following.stop(timeout_s=30)
            self._following = None

    def _follow_once(self) -> None:
        self._checked = time.monotonic()
        try:
            changed = online_version(self._repo) != self._version
        except OSError:  # the repo unreadable for a moment: keep serving the cache, look again
            logger.warning("online features: cannot read the store's version; will look again", exc_info=True)
            return
        if changed:
            self._refresh_quietly()

    def _current(self) -> _TitleCache:
        now = time.monotonic()
        if self._cache is not None and (self._following is not None or now - self._checked < self.check_interval_s):
            return self._cache
        self._checked = now
        if self._cache is None:
            self.refresh()
        elif online_version(self._repo) != self._version:
            if not self.background_refresh:
                self._refresh_changed()
            elif not self._refresh_lock.locked():
                threading.Thread(target=self._refresh_quietly, name="title-feature-refresh", daemon=True).start()
        assert self._cache is not None
        return self._cache

    def _refresh_quietly(self) -> None:
        try:
            self._refresh_changed()
        except Exception:  # the old cache keeps serving; the next check tries again
            logger.exception("online features: background title refresh failed")

    def _refresh_changed(self) -> int:
        """Reload what changed since the cached version: the pushed titles, or everything."""
        version = online_version(self._repo)
        changed = online_changes_since(self._repo, self._version)
        if changed is None:
            return self.refresh()
        return self.refresh_titles(changed, version)

    def _known_titles(self) -> list[str]:
        import pyarrow.parquet as pq

        ids: set[str] = set()
        for name in ("title_metadata", "title_popularity"):
            path = self._repo / "data" / f"{name}.parquet"
            if path.exists():
                ids.update(pq.read_table(path, columns=["title_id"]).column("title_id").to_pylist())
        return sorted(ids)


def _service_features(service: Any, scalar_only: bool) -> list[str]:
    """Feature names of a service in definition order (Feast's registry does not keep it).

    Args:
        service: a registered ``FeatureService``.
        scalar_only: leave out array features (genre lists), which do not fit a matrix.
    """
    from feast.types import Array

    from features.feast_repo import definitions

    views = {fv.name: fv for fv in (getattr(definitions, n) for n in dir(definitions) if n.endswith("_fv"))}
    names: list[str] = []
    for projection in service.feature_view_projections:
        wanted = {f.name for f in projection.features}
        view = views.get(projection.name)
        fields = view.features if view is not None else projection.features
        names.extend(f.name for f in fields if f.name in wanted and not (scalar_only and isinstance(f.dtype, Array)))
    return names
