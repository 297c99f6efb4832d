"""Once through a real server: `marquee serve models` starts `bentoml serve`, we call it over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import test_serving_world as world

from core.ports import free_port
from core.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.integration
def test_marquee_serve_models_answers_over_http(settings: Settings, tmp_path: Path) -> None:
    world.write_lake(settings)
    first = world.register(settings, world.build_bundle(), tmp_path)
    port = free_port()
    env = {
        **os.environ,
        "MARQUEE_HOME": str(settings.workspace.home),
        "OPENBLAS_NUM_THREADS": "1",
        "BENTOML_DO_NOT_TRACK": "True",
    }
    log = (tmp_path / "server.log").open("w")
    command = [sys.executable, "-m", "marquee", "serve", "models", "--port", str(port), "--poll", "0.5"]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        ready_in_a_row = 0
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                # Each new connection may land on either BentoML worker, and each loads on its own:
                # ready means several answers in a row said so, not the first worker to finish.
                ready = httpx.get(f"{base}/readyz", timeout=2).status_code == 200
                ready_in_a_row = ready_in_a_row + 1 if ready else 0
                if ready_in_a_row == 8:
                    break
                if ready:
                    continue
            except httpx.TransportError:
                ready_in_a_row = 0
            assert time.monotonic() < deadline, (
                "server not ready in 120s:\n" + (tmp_path / "server.log").read_text()[-3000:]
            )
            time.sleep(0.5)

        viewer = world.context("viewer").model_dump(mode="json")
        stranger = world.context("stranger").model_dump(mode="json")
        known = httpx.post(f"{base}/recommend", json={"viewer": viewer, "k": 2}, timeout=5)
        assert known.status_code == 200, known.text
        assert known.json() == {
            "items": known.json()["items"],
            "model_version": first,
            "source": "model",
            "reason": None,
        }
        assert [i["title_id"] for i in known.json()["items"]] == ["a4", "a5"]

        unknown = httpx.post(f"{base}/recommend", json={"viewer": stranger, "k": 3}, timeout=5).json()
        assert unknown["source"] == "fallback" and unknown["items"][0]["title_id"] == "a1"

        missing = httpx.post(f"{base}/similar", json={"viewer": viewer, "title_id": "nope"}, timeout=5)
        assert missing.status_code == 404 and "unknown title_id" in missing.text

        # move the champion: answers change version without a restart
        second = world.register(settings, world.build_bundle(metadata={"note": "v2"}), tmp_path)
        deadline = time.monotonic() + 30
        while True:
            body = httpx.post(f"{base}/recommend", json={"viewer": viewer}, timeout=5).json()
            if body["model_version"] == second:
                break
            assert time.monotonic() < deadline, f"champion still {body['model_version']}, expected {second}"
            time.sleep(0.2)

        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert 'marquee_fallbacks_total{endpoint="recommend",reason="no_history"}' in metrics
        assert "marquee_model_swaps_total" in metrics
    finally:
        process.send_signal(signal.SIGINT)  # the CLI forwards Ctrl-C to bentoml serve
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
