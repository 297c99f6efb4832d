"""Accepted watch events read back in order, for consumers outside the API (the online-feature push).

The API may not import ``features`` or Feast (import contract), so it does not
push features itself: it offers its durable event table as a feed, read by
``seq`` above a caller's mark. The composition root (``marquee serve api``)
runs a ``features.push.OnlinePushLoop`` over this feed in a thread of its own:
an event's 2xx never waits on Feast, and a push that fails is retried from the
same mark.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from catalog_api.db.tables import WatchEventRow
from catalog_api.export import events_exported_through
from core.timestamps import utc_series

_COLUMNS = ["event_id", "profile_id", "title_id", "ts", "position_s", "duration_s", "device", "country"]


class EventFeed:
    """Watch events above a mark, with the whole database history of the profiles they touch."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def latest_seq(self) -> int:
        """The mark of the newest stored event (0 for none): a new consumer starts here."""
        with self._sessions() as session:
            return int(session.scalar(select(func.max(WatchEventRow.seq))) or 0)

    def after(self, seq: int, limit: int = 5_000) -> tuple[pd.DataFrame, pd.DataFrame, int]:
        """Events stored after ``seq`` (at most ``limit``); earlier events of the same profiles; the new mark.

        The earlier events ride along because a profile's features are recomputed from its
        whole history, and a profile created through the API has none in the lake until an
        export (which may be switched off). Only those above the lake's export mark are read:
        the rest are in the lake, and reading a profile's every heartbeat from the database
        on each batch grew with the profile's history (a soak's API CPU grew with it).
        """
        columns = [getattr(WatchEventRow, c) for c in _COLUMNS]
        with self._sessions() as session:
            new = session.execute(
                select(WatchEventRow.seq, *columns)
                .where(WatchEventRow.seq > seq)
                .order_by(WatchEventRow.seq)
                .limit(limit)
            ).all()
            if not new:
                return _frame([]), _frame([]), seq
            mark = max(int(r.seq) for r in new)
            profiles = sorted({r.profile_id for r in new})
            earlier = session.execute(
                select(*columns).where(
                    WatchEventRow.profile_id.in_(profiles),
                    WatchEventRow.seq > events_exported_through(session),
                    WatchEventRow.seq <= seq,
                )
            ).all()
        return _frame([row[1:] for row in new]), _frame(earlier), mark


def _frame(rows: Sequence[Sequence[object]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=_COLUMNS)
    frame["ts"] = utc_series(frame["ts"]).dt.floor("ms") if len(frame) else pd.Series(dtype="datetime64[ns, UTC]")
    return frame
