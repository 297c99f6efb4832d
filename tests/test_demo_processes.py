"""A server the demo starts that dies at start-up says why in the error itself, not only in its log."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from core.errors import ServiceUnavailableError
from marquee.commands.demo_processes import ManagedProcess


def test_a_server_dying_at_start_up_shows_the_end_of_its_log(tmp_path: Path) -> None:
    script = "import sys; print('warming up'); print('OSError: [Errno 98] Address already in use'); sys.exit(3)"
    server = ManagedProcess(
        name="model server",
        command=[sys.executable, "-c", script],
        ready_url="http://127.0.0.1:9/readyz",  # nothing listens on the discard port
        log_path=tmp_path / "run" / "models.log",
    )
    server.start(tmp_path)
    with pytest.raises(ServiceUnavailableError) as failure:
        server.wait_ready(deadline_s=30)
    message = str(failure.value)
    assert "exited with code 3" in message
    assert "Address already in use" in message and "warming up" in message
    assert str(server.log_path) in message


def test_the_tail_keeps_only_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    server = ManagedProcess(name="API", command=["true"], ready_url="http://127.0.0.1:9/", log_path=log)
    tail = server.log_tail(lines=3)
    assert tail.splitlines() == ["  | line 97", "  | line 98", "  | line 99"]
    assert "(log unreadable" in ManagedProcess("x", ["true"], "http://x/", tmp_path / "absent.log").log_tail()
