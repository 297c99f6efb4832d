"""The HAProxy configuration of ``--replicas`` (checked by HAProxy itself) and the refusals of the command."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.errors import ConfigurationError
from marquee.balancer import API_TIER, MODEL_TIER, REPLAYABLE_API_POSTS, Replica, render_config, write_config
from marquee.cli import app

REPLICAS = [Replica("r1", "127.0.0.1", 18001), Replica("r2", "127.0.0.1", 18002)]


def _haproxy_installed() -> bool:
    return bool(shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin"))


@pytest.mark.parametrize("policy", [API_TIER, MODEL_TIER], ids=lambda p: p.name)
def test_haproxy_accepts_the_generated_config(policy: object, tmp_path: Path) -> None:
    if not _haproxy_installed():
        pytest.skip("haproxy is not installed")
    text = render_config(policy, "127.0.0.1", 18000, REPLICAS)  # type: ignore[arg-type]
    write_config(tmp_path / "haproxy.cfg", text)  # raises when `haproxy -c` rejects it
    assert "server r1 127.0.0.1:18001" in text and "server r2 127.0.0.1:18002" in text
    assert f"option httpchk GET {policy.health_path}" in text  # type: ignore[attr-defined]
    assert "option redispatch 1" in text and "retry-on conn-failure empty-response" in text


def test_broken_config_is_reported_by_name(tmp_path: Path) -> None:
    if not _haproxy_installed():
        pytest.skip("haproxy is not installed")
    with pytest.raises(ConfigurationError, match="HAProxy rejected"):
        write_config(tmp_path / "bad.cfg", "frontend x\n    bind 127.0.0.1:1\n    no_such_keyword\n")


def test_only_replayable_requests_are_resent_on_the_api_tier() -> None:
    api = render_config(API_TIER, "127.0.0.1", 18000, REPLICAS)
    models = render_config(MODEL_TIER, "127.0.0.1", 18000, REPLICAS)
    assert "disable-l7-retry unless METH_GET" in api and "disable-l7-retry" not in models
    patterns = [re.compile(p) for p in REPLAYABLE_API_POSTS]

    def replayable(path: str) -> bool:
        return any(p.search(path) for p in patterns)

    assert replayable("/v1/auth/token") and replayable("/v1/profiles/p1/events")
    # A replayed refresh would look like a stolen token and revoke the login; a replayed signup or
    # profile creation would act twice.
    for path in ("/v1/auth/refresh", "/v1/auth/signup", "/v1/profiles", "/v1/profiles/p1/events/x"):
        assert not replayable(path), path


def test_api_replicas_refuse_to_start_without_shared_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARQUEE_HOME", str(tmp_path))
    monkeypatch.delenv("MARQUEE_RATE_LIMIT_URL", raising=False)
    result = CliRunner().invoke(app, ["serve", "api", "--replicas", "2"])
    assert isinstance(result.exception, ConfigurationError)
    assert "MARQUEE_RATE_LIMIT_URL" in str(result.exception) and "2x the tries" in str(result.exception)


def test_replica_count_is_checked() -> None:
    result = CliRunner().invoke(app, ["serve", "models", "--replicas", "0"])
    assert result.exception is not None and "--replicas must be at least 1" in str(result.exception)
