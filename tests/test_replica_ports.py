"""A replica whose port another process takes before it binds it is started on another port.

``ReplicaSet`` picks each replica's port when the tier is built and the replica binds it
seconds later; on a busy machine (BentoML reserving and releasing ports of its own) the port
can be taken in between. The fault is injected on purpose: the first port handed out is one
this test is already listening on.
"""

from __future__ import annotations

import shutil
import socket
import sys
from collections.abc import Collection, Iterator
from pathlib import Path

import httpx
import pytest

from core.errors import ServiceUnavailableError
from core.ports import free_port
from marquee.balancer import TierPolicy
from marquee.commands import replicas as replicas_module
from marquee.commands.replicas import PORT_ATTEMPTS, ReplicaSet

#: A replica that answers 200 and its own port on every GET; it dies with errno 98 when the port is taken.
REPLICA = """
import http.server, sys
port = int(sys.argv[1])
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = str(port).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Answer).serve_forever()
"""
POLICY = TierPolicy("probe", "/healthz", server_timeout_s=2.0, replay_all=True)


def _haproxy_installed() -> bool:
    return bool(shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin"))


@pytest.fixture
def occupied() -> Iterator[int]:
    """A loopback port this test listens on for its whole length."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _hand_out_first(monkeypatch: pytest.MonkeyPatch, taken: list[int]) -> None:
    """``free_ports`` hands the ``taken`` ports out first, then the kernel's picks."""
    real = replicas_module.free_ports
    queue = list(taken)

    def picks(count: int, host: str = "127.0.0.1", avoid: Collection[int] = ()) -> list[int]:
        first = [queue.pop(0) for _ in range(min(count, len(queue)))]
        return first + real(count - len(first), host, avoid=[*avoid, *first])

    monkeypatch.setattr(replicas_module, "free_ports", picks)


def _tier(tmp_path: Path, count: int) -> ReplicaSet:
    balancer_port = free_port()
    command = lambda port: [sys.executable, "-c", REPLICA, str(port)]  # noqa: E731
    return ReplicaSet(POLICY, count, "127.0.0.1", balancer_port, command, {}, tmp_path, ready_s=20.0)


def test_a_replica_whose_port_was_taken_starts_on_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, occupied: int
) -> None:
    if not _haproxy_installed():
        pytest.skip("haproxy is not installed")
    _hand_out_first(monkeypatch, [occupied])
    tier = _tier(tmp_path, 2)
    assert tier.members[0].port == occupied
    try:
        tier.start()
        ports = [m.port for m in tier.members]
        assert occupied not in ports and len(set(ports)) == 2
        # The balancer was configured with the ports the replicas really listen on.
        config = tier.config_path.read_text()
        assert all(f"127.0.0.1:{port}" in config for port in ports) and f":{occupied}" not in config
        answers = {httpx.get(f"{tier.url}/healthz", timeout=5.0).text for _ in range(6)}
        assert answers == {str(p) for p in ports}
        assert "address already in use" in (tmp_path / f"{tier.tag}-replica1.log").read_text().lower()
    finally:
        tier.stop()


def test_a_replica_that_finds_every_port_taken_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, occupied: int
) -> None:
    _hand_out_first(monkeypatch, [occupied])
    tier = _tier(tmp_path, 1)
    # The re-pick avoids the ports the tier already uses, so hand the same taken port out under other names:
    # every attempt binds a port someone holds.
    monkeypatch.setattr(replicas_module, "free_ports", lambda count, host="127.0.0.1", avoid=(): [occupied] * count)
    try:
        with pytest.raises(ServiceUnavailableError, match="exited"):
            tier.start()
        log = (tmp_path / f"{tier.tag}-replica1.log").read_text().lower()
        assert log.count("address already in use") == PORT_ATTEMPTS
    finally:
        tier.stop()


def test_a_replica_that_dies_for_another_reason_is_not_restarted(tmp_path: Path) -> None:
    command = lambda port: [sys.executable, "-c", "import sys; sys.exit('bad configuration')"]  # noqa: E731
    tier = ReplicaSet(POLICY, 1, "127.0.0.1", free_port(), command, {}, tmp_path, ready_s=20.0)
    try:
        with pytest.raises(ServiceUnavailableError, match="bad configuration"):
            tier.start()
        assert (tmp_path / f"{tier.tag}-replica1.log").read_text().count("bad configuration") == 1
    finally:
        tier.stop()


def test_a_taken_balancer_port_is_refused_before_any_replica_starts(tmp_path: Path, occupied: int) -> None:
    """A server already on the balancer's port would answer its health check in HAProxy's place."""
    command = lambda port: [sys.executable, "-c", REPLICA, str(port)]  # noqa: E731
    tier = ReplicaSet(POLICY, 2, "127.0.0.1", occupied, command, {}, tmp_path, ready_s=20.0)
    assert occupied not in [m.port for m in tier.members]
    try:
        with pytest.raises(ServiceUnavailableError, match=f"port 127.0.0.1:{occupied} is taken"):
            tier.start()
        assert all(m.process.process is None for m in tier.members), "no replica was started"
    finally:
        tier.stop()
