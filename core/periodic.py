"""Call a function every few seconds in a daemon thread until stopped: the servers' housekeeping loop.

Four long-running jobs each kept their own copy of this loop, with its stop event,
its join and its "an exception must not end the thread" guard: the model server's
registry poll (``serving.loader``), the online title features' follower
(``features.online``), the API's push of watch events to the online store
(``features.push``) and the release of free memory (``core.memory``). A copy that
forgot the guard would stop polling for good after one failed read, silently; so the
loop lives here once. A thread rather than an event-loop task: the jobs block (file
reads, MLflow calls, ``malloc_trim``) and the model server's workers have no loop of
their own at start-up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Periodic:
    """Run ``call`` every ``every_s`` seconds in a daemon thread, from :meth:`start` until :meth:`stop`.

    Args:
        call: the job; an exception it raises is logged and the next round runs as planned.
        every_s: seconds between two rounds (0 or less: only ``first`` runs, then the thread ends).
        name: the thread's name (shown by ``threading.enumerate`` and in logs).
        first: run once as soon as the thread starts, before the first wait (e.g. a first load
            that must not hold up the caller).
    """

    def __init__(
        self, call: Callable[[], object], every_s: float, *, name: str, first: Callable[[], object] | None = None
    ) -> None:
        self.call = call
        self.every_s = every_s
        self.name = name
        self.first = first
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> bool:
        """Start the thread; False (and nothing started) when it already runs."""
        with self._lock:
            if self.running:
                return False
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
            return True

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the thread to end and wait up to ``timeout_s`` for the round in progress to finish."""
        self._stop.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=timeout_s)

    def _run(self) -> None:
        if self.first is not None:
            self._round(self.first)
        if self.every_s <= 0:
            return
        while not self._stop.wait(self.every_s):
            self._round(self.call)

    def _round(self, job: Callable[[], object]) -> None:
        try:
            job()
        except Exception:  # housekeeping must never end the thread: the next round tries again
            logger.exception("%s failed; trying again in %.1f s", self.name, self.every_s)
