"""`marquee serve edge`: the nginx origin and regional edges in front of the packaged media."""

from __future__ import annotations

import signal
from typing import Annotated

import typer


def register(group: typer.Typer) -> None:
    """Add `edge` to the `serve` group."""

    @group.command("edge")
    def serve_edge(
        edges: Annotated[
            list[str] | None, typer.Option("--edge", help="edge names (repeatable); default us-east and eu-west")
        ] = None,
        origin_port: Annotated[int, typer.Option(help="origin port (0: any free one)", min=0, max=65535)] = 8080,
        edge_port: Annotated[
            list[int] | None, typer.Option(help="edge ports in --edge order (repeatable; default 8081, 8082, …)")
        ] = None,
        cors_origin: Annotated[
            list[str] | None, typer.Option(help="web origins allowed to fetch media (repeatable; default any)")
        ] = None,
    ) -> None:
        """Start the origin and the edges (nginx, cache, signature checks) until Ctrl-C or SIGTERM.

        The running edges are published to the workspace (run/edges.json), where the API
        finds them; the API health-checks them every second.
        """
        import threading

        from marquee.commands._common import load_settings
        from media.edge import build_cluster
        from media.library import EDGES_FILE, write_edges

        settings = load_settings()
        names = tuple(edges or ("us-east", "eu-west"))
        ports = tuple(edge_port or (range(origin_port + 1, origin_port + 1 + len(names)) if origin_port else ()))
        cluster = build_cluster(
            settings.workspace.media_dir,
            settings.workspace.run_dir / "nginx",
            settings.cdn_signing_key,
            names,
            origin_port=origin_port,
            edge_ports=ports,
            cors_origins=tuple(cors_origin or ("*",)),
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        edges_file = settings.workspace.run_dir / EDGES_FILE
        with cluster:
            write_edges(edges_file, cluster.records(), cluster.origin.url)
            typer.echo(f"origin {cluster.origin.url} (media {settings.workspace.media_dir})")
            for record in cluster.records():
                typer.echo(f"edge {record.name} {record.base_url} regions {','.join(record.regions) or '-'}")
            reported: set[str] = set()
            try:
                while not stop.wait(1.0):
                    for server in (cluster.origin, *cluster.edges):
                        stopped = server.process is not None and server.process.poll() is not None
                        if stopped and server.name not in reported:
                            reported.add(server.name)
                            typer.echo(f"nginx {server.name} stopped; see {server.folder / 'logs'}", err=True)
            except KeyboardInterrupt:
                pass
            finally:
                edges_file.unlink(missing_ok=True)
