"""The notebooks in ``notebooks/`` run top to bottom on small data, and are committed clean.

Each notebook is executed with nbclient in a fresh temporary workspace
(``MARQUEE_HOME``), exactly as a data scientist would run it; any cell error
fails the test. The kernel is a ``python3`` kernel spec written for the test that
runs ``sys.executable -m ipykernel_launcher``: the interpreter running pytest, so
a fresh virtualenv with ipykernel installed is all it needs, and a user-level
``python3`` kernel pointing at another Python cannot be picked up instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = {"01_quickstart", "02_feature_exploration", "03_experiment_analysis"}
CELL_TIMEOUT_S = 300


def _kernel_spec_dir(root: Path) -> Path:
    """A Jupyter data dir whose ``python3`` kernel is this interpreter; put it first on ``JUPYTER_PATH``."""
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Python 3 (marquee tests)", "language": "python"})
    )
    return root


def _snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if ".ipynb_checkpoints" not in p.parts}


def test_the_three_walkthroughs_are_there() -> None:
    assert {p.stem for p in NOTEBOOKS} == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [
        i
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; strip them before committing"
    assert notebook.cells[0].cell_type == "markdown", "a notebook opens with a markdown cell saying what it shows"
    source = "\n".join(cell.source for cell in notebook.cells)
    assert "MARQUEE_HOME" in source, "the workspace must come from MARQUEE_HOME (or a temp dir), never the repo"
    assert "/work/" not in source and "/home/" not in source, "no machine-specific absolute paths in notebooks"


def test_notebooks_pass_ruff() -> None:
    """The repo's lint config skips notebooks; their code is still held to the same rules."""
    paths = [str(p) for p in NOTEBOOKS]
    check = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--output-format", "concise", *paths],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_without_errors(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    monkeypatch.setenv("MARQUEE_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("JUPYTER_PATH", str(_kernel_spec_dir(tmp_path / "jupyter")))
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    # A model server or tracking server configured in the caller's shell must not leak in.
    for name in ("MARQUEE_MLFLOW_TRACKING_URI", "MARQUEE_DATABASE_URL", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    before = _snapshot(REPO_ROOT / "notebooks")

    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error

    assert _snapshot(REPO_ROOT / "notebooks") == before, "the notebook wrote files into the repository"
    images = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    assert images, f"{path.name} should draw at least one plot"
    assert os.listdir(tmp_path / "ws"), "the notebook should work inside the MARQUEE_HOME workspace"
