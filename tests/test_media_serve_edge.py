"""`marquee serve edge` as a user runs it: origin and edges up, published for the API, gone on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import services_required

from media import tools

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_serve_edge_publishes_running_edges_and_stops_them_on_sigterm(tmp_path: Path) -> None:
    if not tools.available("nginx"):
        if services_required():
            pytest.fail("nginx is not installed and MARQUEE_REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip("nginx is not installed (apt-get install nginx)")
    home = tmp_path / "ws"
    env = {**os.environ, "MARQUEE_HOME": str(home)}
    command = [sys.executable, "-m", "marquee", "serve", "edge", "--origin-port", "0"]
    server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    edges_file = home / "run" / "edges.json"
    try:
        deadline = time.monotonic() + 60
        while not edges_file.exists():
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
            assert time.monotonic() < deadline, "edges not published in 60 s"
            time.sleep(0.2)
        published = json.loads(edges_file.read_text())
        assert [e["name"] for e in published["edges"]] == ["us-east", "eu-west"]
        assert "GB" in published["edges"][1]["regions"]
        for edge in published["edges"]:
            health = httpx.get(f"{edge['base_url']}/healthz", timeout=5)
            assert health.status_code == 200 and health.headers["x-edge"] == edge["name"]
            assert httpx.get(f"{edge['base_url']}/v/m1/abc/720p/init.mp4", timeout=5).status_code == 403
        assert httpx.get(f"{published['origin']}/healthz", timeout=5).status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert not edges_file.exists(), "stopped edges must not stay published"
    for edge in published["edges"]:
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{edge['base_url']}/healthz", timeout=2)
