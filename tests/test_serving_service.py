"""The BentoML service through ``Service.to_asgi()``: APIs, errors, readiness, hot reload."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_serving_world as world

# BentoML's /metrics reads prometheus' multiprocess files; the real server sets this up itself.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="marquee-prom-"))

from starlette.testclient import TestClient

from core.settings import Settings
from serving.service import MarqueeRecommender


@pytest.fixture(scope="module")
def app() -> object:
    """One ASGI app per process: BentoML registers its Prometheus metrics when the app is built.

    Each ``TestClient`` context runs the app's lifespan, which builds a fresh service
    instance (and so reads the test's environment) every time.
    """
    service: Any = MarqueeRecommender  # a bentoml Service at runtime; mypy sees the class
    return service.to_asgi()


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The service reads its settings from the environment at start-up, as in production."""
    monkeypatch.setenv("MARQUEE_HOME", str(settings.workspace.home))
    monkeypatch.setenv("MARQUEE_SERVING_POLL_S", "0.2")
    monkeypatch.setenv("MARQUEE_SERVING_ONLINE_FEATURES", "0")  # these bundles have no ranker
    world.write_lake(settings)
    return settings


@pytest.fixture(scope="module")
def served(app: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Settings]]:
    """One workspace, one registered champion and one running service for the whole module.

    Only one lifespan of ``app`` may run at a time (the app holds one service
    instance), so tests that need their own service run before this starts
    (readiness) or reuse it last (hot reload).
    """
    tmp = tmp_path_factory.mktemp("serving")
    settings = Settings(home=tmp / "ws")
    settings.workspace.ensure()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MARQUEE_HOME", str(settings.workspace.home))
        patch.setenv("MARQUEE_SERVING_POLL_S", "0.2")
        patch.setenv("MARQUEE_SERVING_ONLINE_FEATURES", "0")  # these bundles have no ranker
        world.write_lake(settings)
        world.register(settings, world.build_bundle(), tmp)
        with TestClient(app) as test_client:  # type: ignore[arg-type]
            wait_for(lambda: test_client.get("/readyz").status_code == 200, "the champion to load")
            yield test_client, settings


@pytest.fixture
def client(served: tuple[TestClient, Settings]) -> TestClient:
    return served[0]


def v(profile_id: str, **overrides: object) -> dict[str, Any]:
    """The JSON viewer context the API would send for one of the world's profiles."""
    return world.context(profile_id, **overrides).model_dump(mode="json")


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_not_ready_until_champion_exists(app: object, env: Settings, tmp_path: Path) -> None:
    version = world.register(env, world.build_bundle(), tmp_path, alias=None)
    with TestClient(app) as client:  # type: ignore[arg-type]
        time.sleep(0.5)
        assert client.get("/readyz").status_code == 503
        response = client.post("/recommend", json={"viewer": v("viewer")})
        assert response.status_code == 503
        assert "marquee train" in response.json()["error"]
        world.move_alias(env, "champion", version)
        wait_for(lambda: client.get("/readyz").status_code == 200, "readiness after the alias is set")
        assert client.post("/recommend", json={"viewer": v("viewer")}).json()["model_version"] == version


def test_recommend_known_profile_is_personal(client: TestClient) -> None:
    response = client.post("/recommend", json={"viewer": v("viewer"), "k": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "model"
    assert body["model_version"] == "1"
    assert [i["title_id"] for i in body["items"]] == ["a4", "a5"]


def test_recommend_unknown_profile_is_fallback(client: TestClient) -> None:
    body = client.post("/recommend", json={"viewer": v("stranger", maturity_level=0), "k": 3}).json()
    assert body["source"] == "fallback"
    assert next(i["title_id"] for i in body["items"]) == "k1"
    assert all(i["title_id"] in world.FAMILY for i in body["items"])


def test_exclude_and_challenger_variant(client: TestClient) -> None:
    body = client.post(
        "/recommend", json={"viewer": v("viewer", exclude=["a4"]), "k": 1, "variant": "challenger"}
    ).json()
    # no challenger alias yet: the champion answers, and says which version it is
    assert body["items"][0]["title_id"] == "a5"
    assert body["model_version"] == "1"


def test_batch_rank_and_similar(client: TestClient) -> None:
    batch = client.post("/recommend_batch", json={"requests": [{"viewer": v("viewer")}, {"viewer": v("stranger")}]})
    assert batch.status_code == 200, batch.text
    assert [r["source"] for r in batch.json()["responses"]] == ["model", "fallback"]
    ranked = client.post("/rank", json={"viewer": v("viewer"), "title_ids": ["k2", "a4", "fr1"]})
    assert [i["title_id"] for i in ranked.json()["items"]] == ["a4", "k2"]
    similar = client.post("/similar", json={"viewer": v("viewer"), "title_id": "a2", "k": 2})
    assert similar.status_code == 200
    assert {i["title_id"] for i in similar.json()["items"]} <= set(world.ADULT) - {"a2", "a3"}  # a3: completed
    kid = client.post("/similar", json={"viewer": v("little"), "title_id": "a2", "k": 5}).json()
    assert all(i["title_id"] in world.FAMILY for i in kid["items"]), "a kids viewer saw an adult title"
    challenger = client.post("/similar", json={"viewer": v("viewer"), "title_id": "a2", "variant": "challenger"})
    assert challenger.status_code == 200 and challenger.json()["model_version"] == "1"  # no challenger yet


def test_home_candidates_answers_picks_and_similar_in_one_call(client: TestClient) -> None:
    body = {"viewer": v("viewer"), "k": 2, "similar": {"title_id": "a2", "k": 2}}
    response = client.post("/home_candidates", json=body)
    assert response.status_code == 200, response.text
    page = response.json()
    alone = client.post("/recommend", json={"viewer": v("viewer"), "k": 2}).json()
    assert page["recommend"] == alone
    assert page["similar"] == client.post("/similar", json={"viewer": v("viewer"), "title_id": "a2", "k": 2}).json()


def test_a_profile_nobody_has_seen_is_personalised_from_the_context_it_sends(client: TestClient) -> None:
    """Not in the lake, not in training: the history in the request is all the model server needs."""
    newcomer = v("brand-new", history=world.context("viewer").model_dump()["history"])
    page = client.post("/home_candidates", json={"viewer": newcomer, "k": 2, "similar": {"title_id": "a2"}}).json()
    assert page["recommend"]["source"] == "model"
    assert [i["title_id"] for i in page["recommend"]["items"]] == ["a4", "a5"]
    assert page["similar"]["items"] and not {"a2", "a3"} & {i["title_id"] for i in page["similar"]["items"]}
    kids = client.post("/home_candidates", json={"viewer": v("brand-new-kid", kids=True, history=newcomer["history"])})
    assert all(i["title_id"] in world.FAMILY for i in kids.json()["recommend"]["items"])


def test_home_candidates_without_a_known_seed_still_answers_picks(client: TestClient) -> None:
    body = {"viewer": v("viewer"), "k": 2, "similar": {"title_id": "nope", "k": 2}}
    page = client.post("/home_candidates", json=body).json()
    assert [i["title_id"] for i in page["recommend"]["items"]] == ["a4", "a5"]
    assert page["similar"] is None
    bad = client.post("/home_candidates", json={"viewer": v("viewer"), "k": 500})
    assert bad.status_code == 400
    assert "less than or equal to 100" in bad.text


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"viewer": v("viewer"), "title_id": "nope"}, 404, "unknown title_id 'nope'"),
        ({"viewer": v("viewer"), "title_id": "a1", "k": 0}, 400, "greater than or equal to 1"),
        ({"title_id": "a1"}, 400, "viewer"),
    ],
)
def test_similar_errors(client: TestClient, body: dict[str, object], status: int, needle: str) -> None:
    response = client.post("/similar", json=body)
    assert response.status_code == status
    assert needle in response.text


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"viewer": %s, "k": 500}', "less than or equal to 100"),
        ('{"viewer": %s, "colour": "red"}', "Extra inputs are not permitted"),
        ('{"k": 3}', "viewer"),
        ('{"profile_id": "viewer"}', "viewer"),
        ('{"viewer": %s, "variant": "blue"}', "champion"),
        ('{"viewer": {"profile_id": "p", "maturity_level": 3}}', "kids"),
        ('{"viewer": {"profile_id": "p", "maturity_level": 9, "kids": false}}', "less than or equal to 3"),
        ('{"viewer": {"profile_id": "p", "maturity_level": 3, "kids": false, "history": [{"title_id": "a1"}]}}', "ts"),
        ("not json", "Invalid JSON"),
    ],
)
def test_bad_bodies_get_a_clear_400(client: TestClient, content: str, needle: str) -> None:
    import json

    if "%s" in content:
        content = content % json.dumps(v("viewer"))
    response = client.post("/recommend", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert needle in response.text
    # the service is still fine afterwards
    assert client.post("/recommend", json={"viewer": v("viewer")}).status_code == 200


def test_metrics_endpoint_answers(client: TestClient) -> None:
    # In-process the counters' values depend on which test imported prometheus_client first
    # (it reads PROMETHEUS_MULTIPROC_DIR once); the fallback counters themselves are checked
    # against a real `bentoml serve` in tests/test_serving_server.py.
    client.post("/recommend", json={"viewer": v("stranger")})
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "# TYPE" in response.text


def test_hot_reload_moves_model_version_without_failed_requests(
    served: tuple[TestClient, Settings], tmp_path: Path
) -> None:
    """Last in the module: it moves the shared champion."""
    client, env = served
    new_version = world.register(env, world.build_bundle(metadata={"note": "v2"}), tmp_path, alias="challenger")
    wait_for(
        lambda: (
            client.post("/recommend", json={"viewer": v("viewer"), "variant": "challenger"}).json()["model_version"]
            == new_version
        ),
        "the challenger to load",
    )
    statuses: list[int] = []
    versions: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            response = client.post("/recommend", json={"viewer": v("viewer"), "k": 3})
            statuses.append(response.status_code)
            if response.status_code == 200:
                versions.append(response.json()["model_version"])

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        time.sleep(0.3)
        world.move_alias(env, "champion", new_version)
        wait_for(lambda: bool(versions) and versions[-1] == new_version, "the champion to move")
        time.sleep(0.2)
    finally:
        stop.set()
        worker.join()
    assert set(statuses) == {200}, f"failed requests during reload: {statuses}"
    assert versions[0] == "1"
    assert versions[-1] == new_version
    # once swapped, never back to the old version
    first_new = versions.index(new_version)
    assert set(versions[first_new:]) == {new_version}


def test_score_api_batches_rows_through_the_champion_ranker(
    served: tuple[TestClient, Settings], tmp_path: Path
) -> None:
    """After the hot-reload test: a champion with a real ranker answers /score (adaptive batching API)."""
    import numpy as np

    from models.ranker import NeuralRanker

    client, env = served
    missing = client.post("/score", json={"features": [[0.5, 0.5]]})
    assert missing.status_code == 404 and "has no ranker" in missing.text

    columns = ["cand_popularity_rrank", "cand_item_knn_rrank"]
    rng = np.random.default_rng(1)
    x = rng.random((800, 2), dtype=np.float32)
    groups = np.repeat(np.arange(100), 8)
    labels = np.zeros(800, dtype=np.float32)
    for g in range(100):
        labels[g * 8 + int(np.argmax(x[g * 8 : g * 8 + 8, 1]))] = 1.0  # follow item-kNN
    bundle = world.build_bundle(metadata={"ranker_columns": columns, "ranker_used": True})
    bundle.ranker = NeuralRanker(hidden=(8,), epochs=10, seed=0).fit(x, groups, labels, columns)
    version = world.register(env, bundle, tmp_path)
    wait_for(
        lambda: client.post("/recommend", json={"viewer": v("viewer")}).json()["model_version"] == version,
        "the ranker bundle to become champion",
    )
    scored = client.post("/score", json={"features": [[0.1, 0.9], [0.9, 0.1], [0.5, 0.5]]})
    assert scored.status_code == 200, scored.text
    values = scored.json()
    assert len(values) == 3 and values[0] > values[1]  # it learned to follow item-kNN's rank
    wrong = client.post("/score", json={"features": [[0.1, 0.9, 0.3]]})
    assert wrong.status_code == 422 and "features must have shape (n, 2)" in wrong.text
    top = client.post("/recommend", json={"viewer": v("viewer"), "k": 3}).json()
    assert top["source"] == "model" and top["model_version"] == version
    assert not {"a1", "a2", "a3", "fr1"} & {i["title_id"] for i in top["items"]}


def test_answers_are_what_the_pydantic_models_would_send(client: TestClient) -> None:
    """The handlers encode plain dicts: every answer parses as its model, and re-encoding it changes nothing."""
    from serving.contract import (
        BatchRecommendResponse,
        HomeCandidatesResponse,
        RankResponse,
        RecommendResponse,
        SimilarResponse,
    )

    calls: list[tuple[str, dict[str, Any], type[Any]]] = [
        (
            "/home_candidates",
            {"viewer": v("viewer"), "k": 3, "similar": {"title_id": "a2", "k": 3}},
            HomeCandidatesResponse,
        ),
        ("/home_candidates", {"viewer": v("viewer"), "k": 3, "similar": {"title_id": "nope"}}, HomeCandidatesResponse),
        ("/home_candidates", {"viewer": v("nobody", history=[]), "k": 3}, HomeCandidatesResponse),
        ("/recommend", {"viewer": v("little"), "k": 4}, RecommendResponse),
        ("/similar", {"viewer": v("viewer"), "title_id": "a2", "k": 2}, SimilarResponse),
        ("/rank", {"viewer": v("viewer"), "title_ids": ["a4", "a2", "zz"]}, RankResponse),
        ("/recommend_batch", {"requests": [{"viewer": v("viewer")}, {"viewer": v("little")}]}, BatchRecommendResponse),
    ]
    for path, body, model in calls:
        response = client.post(path, json=body)
        assert response.status_code == 200, (path, response.text)
        parsed = model.model_validate_json(response.content)  # extra=forbid: no stray or missing field
        assert response.json() == json.loads(parsed.model_dump_json()), path


def test_an_answer_json_cannot_write_takes_the_pydantic_path() -> None:
    from serving.contract import SimilarResponse
    from serving.service import _json

    body = {"items": [{"title_id": "a", "score": float("nan")}], "model_version": "1"}
    assert json.loads(bytes(_json(body, SimilarResponse).body)) == {
        "items": [{"title_id": "a", "score": None}],
        "model_version": "1",
    }
    assert json.loads(SimilarResponse.model_validate(body).model_dump_json()) == json.loads(
        bytes(_json(body, SimilarResponse).body)
    )
    body = {"items": [{"title_id": "a", "score": np.float32(0.5)}], "model_version": "1"}  # unknown to the encoder
    assert json.loads(bytes(_json(body, SimilarResponse).body)) == {
        "items": [{"title_id": "a", "score": 0.5}],
        "model_version": "1",
    }
