"""The model server's settings, read from the environment into one frozen object.

One owner for every ``MARQUEE_SERVING_*`` variable the service reads: their
names, defaults and parsing. ``serving.service`` builds it twice, for two
different moments: at import, for what BentoML takes from the class decorator
(timeout, concurrency, workers, access log: BentoML reads them before any
instance exists), and in each worker's ``__init__`` at start-up, for what the
worker itself uses (polling, candidates, online features, memo), so a test or a
launcher that sets the environment before starting a worker is obeyed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

_FALSE = ("0", "false", "no")
_TRUE = ("1", "true", "yes")


@dataclass(frozen=True)
class ServingOptions:
    """What one model-server deployable runs with (see the variable names in ``from_environ``)."""

    #: ``MARQUEE_SERVING_TIMEOUT_S``: per-request timeout; the API falls back instead of waiting longer.
    timeout_s: float = 0.5
    #: ``MARQUEE_SERVING_MAX_CONCURRENCY``: requests in flight before BentoML answers 503 at once.
    max_concurrency: int = 64
    #: ``MARQUEE_SERVING_WORKERS``: worker processes, one per core.
    workers: int = 2
    #: ``MARQUEE_SERVING_ACCESS_LOG``: BentoML's per-request access log (off: a line costs a share of a request).
    access_log: bool = False
    #: ``MARQUEE_SERVING_POLL_S``: seconds between polls of the registry aliases.
    poll_s: float = 5.0
    #: ``MARQUEE_SERVING_CANDIDATES``: candidates per generator (the bundle's ``candidate_k`` wins).
    n_candidates: int = 100
    #: ``MARQUEE_SERVING_ONLINE_FEATURES``: read online title features for the ranker.
    online_features: bool = True
    #: ``MARQUEE_SERVING_MEMO_S``: how long ranked candidates are remembered per viewer context (None: default).
    memo_s: float | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ServingOptions:
        """The options the environment sets, defaults elsewhere; a malformed value is a clear ``ValueError``."""
        env = os.environ if environ is None else environ

        def number(name: str, default: float, kind: type[int] | type[float]) -> float:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                return kind(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a {kind.__name__}") from None

        memo = env.get("MARQUEE_SERVING_MEMO_S")
        return cls(
            timeout_s=float(number("MARQUEE_SERVING_TIMEOUT_S", cls.timeout_s, float)),
            max_concurrency=int(number("MARQUEE_SERVING_MAX_CONCURRENCY", cls.max_concurrency, int)),
            workers=int(number("MARQUEE_SERVING_WORKERS", cls.workers, int)),
            access_log=env.get("MARQUEE_SERVING_ACCESS_LOG", "0").lower() in _TRUE,
            poll_s=float(number("MARQUEE_SERVING_POLL_S", cls.poll_s, float)),
            n_candidates=int(number("MARQUEE_SERVING_CANDIDATES", cls.n_candidates, int)),
            online_features=env.get("MARQUEE_SERVING_ONLINE_FEATURES", "1").lower() not in _FALSE,
            memo_s=float(number("MARQUEE_SERVING_MEMO_S", 0.0, float)) if memo else None,
        )
