"""No stale docs: the references cover the code, the tutorials run, the site builds.

* every CLI command and option, every route of the FastAPI app and every
  ``MARQUEE_*`` variable the code reads appear in the generated reference
  (enumerated here independently of ``docsgen``'s own walk);
* every code block titled ``runnable`` in ``docs/tutorials/*.md`` runs, in page
  order, in a fresh folder with its own workspace;
* ``mkdocs build --strict`` passes (no broken link, no page missing from the
  nav, notebooks executed) and the built pages load nothing from another site;
* the README stays short and its links point at files that exist.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from core.ports import free_ports

DOCS = REPO_ROOT / "docs"
TUTORIALS = sorted((DOCS / "tutorials").glob("*.md"))
FENCE = re.compile(r"^```(?P<lang>\w+)(?P<info>[^\n]*)\n(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL)


# --------------------------------------------------------------------------- references


def test_cli_reference_covers_every_command_and_option() -> None:
    import typer.main

    from docsgen import cli
    from marquee.cli import app

    page = cli.render()
    seen = 0

    def visit(command: object, path: tuple[str, ...]) -> None:
        nonlocal seen
        seen += 1
        assert f"`{' '.join(path)}`" in page, f"no section for {' '.join(path)}"
        for param in getattr(command, "params", []):
            for opt in getattr(param, "opts", []) if type(param).__name__.endswith("Option") else []:
                assert opt in page, f"{' '.join(path)}: option {opt} missing from the CLI reference"
        for name, sub in (getattr(command, "commands", None) or {}).items():
            visit(sub, (*path, name))

    visit(typer.main.get_command(app), ("marquee",))
    assert seen >= 20  # the groups and commands of today's CLI; a broken walk finds far fewer


def test_rest_reference_covers_every_route() -> None:
    from docsgen import openapi

    schema, routes = openapi.schema_and_routes()
    page = openapi.render(schema, routes)
    with_schema = 0
    for path, methods, in_schema in routes:
        if in_schema:
            for method in methods:
                if method in ("HEAD", "OPTIONS"):
                    continue
                with_schema += 1
                assert f"### `{method} {path}`" in page, f"{method} {path} missing from the REST reference"
        else:
            assert f"`{path}`" in page, f"{path} missing from the REST reference"
    assert with_schema >= 20
    # Every operation of the served schema is a route found above (the walk misses none).
    operations = sum(1 for item in schema["paths"].values() for method in item if method != "parameters")
    assert operations == with_schema


def test_settings_reference_covers_every_setting() -> None:
    from core.settings import Settings
    from docsgen import settings

    page = settings.render()
    prefix = Settings.model_config.get("env_prefix", "MARQUEE_")
    for name, field in Settings.model_fields.items():
        row = next((line for line in page.splitlines() if line.startswith(f"| `{prefix}{name}`".upper())), None)
        assert row is not None, f"{prefix}{name} missing from the settings reference"
        default = field.get_default(call_default_factory=True)
        if default is not None:
            assert str(default) in row, f"{prefix}{name}: default {default!r} not shown"
    # Every MARQUEE_* name in the packages' code, found by a plain scan here.
    names: set[str] = set()
    for package in settings.PACKAGES:
        for path in (REPO_ROOT / package).rglob("*.py"):
            names.update(re.findall(r"MARQUEE_[A-Z0-9_]+", path.read_text(encoding="utf-8")))
    missing = sorted(name for name in names if not name.endswith("_") and f"`{name}`" not in page)
    assert not missing, f"variables read by the code but missing from the settings reference: {missing}"


# --------------------------------------------------------------------------- tutorials


def runnable_blocks(page: Path) -> list[tuple[str, str]]:
    """The (language, code) of each block whose fence is titled ``runnable``, in page order."""
    blocks = []
    for match in FENCE.finditer(page.read_text(encoding="utf-8")):
        if re.search(r'title="runnable"', match.group("info")):
            blocks.append((match.group("lang"), match.group("body")))
    return blocks


def test_every_tutorial_has_runnable_blocks() -> None:
    assert {p.stem for p in TUTORIALS} >= {"data-scientist", "experimenter", "app-developer", "operator"}
    for page in TUTORIALS:
        if page.stem != "index":
            assert runnable_blocks(page), f"{page.name} has no runnable block"


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in TUTORIALS if p.stem != "index"], ids=lambda p: p.stem)
def test_tutorial_runnable_blocks_run(page: Path, tmp_path: Path) -> None:
    bin_dir = str(Path(sys.executable).parent)
    port, model_port = free_ports(2)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(REPO_ROOT),
        "MARQUEE_HOME": str(tmp_path / ".marquee"),
        "OPENBLAS_NUM_THREADS": "1",
        "PORT": str(port),
        "MODEL_PORT": str(model_port),
        "REPO": str(REPO_ROOT),
    }
    for key in ("MARQUEE_DATABASE_URL", "MARQUEE_MLFLOW_TRACKING_URI", "MARQUEE_EXPERIMENTS_DIR"):
        env.pop(key, None)
    try:
        for i, (lang, code) in enumerate(runnable_blocks(page), start=1):
            if lang in ("bash", "sh", "console"):
                command = ["bash", "-euo", "pipefail", "-c", code]
            elif lang == "python":
                command = [sys.executable, "-c", code]
            else:
                pytest.fail(f"{page.name} block {i}: runnable blocks must be bash or python, not {lang}")
            result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, (
                f"{page.name}, runnable block {i} exited {result.returncode}:\n{code}\n"
                f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
            )
    finally:
        # A tutorial that starts a server records its pid in <name>.pid and stops it in its last block;
        # when a block failed before that, stop it here.
        for pid_file in tmp_path.glob("*.pid"):
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)


# --------------------------------------------------------------------------- the site


EXTERNAL_ASSET = re.compile(
    r"""<(?:script|link|img|iframe|source|video|audio|embed)\b[^>]*?\b(?:src|href)\s*=\s*["'](?:https?:)?//"""
    r"""|url\(\s*["']?(?:https?:)?//|import\(\s*["'](?:https?:)?//""",
    re.IGNORECASE,
)


@pytest.mark.slow
def test_site_builds_strict_and_loads_nothing_from_outside(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "NO_MKDOCS_2_WARNING": "1", "OPENBLAS_NUM_THREADS": "1"}
    env.pop("MARQUEE_HOME", None)
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or "mkdocs"
    result = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(site)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-5000:]}"
    pages = list(site.rglob("*.html"))
    for expected in ("reference/cli", "reference/rest-api", "reference/settings", "results/benchmarks"):
        assert (site / expected / "index.html").exists(), f"{expected} was not generated"
    for notebook in (REPO_ROOT / "notebooks").glob("*.ipynb"):
        html = (site / "notebooks" / notebook.stem / "index.html").read_text(encoding="utf-8")
        assert "jp-OutputArea-output" in html, f"{notebook.name} rendered without outputs"
    offenders = []
    for page in pages + list(site.rglob("*.css")):
        text = page.read_text(encoding="utf-8", errors="replace")
        for match in EXTERNAL_ASSET.finditer(text):
            offenders.append(f"{page.relative_to(site)}: {text[match.start() : match.start() + 120]}")
    assert not offenders, "pages load assets from another site:\n" + "\n".join(offenders[:20])


# --------------------------------------------------------------------------- README


def test_readme_is_short_and_its_links_resolve() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 160
    first_block = readme[readme.index("```") : readme.index("```") + 200]
    assert "make demo" in first_block and "make test" in first_block, "the two commands come first"
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme):
        if "://" in target:
            continue
        assert (REPO_ROOT / target).exists(), f"README links to {target}, which does not exist"
