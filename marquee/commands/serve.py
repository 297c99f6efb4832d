"""`marquee serve api|models|edge`: start the API (uvicorn), the model server (bentoml serve) or the media edges."""

from __future__ import annotations

import typer

from marquee.commands import serve_api, serve_edge, serve_models


def register(app: typer.Typer) -> None:
    """Add the ``serve`` group with its ``api`` and ``models`` commands."""
    group = typer.Typer(help="Start Marquee's servers.", no_args_is_help=True)
    serve_api.register(group)
    serve_models.register(group)
    serve_edge.register(group)
    app.add_typer(group, name="serve")
