"""Free TCP ports for the servers Marquee starts locally: the one helper commands, benches and tests ask.

Thirteen copies of the same four lines had grown in commands, benches and tests,
some picking several ports one at a time (two picks can be the same port: the
kernel hands a just-closed port out again). The port is only free when it is
picked: a server that binds it much later can find it taken, so start it soon.
"""

from __future__ import annotations

import socket
from collections.abc import Collection

#: Where local servers listen unless told otherwise.
LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` nobody listens on right now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def free_ports(count: int, host: str = LOOPBACK, avoid: Collection[int] = ()) -> list[int]:
    """``count`` distinct free ports, none in ``avoid``: every socket stays bound until all are picked."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        for _ in range(count + len(avoid) + 64):  # the kernel skips ports still bound, so this ends
            if len(ports) == count:
                break
            probe = socket.socket()
            held.append(probe)
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
            if port not in avoid:
                ports.append(port)
    finally:
        for probe in held:
            probe.close()
    if len(ports) < count:
        raise OSError(f"could not find {count} free ports on {host}")
    return ports
