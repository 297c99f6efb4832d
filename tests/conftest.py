"""Fixtures shared by the whole suite: workspaces, settings, real services."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.bus import Topology
from core.settings import Settings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def services_required() -> bool:
    """CI sets MARQUEE_REQUIRE_SERVICES=1: a missing service then fails instead of skipping."""
    return os.environ.get("MARQUEE_REQUIRE_SERVICES") == "1"


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or fail under MARQUEE_REQUIRE_SERVICES=1) when a real service is absent."""
    if port_open(host, port):
        return
    message = f"{name} is not running on {host}:{port}"
    if services_required():
        pytest.fail(f"{message} and MARQUEE_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(f"{message}; start it to run this test")


def require_shared_data(relative: str) -> Path:
    """Path to a file or folder of ../shared/data, or skip (fail in CI) when absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        if services_required():
            pytest.fail(f"shared data {path} is missing", pytrace=False)
        pytest.skip(f"shared data {path} is missing")
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings for a fresh temporary workspace; nothing touches ./.marquee."""
    s = Settings(home=tmp_path / "ws")
    s.workspace.ensure()
    yield s


@pytest.fixture
def redis_url() -> str:
    """A real Redis at 127.0.0.1:6379, or skip."""
    require_service("Redis", "127.0.0.1", 6379)
    return "redis://127.0.0.1:6379"


@pytest.fixture
def nats_url() -> str:
    """A real NATS server with JetStream at 127.0.0.1:4222, or skip."""
    require_service("NATS", "127.0.0.1", 4222)
    return "nats://127.0.0.1:4222"


@pytest.fixture
def bus_topology(nats_url: str) -> Iterator[Topology]:
    """An event stream and subjects no other test uses (small limits), deleted after the test."""
    from tests.bus.stream import delete_stream

    topology = Topology(prefix=f"test-{uuid.uuid4().hex[:12]}", max_bytes=64 * 1024**2)
    yield topology
    delete_stream(nats_url, topology)


@pytest.fixture
def postgres_url() -> str:
    """A real PostgreSQL at 127.0.0.1:5432 (database ``test``), or skip."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    return "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One local[2] Spark session for the whole test session (starting one costs many seconds)."""
    import shutil

    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        message = "Java is not installed (`make java`); the Spark engine needs it"
        if services_required():
            pytest.fail(f"{message} and MARQUEE_REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip(message)
    from features.spark.session import spark_session

    home = tmp_path_factory.mktemp("spark-ws")
    session = spark_session(Settings(home=home, engine="spark", spark_master="local[2]"))
    yield session
    session.stop()
