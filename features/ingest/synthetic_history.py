"""Synthetic accounts, profiles and watch history over a catalog.

How one viewing session is made (all vectorised over sessions):

1. a profile, drawn by activity (log-normal: a few heavy viewers, many light ones);
2. a day (weekends busier) and an hour (evening peak);
3. a genre from the profile's latent taste (Dirichlet; kids' tastes lean to
   genres with kids titles);
4. a title of that genre by popularity (Zipf) times how much the profile's
   taste cluster likes it (log-normal per cluster and title), accepted with probability
   ``eligible x (1 + boost x exp(-age / decay)) / (1 + boost)``, where
   ``eligible`` means added before the session, licensed in the profile's
   country and at or below the profile's maturity level, and ``age`` is the
   time since ``date_added`` (new releases spike, then decay); rejected
   draws are redrawn;
5. a movie gives one event; a series gives a binge run of consecutive
   episodes from a starting episode (often the first);
6. progress: the watch completes, or is abandoned early with a probability
   that is higher when the genre is off the profile's taste; in a binge run
   only the last episode can be abandoned.

Sessions are drawn in batches until ``n_events`` events exist; the first
``n_events`` in time order are kept.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from core import rules
from core.domain import MaturityLevel
from core.errors import InvalidInputError
from features.ingest.countries import language_of

if TYPE_CHECKING:
    from features.ingest.synthetic import SyntheticConfig

logger = logging.getLogger(__name__)

_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
#: Relative traffic Monday..Sunday.
_WEEKDAY = np.array([0.85, 0.85, 0.9, 0.95, 1.1, 1.3, 1.25])
#: Relative traffic per hour of the day (UTC stands in for local time).
_HOURLY = np.array([3, 2, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 4, 5, 6, 8, 10, 12, 12, 9, 6], dtype=float)
_DEVICES = np.array(["tv", "mobile", "web", "tablet"])
_ADULT_DEVICE = np.array([0.45, 0.25, 0.2, 0.1])
_KIDS_DEVICE = np.array([0.5, 0.1, 0.05, 0.35])
_PLANS = np.array(["basic", "standard", "premium"])
_ACCOUNT_SIZES = np.array([0.3, 0.25, 0.2, 0.15, 0.1])  # 1..5 profiles
_MAX_ROUNDS = 40
_NO_GENRE = "(none)"


class _Catalog:
    """The catalog as arrays indexed by title position."""

    def __init__(self, config: SyntheticConfig, titles: pd.DataFrame, episodes: pd.DataFrame, rng: np.random.Generator):
        if titles.empty:
            raise InvalidInputError("cannot generate watch history over an empty catalog")
        self.title_ids = titles["title_id"].astype(str).to_numpy()
        n = len(self.title_ids)
        genre_lists = [
            list(g) if isinstance(g, list | np.ndarray) and len(g) else [_NO_GENRE] for g in titles["genres"]
        ]
        self.genres = sorted({g for lst in genre_lists for g in lst})
        position = {g: i for i, g in enumerate(self.genres)}
        rows = np.repeat(np.arange(n), [len(lst) for lst in genre_lists])
        cols = np.array([position[g] for lst in genre_lists for g in lst])
        self.membership = np.zeros((n, len(self.genres)), dtype=bool)
        self.membership[rows, cols] = True
        self.level = titles["maturity_level"].fillna(int(MaturityLevel.ADULTS)).to_numpy(dtype=np.int64)
        added = pd.to_datetime(titles["date_added"], utc=True)
        self.latest_added = added.max() if added.notna().any() else None
        self.added_ms = np.where(
            added.notna(), added.to_numpy(dtype="datetime64[ms]").astype(np.int64), np.iinfo(np.int64).min // 2
        )
        self.countries = list(config.countries)
        self.licensed = np.ones((len(self.countries), n), dtype=bool)
        for i, title_countries in enumerate(titles["countries"]):
            if isinstance(title_countries, list | np.ndarray) and len(title_countries):
                allowed = set(title_countries)
                self.licensed[:, i] = [c in allowed for c in self.countries]
        ranks = rng.permutation(n) + 1
        self.popularity = ranks.astype(float) ** -config.zipf_exponent
        durations = pd.to_numeric(titles["duration_s"], errors="coerce").fillna(6000).to_numpy(dtype=np.int64)
        self.duration = np.where(durations > 0, durations, 6000)
        self._episodes(titles, episodes)
        # Taste clusters: each cluster likes some titles more than their popularity says
        # (log-normal multipliers), so choices within a genre are personal too.
        self.clusters = config.taste_clusters
        liking = np.exp(config.taste_strength * rng.standard_normal((self.clusters, n)))
        # Per genre: its titles and, per cluster, their cumulative weight, for inverse-CDF draws.
        self.by_genre: list[tuple[np.ndarray, np.ndarray]] = []
        for g in range(len(self.genres)):
            members = np.flatnonzero(self.membership[:, g])
            cdf = np.cumsum(self.popularity[members][None, :] * liking[:, members], axis=1)
            self.by_genre.append((members, cdf / cdf[:, -1:]))

    def _episodes(self, titles: pd.DataFrame, episodes: pd.DataFrame) -> None:
        n = len(self.title_ids)
        self.ep_start = np.zeros(n, dtype=np.int64)
        self.ep_count = np.zeros(n, dtype=np.int64)
        if episodes.empty:
            self.ep_ids = np.array([], dtype=object)
            self.ep_duration = np.array([], dtype=np.int64)
            return
        ordered = episodes.sort_values(["series_id", "season_number", "episode_number"], kind="stable")
        self.ep_ids = ordered["episode_id"].astype(str).to_numpy()
        self.ep_duration = ordered["duration_s"].to_numpy(dtype=np.int64)
        series = ordered["series_id"].astype(str).to_numpy()
        first = pd.Series(np.arange(len(series))).groupby(series).agg(["min", "count"])
        where = pd.Index(self.title_ids).get_indexer(first.index)
        known = where >= 0
        self.ep_start[where[known]] = first["min"].to_numpy()[known]
        self.ep_count[where[known]] = first["count"].to_numpy()[known]

    def kid_friendly(self, level: int) -> np.ndarray:
        """Per genre, the share of its titles a profile at ``level`` may watch (shape ``(genres,)``)."""
        ok = self.membership & (self.level <= level)[:, None]
        return ok.sum(axis=0) / np.maximum(self.membership.sum(axis=0), 1)


def simulate(
    config: SyntheticConfig, titles: pd.DataFrame, episodes: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Accounts, profiles and exactly ``config.events`` watch events over ``titles``."""
    rng = np.random.default_rng([config.seed, 2])
    catalog = _Catalog(config, titles, episodes, rng)
    start, _ = config.window(catalog.latest_added)
    start_ms = int(start.timestamp() * 1000)
    accounts, profiles, people = _people(config, catalog, rng, start_ms)
    chunks: list[dict[str, np.ndarray]] = []
    produced = 0
    target = config.events
    with tqdm(total=target, desc="watch events", unit="ev", disable=not config.show_progress, leave=False) as bar:
        for _ in range(1000):
            if produced >= target:
                break
            sessions = max(1000, int((target - produced) / 1.8 * 1.1))
            chunk = _sessions(config, catalog, people, rng, sessions, start, start_ms)
            count = len(chunk["title"])
            if count == 0:
                raise InvalidInputError(
                    "no title in the catalog can be watched by any profile (check maturity levels, "
                    "licensing countries and the window's dates)"
                )
            chunks.append(chunk)
            produced += count
            bar.update(min(count, target - bar.n))
    events = _events_frame(chunks, catalog, people, target)
    return accounts, profiles, events


class _People:
    """Profiles as arrays: country index, maturity level, taste, activity, main device."""

    def __init__(
        self,
        country: np.ndarray,
        level: np.ndarray,
        kids: np.ndarray,
        taste: np.ndarray,
        activity: np.ndarray,
        device: np.ndarray,
        ids: np.ndarray,
        cluster: np.ndarray,
    ):
        self.country = country
        self.level = level
        self.kids = kids
        self.taste = taste
        self.taste_cdf = np.cumsum(taste, axis=1)
        self.taste_cdf[:, -1] = 1.0
        self.activity_cdf = np.cumsum(activity) / activity.sum()
        self.device = device
        self.ids = ids
        self.cluster = cluster


def _people(
    config: SyntheticConfig, catalog: _Catalog, rng: np.random.Generator, start_ms: int
) -> tuple[pd.DataFrame, pd.DataFrame, _People]:
    n = config.profiles
    sizes = rng.choice(np.arange(1, 6), size=n, p=_ACCOUNT_SIZES)
    sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), n)) + 1]
    sizes[-1] -= sizes.sum() - n
    n_accounts = len(sizes)
    account_of = np.repeat(np.arange(n_accounts), sizes)
    first_in_account = np.r_[True, account_of[1:] != account_of[:-1]]
    account_country = rng.choice(len(catalog.countries), size=n_accounts, p=config.weights())
    country = account_country[account_of]
    # Kids are never an account's first profile, so scale the odds to hit kids_share overall.
    kid_odds = min(1.0, config.kids_share * n / max(1, int((~first_in_account).sum())))
    kids = (rng.random(n) < kid_odds) & ~first_in_account
    kid_level = np.where(rng.random(n) < 0.5, int(MaturityLevel.LITTLE_KIDS), int(MaturityLevel.OLDER_KIDS))
    adult_level = np.where(rng.random(n) < 0.05, int(MaturityLevel.TEENS), int(MaturityLevel.ADULTS))
    level = np.where(kids, kid_level, adult_level)
    prevalence = catalog.membership.sum(axis=0).astype(float)
    prevalence /= prevalence.sum()
    taste = rng.dirichlet(np.full(len(catalog.genres), 0.35), size=n) * np.sqrt(prevalence)[None, :]
    for lvl in np.unique(level):
        taste[level == lvl] *= catalog.kid_friendly(int(lvl))[None, :] ** 2
    empty = taste.sum(axis=1) <= 0
    taste[empty] = prevalence
    taste /= taste.sum(axis=1, keepdims=True)
    activity = rng.lognormal(0.0, 1.0, size=n) * np.where(kids, 0.6, 1.0)
    device = np.where(
        kids, rng.choice(len(_DEVICES), size=n, p=_KIDS_DEVICE), rng.choice(len(_DEVICES), size=n, p=_ADULT_DEVICE)
    )
    account_ids = np.array([f"sya{i}" for i in range(n_accounts)], dtype=object)
    profile_ids = np.array([f"syp{i}" for i in range(n)], dtype=object)
    countries = np.array(catalog.countries, dtype=object)
    account_created = start_ms - (rng.random(n_accounts) * 3 * 365 * _DAY_MS).astype(np.int64) - 30 * _DAY_MS
    profile_created = account_created[account_of] + (rng.random(n) * (start_ms - account_created[account_of])).astype(
        np.int64
    )
    profile_created = np.where(first_in_account, account_created[account_of], profile_created)
    accounts = pd.DataFrame(
        {
            "account_id": account_ids,
            "email": account_ids + "@example.invalid",
            "country": countries[account_country],
            "plan": _PLANS[rng.choice(3, size=n_accounts, p=[0.25, 0.5, 0.25])],
            "created_at": pd.to_datetime(account_created, unit="ms", utc=True),
        }
    )
    position = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    profiles = pd.DataFrame(
        {
            "profile_id": profile_ids,
            "account_id": account_ids[account_of],
            "name": np.where(kids, "Kids " + (position + 1).astype(str), "Profile " + (position + 1).astype(str)),
            "language": [language_of(c) for c in countries[country]],
            "maturity_level": level.astype(np.int8),
            "is_kids": kids,
            "country": countries[country],
            "created_at": pd.to_datetime(profile_created, unit="ms", utc=True),
        }
    )
    cluster = rng.integers(0, catalog.clusters, size=n)
    people = _People(country, level, kids, taste, activity, device, profile_ids, cluster)
    return accounts, profiles, people


def _sessions(
    config: SyntheticConfig,
    catalog: _Catalog,
    people: _People,
    rng: np.random.Generator,
    count: int,
    start: datetime,
    start_ms: int,
) -> dict[str, np.ndarray]:
    profile = np.searchsorted(people.activity_cdf, rng.random(count), side="right").clip(0, len(people.ids) - 1)
    weekday = (start.weekday() + np.arange(config.days)) % 7
    day_weight = _WEEKDAY[weekday] / _WEEKDAY[weekday].sum()
    day = rng.choice(config.days, size=count, p=day_weight)
    hour = rng.choice(24, size=count, p=_HOURLY / _HOURLY.sum())
    ts = start_ms + day * _DAY_MS + hour * _HOUR_MS + rng.integers(0, _HOUR_MS, size=count)
    genre = (rng.random(count)[:, None] > people.taste_cdf[profile]).sum(axis=1).clip(0, len(catalog.genres) - 1)
    title = _choose_titles(config, catalog, people, rng, profile, genre, ts)
    ok = title >= 0
    profile, genre, ts, title = profile[ok], genre[ok], ts[ok], title[ok]
    affinity = people.taste[profile, genre] / people.taste[profile].max(axis=1)
    abandon_p = np.clip(0.45 - 0.35 * affinity, 0.05, 0.6)
    # Binge runs: series sessions expand to consecutive episodes.
    n_eps = catalog.ep_count[title]
    first_ep = np.where(
        rng.random(len(title)) < 0.4, 0, (rng.random(len(title)) * np.maximum(n_eps, 1)).astype(np.int64)
    )
    run = np.where(n_eps > 0, np.minimum(rng.geometric(1 / 2.8, size=len(title)), n_eps - first_ep), 1)
    session = np.repeat(np.arange(len(title)), run)
    offset = np.arange(len(session)) - np.repeat(np.cumsum(run) - run, run)
    is_episode = n_eps[session] > 0
    episode = np.where(is_episode, catalog.ep_start[title][session] + first_ep[session] + offset, -1)
    duration = np.where(
        is_episode,
        catalog.ep_duration[np.maximum(episode, 0)] if len(catalog.ep_duration) else 0,
        catalog.duration[title][session],
    )
    gap = rng.integers(20, 180, size=len(session))
    elapsed = np.cumsum(duration + gap) - (duration + gap)
    elapsed -= np.repeat(elapsed[np.cumsum(run) - run], run)
    last = offset == run[session] - 1
    abandoned = last & (rng.random(len(session)) < abandon_p[session])
    progress = np.where(
        abandoned, rng.uniform(0.02, 0.6, size=len(session)), rng.uniform(rules.COMPLETED_SHARE, 1.0, size=len(session))
    )
    own_device = rng.random(len(session)) < 0.8
    device = np.where(own_device, people.device[profile][session], rng.integers(0, len(_DEVICES), size=len(session)))
    return {
        "profile": profile[session],
        "title": title[session],
        "episode": episode,
        "ts": ts[session] + elapsed * 1000,
        "position": np.rint(duration * progress).astype(np.int64),
        "duration": duration.astype(np.int64),
        "device": device,
    }


def _choose_titles(
    config: SyntheticConfig,
    catalog: _Catalog,
    people: _People,
    rng: np.random.Generator,
    profile: np.ndarray,
    genre: np.ndarray,
    ts: np.ndarray,
) -> np.ndarray:
    """Title index per session by rejection sampling (``-1`` where nothing was accepted)."""
    chosen = np.full(len(profile), -1, dtype=np.int64)
    pending = np.arange(len(profile))
    boost = config.release_boost
    decay_ms = config.release_decay_days * _DAY_MS
    for _ in range(_MAX_ROUNDS):
        if len(pending) == 0:
            break
        p = profile[pending]
        draw = _draw(catalog, genre[pending], people.cluster[p], rng.random(len(pending)))
        age = ts[pending] - catalog.added_ms[draw]
        eligible = (age >= 0) & (catalog.level[draw] <= people.level[p]) & catalog.licensed[people.country[p], draw]
        spike = np.exp(-np.clip(age, 0, None) / decay_ms)
        accept = eligible & (rng.random(len(pending)) * (1 + boost) < 1 + boost * spike)
        chosen[pending[accept]] = draw[accept]
        pending = pending[~accept]
    if len(pending):
        logger.debug("synthetic: %d session(s) found no eligible title and were dropped", len(pending))
    return chosen


def _draw(catalog: _Catalog, genre: np.ndarray, cluster: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw of a title per (genre, taste cluster) group; groups found by one sort."""
    key = genre * catalog.clusters + cluster
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    bounds = np.flatnonzero(np.diff(sorted_key)) + 1
    draw = np.empty(len(key), dtype=np.int64)
    for begin, end in zip(np.r_[0, bounds], np.r_[bounds, len(key)], strict=True):
        g, c = divmod(int(sorted_key[begin]), catalog.clusters)
        members, cdf = catalog.by_genre[g]
        rows = order[begin:end]
        draw[rows] = members[np.searchsorted(cdf[c], u[rows], side="right").clip(0, len(members) - 1)]
    return draw


def _one_thing_at_a_time(profile: np.ndarray, ts: np.ndarray, watched_s: np.ndarray) -> np.ndarray:
    """Delay events that would start before the same profile's previous watch ended.

    Per profile, in time order: ``start_i = max(ts_i, start_{i-1} + watched_{i-1} + 1 min)``.
    The recurrence has a closed form, ``start = S + cummax(ts - S)`` with ``S`` the running
    sum of watch lengths, so it runs as one segmented cumulative maximum.

    Args:
        profile: profile index per event, int, shape ``(n,)``.
        ts: start time per event in ms, int64, shape ``(n,)``.
        watched_s: seconds watched per event, int, shape ``(n,)``.

    Returns:
        New start times in ms, aligned with the input.
    """
    order = np.lexsort((ts, profile))
    p, t = profile[order], ts[order]
    length = watched_s[order].astype(np.int64) * 1000 + 60_000
    first = np.r_[True, p[1:] != p[:-1]]
    segment = np.cumsum(first) - 1
    before = np.cumsum(length) - length
    before -= before[first][segment]
    value = t - before
    base = value.min()
    value -= base  # non-negative, so segments can be separated by adding segment * span
    span = int(value.max()) + 1
    running_max = np.maximum.accumulate(value + segment * span) - segment * span
    result = np.empty_like(ts)
    result[order] = before + running_max + base
    return result


def _events_frame(chunks: list[dict[str, np.ndarray]], catalog: _Catalog, people: _People, target: int) -> pd.DataFrame:
    # Sessions are independent and spread over the whole window, so cutting the
    # surplus in generation order keeps every part of the window; then sort by time.
    merged = {key: np.concatenate([c[key] for c in chunks])[:target] for key in chunks[0]}
    merged["ts"] = _one_thing_at_a_time(merged["profile"], merged["ts"], merged["position"])
    order = np.argsort(merged["ts"], kind="stable")
    episode = merged["episode"][order]
    title_ids = np.where(
        episode >= 0,
        catalog.ep_ids[np.maximum(episode, 0)] if len(catalog.ep_ids) else "",
        catalog.title_ids[merged["title"][order]],
    )
    profile = merged["profile"][order]
    countries = np.array(catalog.countries, dtype=object)
    return pd.DataFrame(
        {
            "event_id": "sye" + pd.Series(np.arange(len(order))).astype(str),
            "profile_id": people.ids[profile],
            "title_id": title_ids,
            "ts": pd.to_datetime(merged["ts"][order], unit="ms", utc=True),
            "position_s": merged["position"][order],
            "duration_s": merged["duration"][order],
            "device": _DEVICES[merged["device"][order]],
            "country": countries[people.country[profile]],
            "rating": np.full(len(order), np.nan, dtype=np.float32),
        }
    )
