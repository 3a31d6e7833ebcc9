"""Reliability: same figures every run, concurrent runs sharing a build folder, warm re-runs, no network at all.

These execute real notebooks through the course runner (each in a fresh kernel), so they take a few minutes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from hubhelpers import results as R
from hubhelpers.tooling.conventions import scan_outputs

ROOT = Path(__file__).resolve().parents[1]
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
FAKE_TOKEN = "hf_" + "FakeTokenForTheLeakTest" * 2
# cheap notebooks whose figures depend on the model, the world and sampling: what determinism must cover
REPEATED = ("03", "04")
# notebooks that keep files in the build folder between runs (a vector store, an emissions log): run twice below
STATEFUL = {"10": ("rag/chroma",), "16": ("codecarbon/emissions.csv",)}
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# notebooks whose effects come from the world's data (a model trained here, encoders): they take WORLD_SEED.
# The others measure what the shipped model knows, so their world is the one it was trained on (its card).
WORLD_SEEDED = ("02", "13", "15")


def _runner(build: Path, *only: str) -> list[str]:
    return [sys.executable, "-m", "hubhelpers.tooling.course", "--only", *only, "--build-dir", str(build)]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBHELPERS_")}
    env.update(MPLBACKEND="Agg", **extra)
    return env


def _injected(build: Path, name: str) -> str:
    """The source of the cell papermill injected into the executed notebook `name` ('' when there is none)."""
    nb = nbformat.read(build / "executed" / f"{name}.ipynb", as_version=4)
    return next((c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])), "")


def _figures(build: Path) -> dict:
    return R.comparable_figures(R.load_results(build))


def test_concurrent_runs_then_a_warm_rerun_give_identical_figures(tmp_path):
    """Two notebooks at once sharing one build folder, then both again (warm): the same figures, nothing lost."""
    build = tmp_path / "build"
    procs = [subprocess.Popen(_runner(build, nb), cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for nb in REPEATED]
    outputs = [proc.communicate(timeout=900)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], "\n".join(outputs)
    first = _figures(build)
    assert len(first) == len(REPEATED) and all(len(figs) >= 3 for figs in first.values())

    again = subprocess.run(_runner(build, *REPEATED), cwd=ROOT, env=_env(), capture_output=True, text=True,
                           timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert _figures(build) == first


def _keeps_files(path: Path) -> bool:
    """Whether a notebook writes below its build folder (any use of build_dir other than displaying a path)."""
    nb = nbformat.read(path, as_version=4)
    return any("build_dir" in line and "display_path(" not in line
               for cell in nb.cells if cell.cell_type == "code" for line in cell.source.splitlines())


def test_the_stateful_list_names_every_notebook_that_keeps_files():
    """Every other notebook keeps nothing but its results record, so a second run of it is a fresh run."""
    assert {p.name[:2] for p in NOTEBOOKS if _keeps_files(p)} == set(STATEFUL)


def test_stateful_notebooks_run_twice_in_a_row_reuse_their_files_and_give_identical_figures(tmp_path):
    """10 (Chroma store) and 16 (CodeCarbon log) on a clean build folder, then again: same figures, no duplicates."""
    build = tmp_path / "build"
    figures = []
    for _ in range(2):
        run = subprocess.run(_runner(build, *STATEFUL), cwd=ROOT, env=_env(), capture_output=True, text=True,
                             timeout=900)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        figures.append(_figures(build))
        for notebook, kept in STATEFUL.items():
            assert all((build / rel).exists() for rel in kept), (notebook, sorted(build.rglob("*")))
    changed = {(nb, k): (v, figures[1].get(nb, {}).get(k)) for nb, figs in figures[0].items() for k, v in figs.items()
               if figures[1].get(nb, {}).get(k) != v}
    assert not changed and len(figures[0]) == len(STATEFUL), changed  # incl. store_records: no duplicates
    rows = (build / "codecarbon" / "emissions.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2, rows  # a header and one row per run: a log of runs, nothing written twice


def _declares(path: Path, name: str) -> bool:
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    return any(line.startswith(f"{name}:") for line in cell.source.splitlines())


def test_world_seed_is_a_parameter_exactly_where_the_world_is_not_the_shipped_models():
    assert {p.name[:2] for p in NOTEBOOKS if _declares(p, "WORLD_SEED")} == set(WORLD_SEEDED)


def test_world_dependent_effects_hold_in_another_world(tmp_path):
    """02, 13 and 15 in the world of seed 1 (other people, other facts) with sampling seed 1: every band holds."""
    build = tmp_path / "build"
    run = subprocess.run([*_runner(build, *WORLD_SEEDED), "-p", "WORLD_SEED", "1", "-p", "SEED", "1"], cwd=ROOT,
                         env=_env(), capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    bands = R.load_bands(build)
    assert len(bands) == len(WORLD_SEEDED) and all(b["passed"] for figs in bands.values() for b in figs.values())
    for path in NOTEBOOKS:
        if path.name[:2] in WORLD_SEEDED:
            assert "WORLD_SEED = 1" in _injected(build, path.stem)


@pytest.fixture(scope="module")
def netns():
    """A command prefix that runs in a fresh network namespace with only loopback up (no route anywhere)."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.fail("this test needs `unshare` and `ip` (util-linux, iproute2) to cut the network for real")
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(f"cannot create a network namespace here: {probe.stderr.strip()}")
    return lambda cmd: ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *cmd]


def test_course_runs_with_the_network_unreachable_and_leaks_nothing(netns, tmp_path):
    """No offline switches, an empty hub cache, no network: 00 and 01 still pass; outputs hold no token or path."""
    build = tmp_path / "build"
    env = {k: v for k, v in _env(HF_HOME=str(tmp_path / "hf"), HF_TOKEN=FAKE_TOKEN).items()
           if k not in OFFLINE_VARS}
    run = subprocess.run(netns(_runner(build, "00", "01")), cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for name in ("00_start_here", "01_lm_probability"):
        nb = nbformat.read(build / "executed" / f"{name}.ipynb", as_version=4)
        assert scan_outputs(nb, secrets=(FAKE_TOKEN,)) == [], name


def test_uncached_hub_id_fails_fast_and_clearly_without_network(netns, tmp_path):
    code = ("from hubhelpers.models import load_model\n"
            "try:\n    load_model('no-such-org/no-such-model-xyz')\n"
            "except FileNotFoundError as err:\n    print('CLEAR', err)\n")
    env = {k: v for k, v in _env(HF_HOME=str(tmp_path / "hf")).items() if k not in OFFLINE_VARS}
    start = time.perf_counter()
    run = subprocess.run(netns([sys.executable, "-c", code]), cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert time.perf_counter() - start < 120, "an unreachable hub must fail, not hang"
    assert run.returncode == 0 and "CLEAR" in run.stdout, run.stdout + run.stderr
    assert "no-such-org/no-such-model-xyz" in run.stdout and "Accepted: 'tinyworld'" in run.stdout


def test_non_default_parameters_through_papermill(tmp_path):
    """Another seed and other sizes, passed with -p as a learner would: the lessons' effects still hold."""
    build = tmp_path / "build"
    for only, params in (("00", ["-p", "SEED", "1"]), ("04", ["-p", "SEED", "1", "-p", "N_ITEMS", "40"])):
        run = subprocess.run([*_runner(build, only), *params], cwd=ROOT, env=_env(), capture_output=True,
                             text=True, timeout=900)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for name in ("00_start_here", "04_few_shot_learning"):
        assert "SEED = 1" in _injected(build, name)
