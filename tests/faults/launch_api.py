"""Start one catalog API process for a fault test: ``python -m tests.faults.launch_api PORT [SCHEMA]``.

Settings come from the environment (``MARQUEE_HOME``, ``MARQUEE_DATABASE_URL``,
``MARQUEE_RATE_LIMIT_URL``...), like ``marquee serve api``; the optional
PostgreSQL schema isolates the run in the shared test database.
"""

from __future__ import annotations

import sys

import uvicorn

from catalog_api.app import create_app
from catalog_api.options import ApiOptions
from core.settings import Settings


def main() -> None:
    port = int(sys.argv[1])
    schema = sys.argv[2] if len(sys.argv) > 2 else None
    options = ApiOptions(row_size=6, account_limit=10**6, client_limit=10**6, login_limit=5)
    app = create_app(Settings(), options, db_schema=schema)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, proxy_headers=False)


if __name__ == "__main__":
    main()
