"""Experiment assignment for the home page, through the ``experiments`` package.

Assignment decides which model variant (``champion`` / ``challenger``) to ask
and which row layout to serve (``default``, ``genre_first``,
``trending_first``). Definitions are re-read from the store at most every
``refresh_s`` seconds, not on every page, and parsed again only when a file
changed (parsing the three shipped definitions costs about 5 ms on the event loop,
every ``refresh_s``, in every worker). When no experiment is running, or
the store cannot be read, the page uses the champion and the default layout:
an experiment problem never breaks the home page.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.assignment import AssignmentContext, assign
from experiments.loader import definition_files
from experiments.spec import LAYOUTS, MODEL_ALIASES, Experiment
from experiments.store import ExperimentStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PageAssignment:
    """What the experiments decided for one page view.

    ``experiment_key`` / ``experiment_variant`` name the assignment that changed
    the page most (ranker first, then layout), for logs; exposures record every
    assignment in ``assignments``.
    """

    variant: str = "champion"
    layout: str = "default"
    assignments: list[dict[str, Any]] = field(default_factory=list)
    experiment_key: str = ""
    experiment_variant: str = ""


class ExperimentBridge:
    """Caches the store's definitions and assigns profiles to their variants."""

    def __init__(self, directory: Path, refresh_s: float = 5.0) -> None:
        self.store = ExperimentStore(directory)
        self.refresh_s = refresh_s
        self._cached: list[Experiment] = []
        self._loaded_at = float("-inf")
        #: The files the cached definitions were parsed from (``_files_signature``); None: parse again.
        self._parsed_from: tuple[tuple[str, int, int, int], ...] | None = None
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Forget the cache (after an admin change)."""
        with self._lock:
            self._loaded_at = float("-inf")
            self._parsed_from = None

    def _files_signature(self) -> tuple[tuple[str, int, int, int], ...] | None:
        """Name, inode, size and modification time of every definition file; None when they cannot be listed.

        The store replaces a file atomically (a new inode), so a write through it always
        changes the signature; so does any edit that changes the size or the time stamp.
        """
        try:
            if not self.store.directory.exists():
                return ()
            stats = [(p.name, os.stat(p)) for p in definition_files(self.store.directory)]
        except Exception:
            return None
        return tuple((name, st.st_ino, st.st_size, st.st_mtime_ns) for name, st in stats)

    def experiments(self) -> list[Experiment]:
        """Current definitions; on a read error, the last good ones."""
        with self._lock:
            if time.monotonic() - self._loaded_at < self.refresh_s:
                return self._cached
            signature = self._files_signature()
            if signature is not None and signature == self._parsed_from:
                self._loaded_at = time.monotonic()
                return self._cached
            try:
                self._cached = self.store.list()
                self._parsed_from = signature
            except Exception:
                logger.exception("reading experiments from %s failed; keeping the last good set", self.store.directory)
            self._loaded_at = time.monotonic()
            return self._cached

    def assign(
        self, *, unit_id: str, account_id: str, country: str, device: str, is_kids: bool, is_new: bool
    ) -> PageAssignment:
        """Assign the profile to the running experiments' variants and read their payloads."""
        try:
            context = AssignmentContext(
                unit_id=unit_id, country=country, device=device, is_kids=is_kids, is_new=is_new, account_id=account_id
            )
            assignments = assign(self.experiments(), context)
        except Exception:
            logger.exception("experiment assignment failed for %s; serving champion/default", unit_id)
            return PageAssignment()
        variant, layout = "champion", "default"
        key = arm = ""
        described = []
        for assignment in assignments:
            payload = dict(assignment.payload or {})
            described.append(
                {"experiment_key": assignment.experiment_key, "variant": assignment.variant, "payload": payload}
            )
            ranker = payload.get("ranker") or payload.get("model")
            if ranker in MODEL_ALIASES:
                variant = ranker
                key, arm = assignment.experiment_key, assignment.variant
            if payload.get("layout") in LAYOUTS:
                layout = payload["layout"]
                if not key:
                    key, arm = assignment.experiment_key, assignment.variant
        if not key and assignments:
            key, arm = assignments[0].experiment_key, assignments[0].variant
        return PageAssignment(variant, layout, described, key, arm)
