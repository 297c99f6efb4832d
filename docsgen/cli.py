"""The CLI reference, rendered from the Typer app: every command's ``--help``.

Typer ships its own copy of click (``typer._click``) whose classes change
between releases, so the tree is walked by attributes (``commands``) and each
command's text is what ``marquee ... --help`` prints, captured with Typer's
test runner at a fixed width and without colour.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import typer.main
from typer.testing import CliRunner

WIDTH = 100


def command_tree() -> Any:
    """The click command behind ``marquee`` (imports only the light command modules)."""
    from marquee.cli import app

    return typer.main.get_command(app)


def walk(command: Any, path: tuple[str, ...] = ("marquee",)) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group under ``command``, depth first, groups before their commands."""
    yield path, command
    commands = getattr(command, "commands", None)
    if isinstance(commands, dict):
        for name in sorted(commands):
            if not getattr(commands[name], "hidden", False):
                yield from walk(commands[name], (*path, name))


def command_paths() -> list[str]:
    """``marquee data load`` and so on: every command and group, as typed."""
    return [" ".join(path) for path, _ in walk(command_tree())]


def help_text(path: tuple[str, ...]) -> str:
    """What ``marquee <path> --help`` prints, without colour, at ``WIDTH`` columns."""
    from marquee.cli import app

    env = {"COLUMNS": str(WIDTH), "TERMINAL_WIDTH": str(WIDTH), "NO_COLOR": "1", "_TYPER_FORCE_DISABLE_TERMINAL": "1"}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        result = CliRunner().invoke(app, [*path[1:], "--help"], prog_name="marquee", env=env, color=False)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if result.exit_code != 0:
        raise RuntimeError(f"{' '.join(path)} --help exited {result.exit_code}: {result.output}")
    return "\n".join(line.rstrip() for line in result.output.strip("\n").splitlines())


def render() -> str:
    """The whole CLI reference as Markdown: one section per command with its ``--help``."""
    lines = [
        "# CLI reference",
        "",
        "Generated at build time from the Typer app (`marquee.cli:app`): each section is what",
        "`--help` prints for that command. Errors print one line and exit with code 2;",
        "`MARQUEE_DEBUG=1` shows the traceback of an internal error.",
        "",
    ]
    for path, command in walk(command_tree()):
        name = " ".join(path)
        level = "#" * min(len(path) + 1, 4)
        lines += [f"{level} `{name}`", ""]
        commands = getattr(command, "commands", None)
        if isinstance(commands, dict) and len(path) > 1:
            subs = ", ".join(f"[`{sub}`](#{'-'.join((*path, sub))})" for sub in sorted(commands))
            lines += [f"Commands: {subs}", ""]
        lines += ["```text", help_text(path), "```", ""]
    return "\n".join(lines) + "\n"
