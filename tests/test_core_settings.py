"""Settings read the MARQUEE_ environment, derive workspace paths and refuse bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.domain import MaturityLevel, Title, TitleType, WatchEvent, maturity_level
from core.settings import Settings


def test_defaults_point_into_the_workspace(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "ws")
    assert settings.workspace.lake_dir == (tmp_path / "ws" / "lake").resolve()
    assert settings.mlflow_uri.startswith("sqlite:///") and settings.mlflow_uri.endswith("mlflow.db")
    assert settings.database.startswith("sqlite:///")
    settings.workspace.ensure()
    assert settings.workspace.feast_dir.is_dir()


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MARQUEE_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("MARQUEE_FEAST_ONLINE", "redis://127.0.0.1:6379")
    monkeypatch.setenv("MARQUEE_SERVING_URL", "http://127.0.0.1:3999")
    settings = Settings()
    assert settings.workspace.home == (tmp_path / "elsewhere").resolve()
    assert settings.feast_online == "redis://127.0.0.1:6379"
    assert settings.serving_url == "http://127.0.0.1:3999"


def test_bad_online_store_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARQUEE_FEAST_ONLINE", "cassandra")
    with pytest.raises(ValidationError, match="redis://"):
        Settings()


def test_development_secrets_are_refused_in_production() -> None:
    with pytest.raises(ValueError, match="MARQUEE_JWT_SECRET"):
        Settings(environment="production").check_production_secrets()
    Settings(environment="production", jwt_secret="x" * 40, cdn_signing_key="y" * 40).check_production_secrets()


@pytest.mark.parametrize(
    ("rating", "level"),
    [
        ("TV-Y", MaturityLevel.LITTLE_KIDS),
        ("PG", MaturityLevel.OLDER_KIDS),
        ("tv-14", MaturityLevel.TEENS),
        ("R", MaturityLevel.ADULTS),
        ("74 min", MaturityLevel.ADULTS),
        (None, MaturityLevel.ADULTS),
    ],
)
def test_ratings_map_onto_the_ladder_and_unknown_is_adults(rating: str | None, level: MaturityLevel) -> None:
    assert maturity_level(rating) == level


def test_domain_models_reject_extra_fields_and_compute_progress() -> None:
    with pytest.raises(ValidationError):
        Title(title_id="t1", type=TitleType.MOVIE, title="x", colour="red")  # type: ignore[call-arg]
    title = Title(title_id="t1", type=TitleType.MOVIE, title="x", countries=["US"])
    assert title.licensed_in("US") and not title.licensed_in("FR")
    assert Title(title_id="t2", type=TitleType.MOVIE, title="y").licensed_in("FR")
    event = WatchEvent(
        event_id="e", profile_id="p", title_id="t1", ts="2024-01-01T00:00:00Z", position_s=30, duration_s=120
    )
    assert event.progress == pytest.approx(0.25)
