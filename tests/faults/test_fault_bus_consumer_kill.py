"""The lake-writer consumer SIGKILLed mid-stream and restarted while clients post events through the API.

The API runs as a real process with ``MARQUEE_EVENT_BUS`` set and the lake
writer as a real ``marquee consume lake-writer`` process, both on the real NATS
server (skipped without it, failed under MARQUEE_REQUIRE_SERVICES=1) and a
stream of the test's own. Every event the API acknowledged must reach the lake,
exactly once: the killed consumer's unacked batch is redelivered to the restarted
one, and ``insert_new`` keeps what was already written from being written twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from core.bus import Topology
from core.lake import Lake
from core.settings import Settings

from .load import REPO_ROOT, ApiProcess, run_load, sign_in

pytestmark = pytest.mark.slow


class ConsumerProcess:
    """``marquee consume lake-writer`` in its own process (its output goes to ``log``)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        args = [sys.executable, "-m", "marquee", "consume", "lake-writer", "--ack-wait", "2"]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(args, cwd=REPO_ROOT, env=self.env, stdout=out, stderr=out)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until the consumer reads the stream (its start-up imports take seconds on a loaded machine)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.log.exists() and self.log.read_text().count(": reading ") >= self.starts:
                return
            assert self.process is not None and self.process.poll() is None, self.log.read_text()
            time.sleep(0.2)
        raise RuntimeError("the consumer did not start in time")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def lake_event_ids(lake: Lake) -> list[str]:
    return [str(e) for e in lake.read("watch_events")["event_id"]] if lake.exists("watch_events") else []


def test_killed_consumer_loses_nothing_and_writes_nothing_twice(
    settings: Settings, workspace_env: dict[str, str], nats_url: str, bus_topology: Topology, tmp_path: Path
) -> None:
    env = {**workspace_env, "MARQUEE_EVENT_BUS": nats_url, "MARQUEE_EVENT_BUS_PREFIX": bus_topology.prefix}
    api = ApiProcess(env)
    consumer = ConsumerProcess({**api.env, "MARQUEE_LOG_LEVEL": "INFO"}, tmp_path / "consumer.log")
    lake = Lake(settings.workspace.lake_dir)
    seen_at_kill: dict[str, int] = {}
    api.start()
    consumer.start()
    try:
        consumer.wait_ready()
        headers, profile = sign_in(api.url)

        def fault() -> None:
            while not lake_event_ids(lake):  # the consumer is writing: kill it mid-stream
                time.sleep(0.2)
            time.sleep(1.0)
            seen_at_kill["events"] = len(lake_event_ids(lake))
            consumer.kill()  # mid-stream: events keep coming while no consumer runs
            time.sleep(1.0)
            consumer.start()

        killer = threading.Thread(target=fault)
        killer.start()
        result = run_load(lambda: api.url, headers, profile, 12.0, 60.0)
        killer.join()
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and not result.acknowledged <= set(lake_event_ids(lake)):
            time.sleep(0.5)
    finally:
        consumer.stop()
        api.stop()
    stored = lake_event_ids(lake)
    print(
        f"\nconsumer SIGKILL: {len(result.acknowledged)} events acknowledged, {len(stored)} in the lake "
        f"({seen_at_kill.get('events')} at the kill), answers {dict(Counter(a.status for a in result.answers))}"
    )
    assert result.server_errors == []
    assert 0 < seen_at_kill["events"] < len(result.acknowledged)  # the kill came mid-stream
    assert result.acknowledged <= set(stored)  # nothing acknowledged is lost
    assert len(stored) == len(set(stored))  # nothing is written twice
    assert set(stored) <= result.acknowledged  # and nothing appears that no client sent
    assert "consumer lake-writer" in (tmp_path / "consumer.log").read_text()
    assert os.path.exists(settings.workspace.lake_dir / "watch_events")
