"""Publish accepted events to the stream and wait for its ack (``MARQUEE_EVENT_BUS`` set).

The API's routes that accept events are synchronous (they run in the server's
thread pool), and the home page is async on the server's loop; NATS clients are
asyncio. The publisher owns one connection on an event loop of its own, in a
daemon thread, and offers both a blocking ``publish`` (for the thread pool) and
an awaitable ``publish_async`` (for the server's loop); either returns only
once JetStream has stored the message, so a 2xx follows the ack.

When NATS cannot be reached the publish fails at once (the connection is known
to be down) or after ``timeout_s`` (no ack came), with ``ServiceUnavailableError``:
the API answers 503 with ``Retry-After`` and the client's retry, carrying the same
id, is de-duplicated by the stream (``Nats-Msg-Id``) and by the consumers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from core.bus.topology import MSG_ID_HEADER, EventKind, Topology, encode, ensure_stream
from core.errors import ServiceUnavailableError

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.client import JetStreamContext

logger = logging.getLogger(__name__)

#: The message of every refusal: nothing was accepted, the same request may be sent again.
UNREACHABLE = "the event stream is unreachable; nothing was stored, retry the same request"


class EventPublisher:
    """One NATS connection (reconnecting on its own) and the stream's publish-and-wait-for-ack.

    Args:
        url: ``nats://host:port``.
        topology: the stream's names and limits.
        timeout_s: how long a publish waits for the ack before the request is refused.
    """

    def __init__(self, url: str, topology: Topology, timeout_s: float = 2.0) -> None:
        self.url, self.topology, self.timeout_s = url, topology, timeout_s
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._closing = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="event-bus", daemon=True)
        self._thread.start()
        self._connector = asyncio.run_coroutine_threadsafe(self._connect_until_done(), self._loop)

    @property
    def connected(self) -> bool:
        """Whether a publish can be tried now (connected, stream ensured)."""
        return self._js is not None and self._nc is not None and self._nc.is_connected

    def wait_connected(self, timeout_s: float) -> bool:
        """Block until connected (start-up, tests); False when ``timeout_s`` passed first."""
        try:
            self._connector.result(timeout_s)
        except TimeoutError:
            return False
        return self.connected

    async def _connect_until_done(self) -> None:
        """Connect and ensure the stream, retrying every second: the API starts even when NATS does not."""
        import nats

        while not self._closing:
            try:
                nc = await nats.connect(
                    self.url,
                    connect_timeout=1,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnect,
                    reconnected_cb=self._on_reconnect,
                )
                js = nc.jetstream()
                await ensure_stream(js, self.topology)
            except Exception as error:
                logger.warning("event bus %s unreachable (%s); events get 503 until it is back", self.url, error)
                await asyncio.sleep(1.0)
                continue
            self._nc, self._js = nc, js
            logger.info("event bus: publishing to stream %s at %s", self.topology.stream, self.url)
            return

    async def _on_error(self, error: Exception) -> None:
        logger.debug("event bus: %s", error)

    async def _on_disconnect(self) -> None:
        if self._closing:
            return
        logger.warning("event bus: disconnected from %s; events are refused with 503 until it is back", self.url)

    async def _on_reconnect(self) -> None:
        logger.info("event bus: reconnected to %s", self.url)

    async def _publish(self, kind: EventKind, msg_id: str, payload: bytes) -> None:
        from nats.errors import Error as NatsError

        js, nc = self._js, self._nc
        if js is None or nc is None or not nc.is_connected:
            # While reconnecting, the client would buffer the publish and the ack could never come in time.
            raise ServiceUnavailableError(UNREACHABLE)
        try:
            await js.publish(
                self.topology.subject(kind), payload, timeout=self.timeout_s, headers={MSG_ID_HEADER: msg_id}
            )
        except (NatsError, TimeoutError) as error:
            # A JetStream refusal (stream full: discard new), no ack in time, or the connection lost meanwhile.
            logger.warning("event bus: %s event %r not acknowledged: %r", kind, msg_id, error)
            raise ServiceUnavailableError(UNREACHABLE) from error

    def publish(self, kind: EventKind, msg_id: str, record: dict[str, Any]) -> None:
        """Publish ``record`` and block until the stream acked it.

        Raises:
            ServiceUnavailableError: not connected, refused, or no ack within ``timeout_s``.
        """
        future: Future[None] = asyncio.run_coroutine_threadsafe(self._publish(kind, msg_id, encode(record)), self._loop)
        try:
            future.result(self.timeout_s + 1.0)
        except TimeoutError as error:
            future.cancel()
            raise ServiceUnavailableError(UNREACHABLE) from error

    async def publish_async(self, kind: EventKind, msg_id: str, payload: bytes) -> None:
        """``publish`` for a caller on another event loop (the server's): awaits the ack without blocking it."""
        future = asyncio.run_coroutine_threadsafe(self._publish(kind, msg_id, payload), self._loop)
        try:
            await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s + 1.0)
        except TimeoutError as error:
            raise ServiceUnavailableError(UNREACHABLE) from error

    def close(self) -> None:
        """Flush and close the connection, stop the loop (at shutdown)."""
        self._closing = True

        async def shutdown() -> None:
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            if self._nc is not None and not self._nc.is_closed:
                # Every publish was acked before its request answered: nothing is left to drain.
                await self._nc.close()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5.0)
        except Exception:
            logger.warning("event bus: closing the connection failed", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
