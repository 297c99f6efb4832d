"""Start a catalog API for the model-server fault test: ``python -m tests.faults.launch_home_api PORT``.

Like ``launch_api`` (settings from the environment), with the home page's
fault-handling knobs turned down so a one-minute test sees them all: the
candidate cache keeps an answer fresh for about a second and serves it stale
for a minute, the breaker opens after 3 failures and probes after 1.5 s.
"""

from __future__ import annotations

import sys

import uvicorn

from catalog_api.app import create_app
from catalog_api.options import ApiOptions
from core.settings import Settings

OPTIONS = ApiOptions(
    row_size=3,
    account_limit=10**6,
    client_limit=10**6,
    candidate_ttl_s=1.0,
    candidate_stale_s=60.0,
    breaker_failures=3,
    breaker_cooldown_s=1.5,
)


def main() -> None:
    port = int(sys.argv[1])
    app = create_app(Settings(), OPTIONS)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, proxy_headers=False)


if __name__ == "__main__":
    main()
