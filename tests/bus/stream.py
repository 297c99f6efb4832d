"""Read and clean the test streams directly with the NATS client (what the tests check against)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import nats
from nats.js.errors import NotFoundError

from core.bus import Topology


def delete_stream(url: str, topology: Topology) -> None:
    """Delete the test's stream (its consumers go with it)."""

    async def run() -> None:
        nc = await nats.connect(url)
        with contextlib.suppress(NotFoundError):
            await nc.jetstream().delete_stream(topology.stream)
        await nc.close()

    asyncio.run(run())


def stream_messages(url: str, topology: Topology, subject: str) -> list[tuple[dict[str, str], bytes]]:
    """Every stored message of ``subject`` (headers, body), in stream order."""

    async def run() -> list[tuple[dict[str, str], bytes]]:
        nc = await nats.connect(url)
        js = nc.jetstream()
        try:
            info = await js.stream_info(topology.stream)
        except NotFoundError:
            await nc.close()
            return []
        found: list[tuple[dict[str, str], bytes]] = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            with contextlib.suppress(NotFoundError):
                message: Any = await js.get_msg(topology.stream, seq)
                if message.subject == subject:
                    found.append((dict(message.headers or {}), message.data))
        await nc.close()
        return found

    return asyncio.run(run())


def publish(url: str, topology: Topology, items: list[tuple[str, str, bytes]]) -> None:
    """Publish ``(subject, msg_id, body)`` items and wait for each ack (as the API does)."""
    from core.bus import ensure_stream

    async def run() -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        await ensure_stream(js, topology)
        for subject, msg_id, body in items:
            await js.publish(subject, body, headers={"Nats-Msg-Id": msg_id})
        await nc.close()

    asyncio.run(run())
