"""`marquee consume NAME`: run one of the event stream's durable consumers on its own.

With ``MARQUEE_EVENT_BUS`` set, ``marquee serve api`` runs the lake writer and the
online push beside the API; run them here instead to scale or restart them
apart from the API (several ``consume lake-writer`` processes share the one
durable consumer and split its messages). The popularity refresh runs inside
every API process (each holds its own table), so it is not offered here.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from core.bus import ConsumerSpec, Handler
    from core.settings import Settings

logger = logging.getLogger(__name__)


class ConsumerName(StrEnum):
    """The consumers a process may run on its own."""

    LAKE_WRITER = "lake-writer"
    ONLINE_PUSH = "online-push"


def build_consumer(settings: Settings, name: ConsumerName) -> tuple[ConsumerSpec, Handler]:
    """The durable spec and the handler of consumer ``name`` on ``settings``' workspace."""
    from core.lake import Lake

    lake = Lake.from_settings(settings)
    if name is ConsumerName.LAKE_WRITER:
        from catalog_api.bus_lake_writer import LAKE_WRITER, LakeWriter

        return LAKE_WRITER, LakeWriter(lake)
    from features.bus_push import ONLINE_PUSH, OnlinePush
    from features.pipelines import read_manifest
    from features.store import open_store

    read_manifest(settings.workspace.feast_dir)  # NotFoundError says to build the feature tables first
    return ONLINE_PUSH, OnlinePush(open_store(settings), lake)


def start_in_background(settings: Settings, names: list[ConsumerName]) -> threading.Event:
    """Run consumers in a daemon thread of this process (``marquee serve api``); set the event to stop them."""
    from core.bus import Topology, run_consumer_forever

    assert settings.event_bus is not None
    stop = threading.Event()
    consumers = []
    for name in names:
        try:
            consumers.append(build_consumer(settings, name))
        except Exception as error:
            logger.warning("consumer %s not started: %s", name.value, error)

    async def main() -> None:
        loop_stop = asyncio.Event()
        topology = Topology(settings.event_bus_prefix)
        assert settings.event_bus is not None
        tasks = [
            asyncio.create_task(run_consumer_forever(settings.event_bus, topology, spec, handler, loop_stop))
            for spec, handler in consumers
        ]
        await asyncio.to_thread(stop.wait)
        loop_stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    threading.Thread(target=asyncio.run, args=(main(),), name="event-consumers", daemon=True).start()
    return stop


def register(app: typer.Typer) -> None:
    """Add `consume` to the CLI."""

    @app.command("consume")
    def consume(
        name: Annotated[ConsumerName, typer.Argument(help="the consumer to run")],
        batch: Annotated[int | None, typer.Option(help="messages per batch (default: the consumer's)", min=1)] = None,
        ack_wait: Annotated[
            float | None, typer.Option(help="seconds before an unacked message is redelivered", min=0.5)
        ] = None,
        until_idle: Annotated[
            bool, typer.Option("--until-idle", help="stop once nothing is pending (backfills, benchmarks)")
        ] = False,
    ) -> None:
        """Run one durable consumer of the event stream (needs MARQUEE_EVENT_BUS) until stopped."""
        import dataclasses

        from core.bus import Topology, run_consumer
        from core.errors import ConfigurationError
        from marquee.commands._common import load_settings

        settings = load_settings()
        if not settings.event_bus:
            raise ConfigurationError("set MARQUEE_EVENT_BUS=nats://host:4222 to run a consumer of the event stream")
        spec, handler = build_consumer(settings, name)
        changes: dict[str, object] = {}
        if batch is not None:
            changes["batch"] = batch
        if ack_wait is not None:
            changes["ack_wait_s"] = ack_wait
        spec = dataclasses.replace(spec, **changes)  # type: ignore[arg-type]

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            assert settings.event_bus is not None
            topology = Topology(settings.event_bus_prefix)
            typer.echo(f"consumer {spec.name} on {settings.event_bus} (stream {topology.stream})")
            stats = await run_consumer(settings.event_bus, topology, spec, handler, stop, until_idle=until_idle)
            typer.echo(f"consumer {spec.name}: {stats.handled} handled, {stats.quarantined} quarantined")

        asyncio.run(main())
