"""Helpers of the catalog API tests: a small catalog in the lake, a model-server double, client steps.

The catalog is built in code with known maturity levels and licences, so a
filter test knows exactly which titles may appear. The model-server double is
a real HTTP server implementing ``serving.contract``; it recommends from the
viewer context's history (genre overlap), as the real model server scores from it, so personalised rows really
depend on what a profile watched.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from core.domain import maturity_level
from core.lake import Lake
from core.ports import free_port
from core.settings import Settings
from serving.contract import (
    HomeCandidatesRequest,
    HomeCandidatesResponse,
    RankRequest,
    RankResponse,
    RecommendRequest,
    RecommendResponse,
    ScoredTitle,
    SimilarRequest,
    SimilarResponse,
    ViewerContext,
)

GENRES = ["Action", "Comedy", "Drama", "Sci-Fi", "Crime", "Kids", "Documentary", "Romance"]
RATINGS = ["TV-Y", "TV-Y7", "PG", "PG-13", "TV-14", "R", "TV-MA"]

#: Named titles whose facts the tests rely on.
NAMED = [
    ("m_space", "movie", "Space Adventure", ["Sci-Fi", "Action"], "PG", [], "A crew of explorers pilots a starship."),
    ("m_galaxy", "movie", "Galaxy Quest Returns", ["Sci-Fi", "Comedy"], "PG-13", ["US"], "Actors return to space."),
    ("m_crime", "movie", "Dark Crime", ["Crime", "Drama"], "R", ["US", "GB"], "A detective hunts a killer."),
    ("m_ponies", "movie", "Little Ponies", ["Kids"], "TV-Y", [], "Ponies sing about friendship."),
    ("m_cooking", "movie", "Cooking Together", ["Documentary"], "TV-G", ["GB"], "Chefs cook in Yorkshire."),
    ("m_robots", "movie", "Robot Friends", ["Kids", "Sci-Fi"], "TV-Y7", [], "Two robots build a rocket."),
    ("m_midnight", "movie", "Midnight Murders", ["Crime"], "TV-MA", [], "Murders at midnight in the city."),
    ("m_laugh", "movie", "Laugh Factory", ["Comedy"], "PG", [], "Comedians run a factory of jokes."),
    ("m_paris", "movie", "Romance in Paris", ["Romance", "Drama"], "PG-13", [], "Two strangers meet in Paris."),
    ("s_lane", "series", "Detective Lane", ["Crime", "Drama"], "TV-14", [], "Detective Lane solves cases."),
    ("s_tiny", "series", "Tiny Explorers", ["Kids", "Documentary"], "TV-Y", [], "Little ones explore nature."),
]
CAST = {"m_space": ["Ada Stone", "Ben Kowalski"], "m_crime": ["Ada Stone"], "s_lane": ["Clara Mendes"]}
DIRECTOR = {"m_galaxy": ["Dean Parisot"], "m_crime": ["Kathryn Bigelow"]}


def catalog_frames(n_filler: int = 40, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Titles and episodes tables: the named titles plus seeded filler titles."""
    rng = random.Random(seed)
    base = datetime(2021, 1, 1, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    for i, (tid, kind, name, genres, rating, countries, synopsis) in enumerate(NAMED):
        rows.append(
            {
                "title_id": tid, "type": kind, "title": name, "synopsis": synopsis, "genres": genres,
                "languages": ["en", "es"] if tid == "m_paris" else ["en"], "maturity_rating": rating,
                "maturity_level": int(maturity_level(rating)), "release_year": 2000 + i,
                "date_added": base + timedelta(days=i), "duration_s": 5400 if kind == "movie" else 1800,
                "cast": CAST.get(tid, []), "director": DIRECTOR.get(tid, []), "countries": countries,
                "video_qualities": ["SD", "HD", "FHD", "UHD"] if tid == "m_space" else ["SD", "HD"], "tags": [],
            }
        )  # fmt: skip
    for i in range(n_filler):
        rating = rng.choice(RATINGS)
        rows.append(
            {
                "title_id": f"f{i:03d}", "type": "movie", "title": f"Filler Story {i}",
                "synopsis": "An ordinary tale.", "genres": rng.sample(GENRES, 2), "languages": ["en"],
                "maturity_rating": rating, "maturity_level": int(maturity_level(rating)),
                "release_year": 1990 + i % 30, "date_added": base - timedelta(days=i + 1), "duration_s": 6000,
                "cast": [], "director": [], "countries": rng.choice([[], ["US"], ["GB"], ["US", "CA"]]),
                "video_qualities": ["SD", "HD"], "tags": [],
            }
        )  # fmt: skip
    episodes = [
        {"episode_id": f"s_lane:{s}:{e}", "series_id": "s_lane", "season_number": s, "episode_number": e,
         "title": f"Case {s}.{e}", "duration_s": 1800}
        for s in (1, 2) for e in (1, 2)
    ] + [
        {"episode_id": f"s_tiny:1:{e}", "series_id": "s_tiny", "season_number": 1, "episode_number": e,
         "title": f"Walk {e}", "duration_s": 600}
        for e in (1, 2, 3)
    ]  # fmt: skip
    return pd.DataFrame(rows), pd.DataFrame(episodes)


def fill_lake(settings: Settings, n_filler: int = 40) -> Lake:
    """Write the test catalog into the workspace's lake."""
    lake = Lake(settings.workspace.lake_dir)
    titles, episodes = catalog_frames(n_filler)
    lake.write("titles", titles)
    lake.write("episodes", episodes)
    return lake


def free_port_below_ephemeral() -> int:
    """A free port the kernel never hands out to ``bind(0)``: for a server that binds it much later.

    A port picked with ``free_port`` is back in the kernel's pool until its server binds it; a
    balancer that starts a minute after its replicas can find it taken by another process's pick
    (seen in CI: an API replica on the model tier's balancer port).
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except OSError:
        low = 32_768  # Linux's default
    for port in random.sample(range(max(1024, low - 12_000), low), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


@dataclass
class ModelServerDouble:
    """Knobs of the model-server double: fail, be slow, count calls."""

    lake: Lake
    mode: str = "ok"  # ok | error | slow
    ignore_filters: bool = False  # recommend titles above the requested maturity (the API must filter them)
    delay_s: float = 1.0
    #: Propose titles from the history too, as the real model server does for a series whose other
    #: episodes bring it back: the API must leave out what the viewer already played.
    propose_played: bool = False
    calls: list[str] = field(default_factory=list)
    version: str = "double-v1"


def model_server_app(double: ModelServerDouble) -> FastAPI:
    """A real HTTP app speaking ``serving.contract``; recommends by genre overlap with exported history."""
    app = FastAPI()

    def catalog() -> pd.DataFrame:
        return double.lake.read("titles")

    def history(viewer: ViewerContext) -> set[str]:
        return {w.split(":")[0] for w in viewer.title_ids()}

    async def behave(name: str) -> None:
        double.calls.append(name)
        if double.mode == "error":
            raise HTTPException(503, "model server double is failing on purpose")
        if double.mode == "slow":
            import asyncio

            await asyncio.sleep(double.delay_s)

    def score(titles: pd.DataFrame, liked_genres: dict[str, int]) -> list[tuple[str, float]]:
        scored = [
            (str(t.title_id), float(sum(liked_genres.get(g, 0) for g in t.genres)) + 1e-3 * t.release_year / 3000)
            for t in titles.itertuples()
        ]
        return sorted(scored, key=lambda p: (-p[1], p[0]))

    def picks(viewer: ViewerContext, k: int) -> RecommendResponse:
        titles = catalog()
        watched = history(viewer)
        liked: dict[str, int] = {}
        for genres in titles.loc[titles["title_id"].isin(watched), "genres"]:
            for g in genres:
                liked[g] = liked.get(g, 0) + 1
        titles = titles[~titles["title_id"].isin((set() if double.propose_played else watched) | set(viewer.exclude))]
        if not double.ignore_filters:
            titles = titles[titles["maturity_level"] <= viewer.maturity_level]
        ranked = score(titles, liked)[:k]
        items = [ScoredTitle(title_id=t, score=s) for t, s in ranked]
        return RecommendResponse(items=items, model_version=double.version, source="model")

    def alike(title_id: str, k: int) -> SimilarResponse:
        titles = catalog()
        seed = titles.loc[titles["title_id"] == title_id, "genres"]
        liked = {g: 1 for g in (seed.iloc[0] if len(seed) else [])}
        ranked = [p for p in score(titles, liked) if p[0] != title_id][:k]
        return SimilarResponse(
            items=[ScoredTitle(title_id=t, score=s) for t, s in ranked], model_version=double.version
        )

    @app.post("/recommend")
    async def recommend(body: RecommendRequest) -> RecommendResponse:
        await behave("recommend")
        return picks(body.viewer, body.k)

    @app.post("/similar")
    async def similar(body: SimilarRequest) -> SimilarResponse:
        await behave("similar")
        return alike(body.title_id, body.k)

    @app.post("/home_candidates")
    async def home_candidates(body: HomeCandidatesRequest) -> HomeCandidatesResponse:
        await behave("home_candidates")
        return HomeCandidatesResponse(
            recommend=picks(body.viewer, body.k),
            similar=alike(body.similar.title_id, body.similar.k) if body.similar else None,
        )

    @app.post("/rank")
    async def rank(body: RankRequest) -> RankResponse:
        await behave("rank")
        items = [ScoredTitle(title_id=t, score=float(-i)) for i, t in enumerate(body.title_ids)]
        return RankResponse(items=items, model_version=double.version, source="model")

    return app


class ThreadedServer:
    """Runs an ASGI app under uvicorn in a background thread on a free port."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("model server double did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


def signup_and_login(client: TestClient, email: str, password: str = "correct horse 1", **extra: Any) -> dict[str, str]:
    """Create an account and return auth headers for it."""
    response = client.post("/v1/auth/signup", json={"email": email, "password": password, **extra})
    assert response.status_code == 201, response.text
    token = client.post("/v1/auth/token", data={"username": email, "password": password})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def make_profile(client: TestClient, headers: dict[str, str], name: str, **fields: Any) -> dict[str, Any]:
    """Create a profile and return its public form."""
    response = client.post("/v1/profiles", json={"name": name, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def watch(
    client: TestClient, headers: dict[str, str], profile_id: str, title_id: str, progress: float = 0.5, **extra: Any
) -> Any:
    """Post one heartbeat at ``progress`` of a 1000 s title."""
    body = {
        "event_id": extra.pop("event_id", f"{profile_id}-{title_id}-{progress}"),
        "title_id": title_id,
        "position_s": int(1000 * progress),
        "duration_s": 1000,
        **extra,
    }
    return client.post(f"/v1/profiles/{profile_id}/events", json=body, headers=headers)
