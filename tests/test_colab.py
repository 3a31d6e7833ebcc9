"""The Colab path, simulated: inside Colab each setup cell installs the course; elsewhere it does nothing."""

import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from hubhelpers.tooling.conventions import colab_cell_indices, load_course_config

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _colab_cell(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return nb.cells[colab_cell_indices(nb)[0]].source


@pytest.fixture()
def pip_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)))
    return calls


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_inside_colab_the_setup_cell_installs_the_course(path, pip_calls, monkeypatch):
    config = load_course_config(ROOT)
    colab = types.ModuleType("google.colab")
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    exec(_colab_cell(path), {})
    assert pip_calls == [([sys.executable, "-m", "pip", "install", "-q",
                           f"llm-hub @ git+{config.repo}@{config.branch}"], {"check": True})]


@pytest.mark.parametrize("path", NOTEBOOKS[:2], ids=lambda p: p.stem)
def test_outside_colab_the_setup_cell_does_nothing(path, pip_calls, monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(_colab_cell(path), {})
    assert pip_calls == []
