"""`marquee demo` as a user runs it: the whole loop, servers up, answers, clean Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from core.ports import free_ports

REPO_ROOT = Path(__file__).resolve().parents[1]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.integration
def test_demo_runs_the_loop_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    model_port, api_port, mlflow_port = free_ports(3)
    env = {**os.environ, "MARQUEE_HOME": str(tmp_path / "ws"), "OPENBLAS_NUM_THREADS": "1"}
    log_path = tmp_path / "demo.out"
    command = [
        sys.executable, "-m", "marquee", "demo", "--scale", "0.02", "--seed", "3",
        "--model-port", str(model_port), "--api-port", str(api_port), "--mlflow-port", str(mlflow_port),
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        demo = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while "Press Ctrl-C" not in log_path.read_text(errors="replace"):
            assert demo.poll() is None, f"demo exited early:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"demo not ready in 10 minutes:\n{log_path.read_text()[-3000:]}"
            time.sleep(1)
        out = log_path.read_text()
        for step in ("generate", "describe", "features", "train", "serve"):
            assert re.search(rf"\] {step}: ", out), f"step {step} missing:\n{out}"
        assert f"http://127.0.0.1:{api_port}/docs" in out and f"http://127.0.0.1:{mlflow_port}" in out
        sample = re.search(r'"profile_id": "([^"]+)"', out)
        title = re.search(r'"title_id": "([^"]+)"', out)
        assert sample and title, out

        # The model server scores the viewer context the request carries (it keeps no histories).
        watched = {"title_id": title.group(1), "ts": "2026-01-01T00:00:00Z", "progress": 1.0, "completed": True}
        viewer = {"profile_id": sample.group(1), "maturity_level": 3, "kids": False, "country": "US"}
        known = httpx.post(
            f"http://127.0.0.1:{model_port}/recommend",
            json={"viewer": {**viewer, "history": [watched]}, "k": 5},
            timeout=10,
        ).json()
        assert known["source"] == "model" and len(known["items"]) == 5 and known["model_version"] == "1", known
        assert title.group(1) not in {item["title_id"] for item in known["items"]}, "a completed title came back"
        unknown = httpx.post(
            f"http://127.0.0.1:{model_port}/recommend",
            json={"viewer": {**viewer, "profile_id": "no-such-profile", "history": []}, "k": 5},
            timeout=10,
        ).json()
        assert unknown["source"] == "fallback" and unknown["items"]
        assert httpx.get(f"http://127.0.0.1:{api_port}/readyz", timeout=10).status_code == 200
        api = f"http://127.0.0.1:{api_port}"
        signup = {"email": "demo@example.com", "password": "a-long-password-1", "country": "US"}
        assert httpx.post(f"{api}/v1/auth/signup", json=signup, timeout=10).status_code == 201
        token = httpx.post(
            f"{api}/v1/auth/token", data={"username": signup["email"], "password": signup["password"]}, timeout=10
        ).json()["access_token"]
        headers = {"authorization": f"Bearer {token}"}
        profile = httpx.post(f"{api}/v1/profiles", json={"name": "Me"}, headers=headers, timeout=10).json()
        home = httpx.get(f"{api}/v1/profiles/{profile['profile_id']}/home", headers=headers, timeout=10)
        assert home.status_code == 200, home.text
        rows = home.json()["rows"]
        assert rows and all(row["items"] for row in rows), "the API serves rows from the generated catalog"
        assert httpx.get(f"http://127.0.0.1:{mlflow_port}/health", timeout=10).status_code == 200

        demo.send_signal(signal.SIGINT)
        time.sleep(0.5)
        demo.send_signal(signal.SIGINT)  # an impatient second Ctrl-C must not leave servers behind
        assert demo.wait(timeout=90) == 0
        assert "stopping the servers" in log_path.read_text()
        time.sleep(1)
        for port in (model_port, api_port, mlflow_port):
            assert not _port_open(port), f"port {port} still open after Ctrl-C"
    finally:
        if demo.poll() is None:
            # Ctrl-C first, so the demo stops the servers it started; kill only as a last resort.
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
