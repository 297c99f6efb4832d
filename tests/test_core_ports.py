"""``core.ports``: free ports are free and distinct, and avoid what they are told to."""

from __future__ import annotations

import socket

from core.ports import free_port, free_ports


def test_a_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        assert server.getsockname()[1] == port


def test_several_free_ports_are_distinct_and_avoid_the_ports_named() -> None:
    avoid = set(free_ports(5))
    picked = free_ports(20, avoid=avoid)
    assert len(set(picked)) == 20 and not set(picked) & avoid
