"""The event bus: a NATS JetStream stream of accepted events and the durable consumers that read it.

``MARQUEE_EVENT_BUS`` unset (the embedded default), the API database and its
journal are the only record and one exporter copies them to the lake. Set to a
``nats://`` URL, the API publishes every accepted watch event, exposure page and
playback report to the stream below and waits for the stream's ack before its
2xx; durable pull consumers (the lake writer, the online-feature push, the
popularity refresh) do the rest, each at least once with idempotent writes.
See docs/event-bus.md.
"""

from core.bus.consumer import ConsumerSpec, ConsumerStats, Delivery, Handler, run_consumer, run_consumer_forever
from core.bus.topology import EventKind, Topology, decode, encode, ensure_stream

__all__ = [
    "ConsumerSpec",
    "ConsumerStats",
    "Delivery",
    "EventKind",
    "Handler",
    "Topology",
    "decode",
    "encode",
    "ensure_stream",
    "run_consumer",
    "run_consumer_forever",
]
