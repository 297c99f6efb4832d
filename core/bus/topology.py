"""What the stream is: its name, subjects per kind of event, limits, and the message encoding.

Defined once here; the API's publisher, every consumer, the tests and the bench
derive names from a ``Topology`` so a test can use a prefix of its own.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nats.js.client import JetStreamContext

logger = logging.getLogger(__name__)

#: Header of a quarantined message: why it was set aside.
REASON_HEADER = "Marquee-Quarantine-Reason"
#: Header of a quarantined message: the consumer that set it aside.
CONSUMER_HEADER = "Marquee-Quarantine-Consumer"
#: JetStream's de-duplication header; the value is the event's own id.
MSG_ID_HEADER = "Nats-Msg-Id"
_NAME_IN_USE = 10058  # JetStream: "stream name already in use with a different configuration"


class EventKind(StrEnum):
    """The kinds of accepted events, one subject each."""

    WATCH = "watch"
    EXPOSURE = "exposure"
    PLAYBACK = "playback"


@dataclass(frozen=True)
class Topology:
    """Names and limits of one deployment's stream.

    Attributes:
        prefix: first token of every subject (``<prefix>.events.watch``); tests use one of their own.
        max_age_s: how long a message is kept whether consumed or not (a consumer down longer loses nothing
            it acked, but would miss older messages: a week leaves time to notice).
        max_bytes: size limit of the stream; when reached, new publishes are refused (``discard new``), so
            the API answers 503 instead of the stream silently dropping accepted events.
        duplicate_window_s: a publish repeating a ``Nats-Msg-Id`` seen within this window is acked but not
            stored again (an API retry after a lost ack); later duplicates are caught by the consumers'
            idempotent writes.
    """

    prefix: str = "marquee"
    max_age_s: float = 7 * 24 * 3600.0
    max_bytes: int = 8 * 1024**3
    duplicate_window_s: float = 120.0

    @property
    def stream(self) -> str:
        """The stream's name (upper case, no dots: JetStream refuses them)."""
        return f"{self.prefix.upper().replace('-', '_')}_EVENTS"

    def subject(self, kind: EventKind) -> str:
        """Where accepted events of ``kind`` are published."""
        return f"{self.prefix}.events.{kind.value}"

    def quarantine_subject(self, kind: EventKind) -> str:
        """Where consumers set aside messages of ``kind`` they can never process (with the reason)."""
        return f"{self.prefix}.quarantine.{kind.value}"

    def kind_of(self, subject: str) -> EventKind:
        """The kind of an event subject (the last token)."""
        return EventKind(subject.rsplit(".", 1)[-1])

    def stream_config(self) -> Any:
        """The JetStream configuration of the stream (file storage, limits retention, discard new)."""
        from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

        return StreamConfig(
            name=self.stream,
            description="Marquee accepted events: watch events, exposure pages, playback reports",
            subjects=[f"{self.prefix}.events.>", f"{self.prefix}.quarantine.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.NEW,
            max_age=self.max_age_s,
            max_bytes=self.max_bytes,
            max_msg_size=1024 * 1024,
            duplicate_window=self.duplicate_window_s,
        )


async def ensure_stream(js: JetStreamContext, topology: Topology) -> None:
    """Create the stream, or bring an existing one to this configuration (idempotent; every process calls it)."""
    from nats.js.errors import BadRequestError

    config = topology.stream_config()
    try:
        await js.add_stream(config)
    except BadRequestError as error:
        if error.err_code != _NAME_IN_USE:
            raise
        await js.update_stream(config)
        logger.info("event bus: stream %s updated to the current limits", topology.stream)


def encode(record: dict[str, Any]) -> bytes:
    """One message body: the record as JSON, datetimes in ISO 8601 with their offset."""
    return json.dumps(record, default=_iso, separators=(",", ":")).encode()


def decode(data: bytes) -> dict[str, Any]:
    """The record of a message body; ``ValueError`` when it is not a JSON object."""
    record = json.loads(data)
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    return record


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__} in an event message")
