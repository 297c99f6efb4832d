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
    def from_environ(cls, env: Mapping[str, str] | None = None) -> ServingOptions:
        """The options the environment sets, defaults elsewhere; a malformed value is a clear ``ValueError``.

        Each variable is read with its default written out once, here (the settings
        reference, ``docsgen.settings``, finds them by these reads).
        """
        environ = os.environ if env is None else env
        memo = environ.get("MARQUEE_SERVING_MEMO_S")
        return cls(
            timeout_s=_number("MARQUEE_SERVING_TIMEOUT_S", environ.get("MARQUEE_SERVING_TIMEOUT_S", "0.5"), float),
            max_concurrency=int(
                _number("MARQUEE_SERVING_MAX_CONCURRENCY", environ.get("MARQUEE_SERVING_MAX_CONCURRENCY", "64"), int)
            ),
            workers=int(_number("MARQUEE_SERVING_WORKERS", environ.get("MARQUEE_SERVING_WORKERS", "2"), int)),
            access_log=environ.get("MARQUEE_SERVING_ACCESS_LOG", "0").lower() in _TRUE,
            poll_s=_number("MARQUEE_SERVING_POLL_S", environ.get("MARQUEE_SERVING_POLL_S", "5"), float),
            n_candidates=int(
                _number("MARQUEE_SERVING_CANDIDATES", environ.get("MARQUEE_SERVING_CANDIDATES", "100"), int)
            ),
            online_features=environ.get("MARQUEE_SERVING_ONLINE_FEATURES", "1").lower() not in _FALSE,
            memo_s=_number("MARQUEE_SERVING_MEMO_S", memo, float) if memo else None,
        )


def _number(name: str, raw: str, kind: type[int] | type[float]) -> float:
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a {kind.__name__}") from None
