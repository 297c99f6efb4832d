"""The API process SIGKILLed while clients post events with retries (SQLite, the default database).

Every event that got a 2xx must be in the database after the restart and in
the lake after the export, exactly once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from catalog_api.app import create_app, export_events_now
from catalog_api.options import ApiOptions
from core.lake import Lake
from core.settings import Settings

from .load import ApiProcess, events_in_database, run_load, sign_in

pytestmark = pytest.mark.slow


def test_sigkill_loses_no_acknowledged_event(settings: Settings, workspace_env: dict[str, str]) -> None:
    api = ApiProcess(workspace_env)
    api.start()
    current = {"url": api.url}
    try:
        headers, profile = sign_in(api.url)
        window: dict[str, float] = {}

        def fault() -> None:
            time.sleep(3.0)
            window["start"] = time.monotonic()
            api.kill()
            api.start()  # same port, same workspace
            window["end"] = time.monotonic()

        killer = threading.Thread(target=fault)
        killer.start()
        result = run_load(lambda: current["url"], headers, profile, 25.0, 30.0)
        killer.join()
    finally:
        api.stop()
    print(
        f"\nAPI SIGKILL: {len(result.answers)} answers {dict(Counter(a.status for a in result.answers))}, "
        f"restart took {window['end'] - window['start']:.1f} s, recovery {result.recovered_after(window['end'])}"
    )
    assert result.server_errors == []
    assert result.recovered_after(window["end"]) is not None  # the restarted process serves again
    app_state = create_app(settings, ApiOptions()).state.marquee
    stored = events_in_database(app_state.engine)
    assert result.acknowledged and result.acknowledged <= set(stored)  # every 2xx is on disk
    assert len(stored) == len(set(stored))  # retries stored once
    export_events_now(app_state)
    lake_ids = list(Lake(settings.workspace.lake_dir).read("watch_events")["event_id"])
    assert result.acknowledged <= set(lake_ids) and len(lake_ids) == len(set(lake_ids))
    app_state.engine.dispose()
