"""PostgreSQL connection loss under load: 503 with Retry-After, recovery without a restart, nothing lost.

The shared PostgreSQL server may not be restarted, so a restart is simulated
the way clients see one: every backend connection of this API (found by its
``application_name``) is terminated with ``pg_terminate_backend``, again and
again for the length of the outage, while clients post events with retries
and read their history.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import pytest
from sqlalchemy import create_engine, text

from tests.api.backends import pg_schema

from .load import ApiProcess, events_in_database, run_load, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 3.0
LOAD_S = 10.0
RATE = 40.0


def test_connection_loss_answers_503_and_loses_nothing(postgres_url: str, workspace_env: dict[str, str]) -> None:
    app_name = f"marquee_fault_{uuid.uuid4().hex[:8]}"
    with pg_schema(postgres_url, "marquee_fault") as schema:
        env = {**workspace_env, "MARQUEE_DATABASE_URL": f"{postgres_url}?application_name={app_name}"}
        api = ApiProcess(env, schema)
        api.start()
        admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        try:
            headers, profile = sign_in(api.url)
            window: dict[str, float] = {}

            def outage() -> None:
                time.sleep(3.0)
                window["start"] = time.monotonic()
                killed = 0
                with admin.connect() as connection:
                    while time.monotonic() - window["start"] < OUTAGE_S:
                        killed += len(
                            connection.execute(
                                text(
                                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :a"
                                ),
                                {"a": app_name},
                            ).all()
                        )
                        time.sleep(0.05)
                window["end"] = time.monotonic()
                window["killed"] = killed

            fault = threading.Thread(target=outage)
            fault.start()
            result = run_load(lambda: api.url, headers, profile, LOAD_S, RATE)
            fault.join()
            statuses = Counter(a.status for a in result.answers)
            print(
                f"\npostgres connection loss: {len(result.answers)} answers {dict(statuses)}, "
                f"{window['killed']} backends terminated, recovery {result.recovered_after(window['end'])}"
            )
            assert window["killed"] > 0, "the fault hit nothing"
            assert result.server_errors == [], Counter(a.status for a in result.server_errors)
            assert all(a.retry_after for a in result.answers if a.status == 503)
            assert result.recovered_after(window["end"]) is not None  # reads succeed again, same process
            target = create_engine(postgres_url, connect_args={"options": f"-csearch_path={schema}"})
            stored = events_in_database(target)
            target.dispose()
            assert result.acknowledged and result.acknowledged <= set(stored)  # nothing acknowledged is lost
            assert len(stored) == len(set(stored))  # and nothing is stored twice
        finally:
            api.stop()
            admin.dispose()
