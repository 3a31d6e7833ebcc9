"""The lock and the next release (hubhelpers.tooling.releases): pins, install commands, drift between two runs."""

import json
import sys
from pathlib import Path

import pytest

from hubhelpers import results as R
from hubhelpers.tooling import releases

FREEZE = "accelerate==1.15.0\nllm-hub==0.1.0\nTyping_Extensions==4.12.2\ntorch==2.13.0+cpu\ntransformers==5.24.0\n"


def test_parse_pins_canonical_names_no_local_tag():
    pins = releases.parse_pins("# header\nTyping_Extensions==4.12.2  # why\ntorch==2.13.0+cpu\n-e /work/x\n")
    assert pins == {"typing-extensions": "4.12.2", "torch": "2.13.0"}


def test_lock_text_keeps_order_drops_project_and_cpu_tag():
    text = releases.lock_text(FREEZE)
    lines = text.splitlines()
    assert lines[0].startswith("# Exact versions") and "torch==2.13.0" in lines[1]
    assert lines[2:] == ["accelerate==1.15.0", "Typing_Extensions==4.12.2", "torch==2.13.0", "transformers==5.24.0"]


def test_lock_text_of_this_environment_matches_the_committed_lock():
    root = R.find_project_root()
    committed = (root / releases.LOCK_FILE).read_text(encoding="utf-8")
    here = releases.parse_pins(releases.lock_text(releases.freeze(Path(sys.executable))))
    assert {n: here.get(n) for n in ("transformers", "trl", "peft", "torch")} == \
        {n: releases.parse_pins(committed)[n] for n in ("transformers", "trl", "peft", "torch")}


def test_version_rows_field_libraries_first_then_only_changed_others():
    lock = {"transformers": "5.24.0", "torch": "2.13.0", "numpy": "2.3.0", "six": "1.16.0"}
    latest = {"transformers": "5.25.0", "torch": "2.13.0", "numpy": "2.4.0", "six": "1.16.0", "new-dep": "1.0"}
    rows = releases.version_rows(lock, latest)
    by_name = {r["package"]: r for r in rows}
    assert rows[0]["package"] == "transformers" and by_name["transformers"]["changed"]
    assert not by_name["torch"]["changed"] and by_name["torch"]["field"]
    assert by_name["numpy"]["changed"] and not by_name["numpy"]["field"]
    assert by_name["new-dep"] == {"package": "new-dep", "lock": None, "latest": "1.0", "field": False, "changed": True,
                                  "published": None, "why_not": None}
    assert "six" not in by_name
    assert [r["package"] for r in rows if not r["field"]] == ["new-dep", "numpy"]
    published = {"langchain-core": {"published": "1.8.4", "why_not": "needs langchain-protocol>=0.0.22"}}
    core = next(r for r in releases.version_rows({}, {"langchain-core": "1.8.3"}, published)
                if r["package"] == "langchain-core")
    assert core["published"] == "1.8.4" and core["why_not"].startswith("needs")
    text = releases.render_drift([core], {}, [], {}, have_spread=True)
    assert "- langchain-core 1.8.4: needs langchain-protocol>=0.0.22" in text


def test_published_version_parses_pip_index(monkeypatch):
    class Done:
        stdout = "transformers (5.25.0)\nAvailable versions: 5.25.0, 5.24.0\n"
        stderr = ""
        returncode = 0

    monkeypatch.setattr(releases.subprocess, "run", lambda *a, **k: Done())
    assert releases.published_version(Path("python"), "transformers") == "5.25.0"
    assert releases.published_version(Path("python"), "peft") is None
    Done.stderr = "ERROR: Could not find a version that satisfies the requirement x>=2\n"
    assert releases.why_not_installable(Path("python"), "x", "2") == \
        "Could not find a version that satisfies the requirement x>=2"


def test_install_commands_hold_torch_and_upgrade_eagerly(tmp_path):
    venv = tmp_path / "venv"
    cmds = releases.install_commands(venv, tmp_path / "project", "2.13.0", base_python="/usr/bin/python3")
    assert cmds[0] == ["/usr/bin/python3", "-m", "venv", str(venv)]
    assert [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "torch==2.13.0"] in cmds
    upgrade = cmds[-1]
    assert upgrade[upgrade.index("--upgrade-strategy") + 1] == "eager"
    assert cmds[-2][-1] == "torch==2.13.0" and str(releases.constraint_file(venv)) in upgrade
    assert f"{tmp_path / 'project'}[course,dev]" in upgrade
    assert set(releases.FIELD_LIBRARIES) <= set(upgrade)
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    again = releases.install_commands(venv, tmp_path / "project", "2.13.0", base_python="/usr/bin/python3")
    assert again[0][0] != "/usr/bin/python3" and len(again) == len(cmds) - 1


def test_install_holds_torch_by_a_constraint_written_after_torch_is_in(tmp_path, monkeypatch):
    venv, lock, seen = tmp_path / "venv", tmp_path / "requirements.lock", []
    lock.write_text("torch==2.13.0\ntransformers==5.24.0\n")

    class Done:
        returncode = 0

    def run(cmd, *args, **kwargs):
        seen.append((cmd[-1], releases.constraint_file(venv).is_file()))
        if cmd[-2:] == ["venv", str(venv)]:
            venv.mkdir()
        return Done()

    monkeypatch.setattr(releases.subprocess, "run", run)
    monkeypatch.setattr(releases, "record_published", lambda venv: {})
    assert releases.install(venv, tmp_path, lock) == 0
    assert releases.constraint_file(venv).read_text() == "torch==2.13.0\n"
    assert [has for last, has in seen if last == "torch==2.13.0"] == [False]  # written after torch is installed
    assert seen[-1] == (releases.FIELD_LIBRARIES[-1], True)  # and there for the eager upgrade


def test_install_refuses_a_lock_without_torch(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("transformers==5.24.0\n")
    with pytest.raises(ValueError, match="pins no torch"):
        releases.install(tmp_path / "venv", tmp_path, lock)


def _executed(path: Path, *stderr: str) -> Path:
    cells = [{"cell_type": "code", "outputs": [{"output_type": "stream", "name": "stderr", "text": [text]}]}
             for text in stderr]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": cells}))
    return path


def test_notebook_warnings_drop_file_and_line(tmp_path):
    nb = _executed(tmp_path / "01_x.ipynb",
                   "/venv/lib/trl/trainer.py:12: FutureWarning: `foo` is deprecated, use `bar`\n  warnings.warn(\n",
                   "progress 10%|█\n")
    assert releases.notebook_warnings(nb) == {"FutureWarning: `foo` is deprecated, use `bar`"}


def test_new_warnings_only_those_the_lock_did_not_print(tmp_path):
    _executed(tmp_path / "lock" / "01_x.ipynb", "a.py:1: UserWarning: old\n")
    _executed(tmp_path / "latest" / "01_x.ipynb", "b.py:9: UserWarning: old\n", "c.py:2: DeprecationWarning: new\n")
    _executed(tmp_path / "latest" / "02_y.ipynb", "")
    found = releases.new_warnings(releases.executed_warnings(tmp_path / "lock"),
                                  releases.executed_warnings(tmp_path / "latest"))
    assert found == {"01_x": ["DeprecationWarning: new"]}


def test_figure_moves_against_the_seed_range():
    lock = {"07": {"ratio": {"value": 0.92}, "flops": {"value": 3.0}}}
    latest = {"07": {"ratio": {"value": 0.95, "passed": True}, "flops": {"value": 3.0, "passed": True}},
              "08": {"new": {"value": 1.0, "passed": True}}}
    spreads = {("07", "ratio"): (0.89, 0.93)}
    moves = {m["figure"]: m for m in releases.figure_moves(lock, latest, spreads)}
    assert set(moves) == {"ratio", "flops"}  # a figure the lock never measured has nothing to move from
    assert moves["ratio"]["spread"] == pytest.approx(0.04) and not moves["ratio"]["moved"]
    assert not moves["flops"]["moved"] and moves["flops"]["spread"] == 0
    far = releases.figure_moves(lock, {"07": {"ratio": {"value": 0.80, "passed": False}}}, spreads)
    assert far[0]["moved"] and not far[0]["passed"]
    unseeded = releases.figure_moves(lock, {"07": {"flops": {"value": 3.1, "passed": True}}}, {})
    assert unseeded[0]["moved"]


def test_render_drift_names_failures_moves_and_warnings():
    versions = releases.version_rows({"transformers": "5.24.0"}, {"transformers": "5.25.0"})
    moves = [{"notebook": "07", "figure": "ratio", "lock": 0.92, "latest": 0.80, "spread": 0.04, "moved": True,
              "passed": False, "seeded": True}]
    text = releases.render_drift(versions, {"07": "failed", "08": "passed"}, moves,
                                 {"07": ["FutureWarning: x"]}, have_spread=True)
    assert "| transformers (field) | 5.24.0 | 5.25.0 | changed |" in text
    assert "1 of 2 notebook(s) failed" in text and "| 07 | failed |" in text
    assert "| 07 | ratio | 0.92 | 0.8 |" in text and "FAILED" in text
    assert "`FutureWarning: x`" in text and "make seeds" not in text.split("## Figures that moved")[1][:80]
    quiet = releases.render_drift(versions, {"08": "passed"}, [], {}, have_spread=False)
    assert "run `make seeds`" in quiet and "None: the notebooks print no warning" in quiet


def test_write_drift_reads_published_from_the_environment_it_is_given(tmp_path, monkeypatch):
    build, venv = tmp_path / "build", tmp_path / "venv-latest"
    (build / "latest").mkdir(parents=True)
    (venv / "bin").mkdir(parents=True)
    bands = {"07": {"ratio": {"value": 0.9, "passed": True}}}
    for where in (build, build / "latest"):
        (where / "bands.json").write_text(json.dumps(bands))
    (venv / releases.PUBLISHED_FILE).write_text(json.dumps({"transformers": {"published": "9.0", "why_not": "no"}}))
    lock = tmp_path / "requirements.lock"
    lock.write_text("transformers==5.24.0\n")
    monkeypatch.setattr(releases, "freeze", lambda python: "transformers==5.24.0\n")
    out = releases.write_drift(build, build / "latest", {"07": "passed"}, venv, lock)
    assert "- transformers 9.0: no" in out.read_text()


def test_write_drift_compares_with_the_baseline_it_is_given(tmp_path, monkeypatch):
    build, venv = tmp_path / "build", tmp_path / "venv-latest"
    seed_run = build / "seeds" / "seed1"
    for where in (seed_run, build / "latest", venv / "bin"):
        where.mkdir(parents=True)
    (seed_run / "bands.json").write_text(json.dumps({"07": {"ratio": {"value": 0.9, "passed": True}}}))
    (build / "latest" / "bands.json").write_text(json.dumps({"07": {"ratio": {"value": 0.5, "passed": True}}}))
    lock = tmp_path / "requirements.lock"
    lock.write_text("transformers==5.24.0\n")
    monkeypatch.setattr(releases, "freeze", lambda python: "transformers==5.24.0\n")
    with pytest.raises(FileNotFoundError, match="run make course first"):  # build/ itself holds no run
        releases.write_drift(build, build / "latest", {"07": "passed"}, venv, lock)
    text = releases.write_drift(build, build / "latest", {"07": "passed"}, venv, lock, seed_run).read_text()
    assert "Compared with the lock's run in" in text and "seeds/seed1" in text
    moves = json.loads((build / "latest" / "drift.json").read_text())["moves"]
    assert [(m["lock"], m["latest"], m["moved"]) for m in moves] == [(0.9, 0.5, True)]


def test_require_baseline_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="run make course first"):
        releases.require_baseline(tmp_path)


def test_main_lock_writes_the_lock_file(tmp_path, monkeypatch):
    monkeypatch.setattr(releases, "freeze", lambda python: FREEZE)
    out = tmp_path / "requirements.lock"
    assert releases.main(["lock", "--lock", str(out)]) == 0
    assert out.read_text() == releases.lock_text(FREEZE)
