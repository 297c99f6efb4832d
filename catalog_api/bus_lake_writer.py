"""The lake writer: the event stream's consumer that appends accepted events to the lake, once each.

Replaces the file-locked exporter when ``MARQUEE_EVENT_BUS`` is set. Each batch
of messages becomes one ``Lake.write(..., mode="insert_new")`` per table, which
stores only rows whose primary key the table does not hold yet: a batch
redelivered after a crash between the write and the ack writes nothing twice.
Messages the lake can never hold are returned as poison (with the reason) for
the consumer runner to quarantine, using the rules the exporter uses
(``catalog_api.quarantine``) and the tables' own schema checks.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from catalog_api.export import EVENT_COLUMNS
from catalog_api.quarantine import split_poisoned
from catalog_api.services.exposures import ExposurePage, pages_table
from core.bus import ConsumerSpec, Delivery, EventKind, decode
from core.errors import SchemaError
from core.lake import Lake, to_arrow
from core.tables import EXPOSURES, PLAYBACK_REPORTS, WATCH_EVENTS, TableSpec
from core.timestamps import utc_series

logger = logging.getLogger(__name__)

#: The lake writer's durable consumer: every kind of event.
LAKE_WRITER = ConsumerSpec(name="lake-writer", batch=1000)

#: What a message the lake can never hold raises while its rows are built or checked.
_UNFIT = (SchemaError, KeyError, ValueError, TypeError, OverflowError)

_TABLES: dict[EventKind, TableSpec] = {
    EventKind.WATCH: WATCH_EVENTS,
    EventKind.EXPOSURE: EXPOSURES,
    EventKind.PLAYBACK: PLAYBACK_REPORTS,
}


class LakeWriter:
    """``Handler`` of the ``lake-writer`` consumer: messages → one idempotent lake write per table."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.written: dict[str, int] = defaultdict(int)

    def __call__(self, deliveries: list[Delivery]) -> dict[int, str]:
        poisoned: dict[int, str] = {}
        groups: dict[EventKind, list[tuple[int, Any]]] = defaultdict(list)
        for position, delivery in enumerate(deliveries):
            try:
                groups[delivery.kind].append((position, _parse(delivery)))
            except (ValueError, KeyError, TypeError) as error:
                poisoned[position] = f"unreadable {delivery.kind} message: {error}"
        for kind, items in groups.items():
            poisoned.update(self._write(kind, _first_per_key(kind, items)))
        return poisoned

    def _write(self, kind: EventKind, items: list[tuple[int, Any]]) -> dict[int, str]:
        """Write one kind's messages; returns the poisoned ones (position → reason)."""
        spec = _TABLES[kind]
        poisoned: dict[int, str] = {}
        table: pa.Table | pd.DataFrame | None = None
        try:
            if kind is EventKind.WATCH:
                frame = pd.DataFrame([record for _, record in items])
                good, bad = split_poisoned(frame, "lake writer")
                poisoned.update({items[row][0]: reason for row, reason in bad})
                refused = {row for row, _ in bad}
                items = [item for row, item in enumerate(items) if row not in refused]
                table = _table(spec, good, items) if not good.empty else None
            else:
                table = _table(spec, None, items)
        except _UNFIT:
            table = pd.DataFrame()  # a record lacks a column or holds an odd value: checked one by one below
        if table is None:
            return poisoned
        try:
            checked = to_arrow(spec, table)
        except _UNFIT:
            # Find the rows at fault one by one; the batch is rare, the check cheap.
            keep = []
            for position, record in items:
                try:
                    single = _table(spec, None, [(position, record)])
                    if kind is EventKind.WATCH and (bad := split_poisoned(single, "lake writer")[1]):
                        poisoned[position] = bad[0][1]
                        continue
                    to_arrow(spec, single)
                    keep.append((position, record))
                except _UNFIT as error:
                    poisoned[position] = f"does not fit the lake's {spec.name}: {type(error).__name__}: {error}"
            if not keep:
                return poisoned
            checked = to_arrow(spec, _table(spec, None, keep))
        self.written[spec.name] += self.lake.write(spec.name, checked, mode="insert_new")
        return poisoned


def _parse(delivery: Delivery) -> Any:
    """A message's record: an ``ExposurePage`` for exposures, else a dict with ``ts`` as a datetime."""
    if delivery.kind is EventKind.EXPOSURE:
        return ExposurePage.from_json(delivery.data.decode())
    record = decode(delivery.data)
    record["ts"] = datetime.fromisoformat(str(record["ts"]))
    return record


def _table(spec: TableSpec, frame: pd.DataFrame | None, items: list[tuple[int, Any]]) -> pa.Table | pd.DataFrame:
    """The rows of ``items`` in ``spec``'s columns (``frame``: the watch events already checked)."""
    if spec is EXPOSURES:
        return pages_table([page for _, page in items])
    if frame is None:
        frame = pd.DataFrame([record for _, record in items])
    frame = frame.copy()
    frame["ts"] = utc_series(frame["ts"]).dt.floor("ms")  # the lake stores milliseconds
    columns = EVENT_COLUMNS if spec is WATCH_EVENTS else spec.schema.names
    return frame[columns]


def _first_per_key(kind: EventKind, items: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
    """One message per event (a batch may hold a message and its redelivery; the lake refuses duplicate keys)."""
    seen: set[object] = set()
    unique = []
    for position, record in items:
        key = _key(kind, record)
        if key not in seen:
            seen.add(key)
            unique.append((position, record))
    return unique


def _key(kind: EventKind, record: Any) -> object:
    if kind is EventKind.EXPOSURE:
        return str(record.request_id)
    if kind is EventKind.PLAYBACK:
        return (str(record.get("session_id")), str(record.get("report_seq")))
    return str(record.get("event_id"))
