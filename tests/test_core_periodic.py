"""core.periodic: the housekeeping loop the servers share outlives a failing round and stops when asked."""

from __future__ import annotations

import threading
import time

import pytest

from core.periodic import Periodic


def _wait_for(condition, timeout_s: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_a_round_that_raises_is_logged_and_the_next_round_runs(caplog: pytest.LogCaptureFixture) -> None:
    rounds: list[int] = []

    def job() -> None:
        rounds.append(1)
        if len(rounds) == 1:
            raise OSError("the store was unreadable for a moment")

    loop = Periodic(job, 0.01, name="test-periodic")
    with caplog.at_level("ERROR", logger="core.periodic"):
        assert loop.start()
        assert _wait_for(lambda: len(rounds) >= 3), "the loop ended after the failing round"
        loop.stop()
    assert not loop.running
    assert "test-periodic failed" in caplog.text
    settled = len(rounds)
    time.sleep(0.05)
    assert len(rounds) == settled, "rounds ran after stop()"


def test_first_runs_at_once_and_every_s_zero_runs_only_first() -> None:
    first = threading.Event()
    called: list[int] = []
    loop = Periodic(lambda: called.append(1), 3600, name="test-first", first=first.set)
    loop.start()
    assert first.wait(2), "first did not run before the first wait"
    assert not called, "the job ran before its interval"
    loop.stop()

    once = threading.Event()
    only_first = Periodic(lambda: called.append(1), 0, name="test-once", first=once.set)
    only_first.start()
    assert once.wait(2)
    assert _wait_for(lambda: not only_first.running), "with every_s 0 the thread ends after first"
    assert not called


def test_one_thread_per_loop_and_a_stopped_loop_starts_again() -> None:
    ticks: list[int] = []
    loop = Periodic(lambda: ticks.append(1), 0.01, name="test-restart")
    assert loop.start() is True
    assert loop.start() is False, "a second start while running starts nothing"
    assert sum(t.name == "test-restart" for t in threading.enumerate()) == 1
    loop.stop()
    assert not loop.running
    before = len(ticks)
    assert loop.start() is True
    assert _wait_for(lambda: len(ticks) > before)
    loop.stop()
