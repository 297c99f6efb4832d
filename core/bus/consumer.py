"""Run one durable pull consumer: fetch a batch, hand it to a handler, ack what is done, quarantine poison.

Every consumer (lake writer, online-feature push, popularity refresh) has the
same delivery rules, defined once here:

- one durable name per consumer, explicit acks: JetStream remembers what was
  acked, so a consumer killed mid-batch resumes where it stopped and the
  unacked messages come back after ``ack_wait``;
- a message is acked only after the handler's write returned, so the write
  must be idempotent (a redelivered batch writes nothing twice);
- a batch whose handler raises is retried message by message, so one bad
  message cannot hold the others back; a message that still fails is nak'ed
  with a growing delay and, at its ``max_deliver``-th delivery, quarantined;
- a message the handler refuses (poison: it can never be processed) is
  republished to the stream's quarantine subject with its reason and acked,
  so it never blocks the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.bus.topology import CONSUMER_HEADER, MSG_ID_HEADER, REASON_HEADER, EventKind, Topology, ensure_stream

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One message as a handler sees it."""

    kind: EventKind
    msg_id: str
    data: bytes
    #: How many times JetStream has delivered it (1 the first time).
    deliveries: int


#: ``deliveries -> {position: reason}`` of the messages that can never be processed (they are quarantined);
#: the others are acked once it returns. Raising means "not now" (they are retried).
Handler = Callable[[list[Delivery]], dict[int, str]]


@dataclass(frozen=True)
class ConsumerSpec:
    """One durable consumer.

    Attributes:
        name: the durable name (JetStream keeps its position under it).
        kinds: the kinds it reads; ``None`` for all.
        batch: messages fetched and handled at once.
        ack_wait_s: how long a delivered, unacked message waits before it is redelivered
            (a consumer killed mid-batch); each redelivery waits twice as long, up to 10 minutes.
        max_deliver: deliveries before a failing message is quarantined.
        fetch_timeout_s: how long a fetch waits for messages.
        deliver_new: start at messages published after the consumer is created (default: the stream's first).
        inactive_threshold_s: JetStream deletes the durable after this long without a reader (for consumers
            named per process); ``None`` keeps it forever.
    """

    name: str
    kinds: tuple[EventKind, ...] | None = None
    batch: int = 500
    ack_wait_s: float = 30.0
    max_deliver: int = 6
    fetch_timeout_s: float = 1.0
    deliver_new: bool = False
    inactive_threshold_s: float | None = None

    def backoff_s(self) -> list[float]:
        """Redelivery delays: ``ack_wait_s`` doubling, at most 10 minutes, one per redelivery."""
        return [min(self.ack_wait_s * 2**i, 600.0) for i in range(self.max_deliver - 1)]

    def filter_subject(self, topology: Topology) -> str:
        """The subject filter: one kind's subject, or every event subject."""
        if self.kinds is not None and len(self.kinds) == 1:
            return topology.subject(self.kinds[0])
        return f"{topology.prefix}.events.>"


@dataclass
class ConsumerStats:
    """What a consumer did since it started."""

    handled: int = 0
    quarantined: int = 0
    batches: int = 0
    retried: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


async def run_consumer(
    url: str,
    topology: Topology,
    spec: ConsumerSpec,
    handler: Handler,
    stop: asyncio.Event | None = None,
    *,
    until_idle: bool = False,
) -> ConsumerStats:
    """Consume until ``stop`` is set (or, with ``until_idle``, until nothing is pending); returns the stats.

    Connects (reconnecting on its own after a connection loss), creates the stream
    and the durable consumer if missing, then loops fetch → handle → ack.
    """
    import nats
    from nats.errors import TimeoutError as NatsTimeout

    stop = stop or asyncio.Event()

    async def on_error(error: Exception) -> None:
        logger.debug("consumer %s: %r", spec.name, error)  # connection losses; the client reconnects

    nc = await nats.connect(
        url, max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=2, error_cb=on_error
    )
    stats = ConsumerStats()
    try:
        js = nc.jetstream()
        await ensure_stream(js, topology)
        await _ensure_consumer(js, topology, spec)
        subscription = await js.pull_subscribe_bind(durable=spec.name, stream=topology.stream)
        logger.info("consumer %s: reading %s", spec.name, spec.filter_subject(topology))
        while not stop.is_set():
            try:
                messages = await subscription.fetch(spec.batch, timeout=spec.fetch_timeout_s)
            except (NatsTimeout, TimeoutError):  # nats raises either, depending on where the wait ended
                if until_idle:
                    info = await subscription.consumer_info()
                    # Nothing new and nothing delivered but unacked (a nak'ed message waits for its redelivery).
                    if info.num_pending == 0 and info.num_ack_pending == 0:
                        break
                continue
            await _handle_batch(js, topology, spec, handler, messages, stats)
    finally:
        # Acks are flushed; an outstanding fetch would hold a drain for its whole timeout.
        with contextlib.suppress(Exception):
            await nc.flush(timeout=2)
        await nc.close()
    return stats


async def run_consumer_forever(
    url: str, topology: Topology, spec: ConsumerSpec, handler: Handler, stop: asyncio.Event, retry_s: float = 2.0
) -> None:
    """``run_consumer`` restarted after any failure (NATS down at start, a lost stream) until ``stop`` is set."""
    while not stop.is_set():
        try:
            await run_consumer(url, topology, spec, handler, stop)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.warning("consumer %s stopped (%r); restarting in %.0f s", spec.name, error, retry_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), retry_s)


async def _ensure_consumer(js: JetStreamContext, topology: Topology, spec: ConsumerSpec) -> None:
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
    from nats.js.errors import BadRequestError

    config = ConsumerConfig(
        durable_name=spec.name,
        deliver_policy=DeliverPolicy.NEW if spec.deliver_new else DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=spec.ack_wait_s,
        max_deliver=spec.max_deliver,
        backoff=spec.backoff_s(),
        filter_subject=spec.filter_subject(topology),
        max_ack_pending=max(10 * spec.batch, 1000),
        inactive_threshold=spec.inactive_threshold_s,
    )
    try:
        await js.add_consumer(topology.stream, config)
    except BadRequestError as error:
        # An existing durable whose settings cannot change in place (e.g. its filter): keep it, say so.
        logger.warning("consumer %s: kept the existing durable configuration (%s)", spec.name, error.description)


def _delivery(topology: Topology, message: Msg) -> Delivery:
    headers = message.headers or {}
    return Delivery(
        kind=topology.kind_of(message.subject),
        msg_id=headers.get(MSG_ID_HEADER, ""),
        data=message.data,
        deliveries=message.metadata.num_delivered,
    )


async def _handle_batch(
    js: JetStreamContext,
    topology: Topology,
    spec: ConsumerSpec,
    handler: Handler,
    messages: list[Msg],
    stats: ConsumerStats,
) -> None:
    deliveries = [_delivery(topology, m) for m in messages]
    stats.batches += 1
    keepalive = asyncio.create_task(_in_progress(messages, spec.ack_wait_s / 2))
    try:
        poisoned = await asyncio.to_thread(handler, deliveries)
    except Exception as error:
        keepalive.cancel()
        if len(messages) == 1:
            await _failed(js, topology, spec, messages[0], deliveries[0], error, stats)
            return
        logger.exception("consumer %s: a batch of %d failed; retrying one by one", spec.name, len(messages))
        for message in messages:
            await _handle_batch(js, topology, spec, handler, [message], stats)
        return
    keepalive.cancel()
    for position, (message, delivery) in enumerate(zip(messages, deliveries, strict=True)):
        reason = poisoned.get(position)
        if reason is not None:
            await _quarantine(js, topology, spec, message, delivery, reason, stats)
        else:
            stats.handled += 1
            stats.by_kind[delivery.kind.value] = stats.by_kind.get(delivery.kind.value, 0) + 1
        await message.ack()


async def _in_progress(messages: list[Msg], every_s: float) -> None:
    """Tell JetStream the batch is still being worked on, so a slow handler's messages are not redelivered meanwhile."""
    while True:
        await asyncio.sleep(every_s)
        for message in messages:
            with contextlib.suppress(Exception):
                await message.in_progress()


async def _failed(
    js: JetStreamContext,
    topology: Topology,
    spec: ConsumerSpec,
    message: Msg,
    delivery: Delivery,
    error: Exception,
    stats: ConsumerStats,
) -> None:
    """One message the handler raised on: retried later, or quarantined at its last delivery."""
    logger.warning(
        "consumer %s: message %r failed (delivery %d): %r", spec.name, delivery.msg_id, delivery.deliveries, error
    )
    if delivery.deliveries >= spec.max_deliver:
        reason = f"failed {delivery.deliveries} deliveries, last: {type(error).__name__}: {error}"
        await _quarantine(js, topology, spec, message, delivery, reason, stats)
        await message.ack()
        return
    stats.retried += 1
    backoff = spec.backoff_s()
    await message.nak(delay=backoff[min(delivery.deliveries - 1, len(backoff) - 1)])


async def _quarantine(
    js: JetStreamContext,
    topology: Topology,
    spec: ConsumerSpec,
    message: Msg,
    delivery: Delivery,
    reason: str,
    stats: ConsumerStats,
) -> None:
    """Republish ``message`` to the quarantine subject with its reason (the caller acks the original)."""
    one_line = " ".join(reason.split())[:500]
    logger.error("consumer %s: quarantined %s message %r: %s", spec.name, delivery.kind, delivery.msg_id, one_line)
    headers = {
        REASON_HEADER: one_line,
        CONSUMER_HEADER: spec.name,
        MSG_ID_HEADER: f"{spec.name}:{delivery.msg_id or message.metadata.sequence.stream}",
    }
    await js.publish(topology.quarantine_subject(delivery.kind), message.data, headers=headers)
    stats.quarantined += 1
