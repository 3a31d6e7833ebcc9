"""Tests of the course runner: discovery, parameters, measurement, and an end-to-end run with a failure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from hubhelpers import results as R
from hubhelpers.tooling import course
from hubhelpers.tooling import seeds as S

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def write_notebook(path: Path, cells: list[str], params: str = "X: int = 1  # a parameter") -> Path:
    """Write a tiny notebook: a title, a parameters cell, then ``cells``."""
    nb = new_notebook(metadata={"kernelspec": KERNELSPEC})
    nb.cells = [new_markdown_cell(f"# {path.stem}"), new_code_cell(params, metadata={"tags": ["parameters"]})]
    nb.cells += [new_code_cell(src) for src in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def test_discover_orders_and_filters(tmp_path: Path) -> None:
    for name in ("02_b.ipynb", "00_a.ipynb", "10_c.ipynb", "scratch.ipynb", "1_bad.ipynb", "03_Bad.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in course.discover_notebooks(tmp_path)] == ["00_a.ipynb", "02_b.ipynb", "10_c.ipynb"]
    assert [p.stem for p in course.discover_notebooks(tmp_path, ["02"])] == ["02_b"]
    assert [p.stem for p in course.discover_notebooks(tmp_path, ["00_a", "1*"])] == ["00_a", "10_c"]
    with pytest.raises(ValueError, match=r"\['07'\] matched no notebook"):
        course.discover_notebooks(tmp_path, ["07"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        course.discover_notebooks(tmp_path / "missing")


def test_parameters_pass_through(tmp_path: Path) -> None:
    args = course.parse_args(["-p", "SEED", "1", "-r", "NAME", "x y", "-y", "A: 2", "--only", "00"])
    assert course.papermill_parameters(args) == ["-p", "SEED", "1", "-r", "NAME", "x y", "-y", "A: 2"]
    assert args.only == ["00"]
    nb, out = tmp_path / "00_a.ipynb", tmp_path / "out.ipynb"
    cmd = course.papermill_command(nb, out, "python3", ["-p", "A", "1"])
    assert cmd[:3] == [sys.executable, "-m", "hubhelpers.tooling.execute"] and cmd[-3:] == ["-p", "A", "1"]
    assert "--cwd" in cmd and "-k" in cmd


def test_execute_skips_the_iri_checker_and_still_validates_notebooks() -> None:
    """The runner's papermill process never imports rfc3987_syntax, and nbformat still validates (and rejects)."""
    code = (
        "import sys\n"
        "from hubhelpers.tooling.execute import skip_modules\n"
        "skip_modules()\n"
        "import nbformat\n"
        "nbformat.validate(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('x = 1')]))\n"
        "try:\n"
        "    nbformat.validate({'cells': 3})\n"
        "    raise SystemExit('an invalid notebook passed')\n"
        "except nbformat.ValidationError:\n"
        "    pass\n"
        "assert sys.modules['rfc3987_syntax'] is None, 'rfc3987_syntax was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    usage = subprocess.run([sys.executable, "-m", "hubhelpers.tooling.execute", "--help"], capture_output=True,
                           text=True, timeout=120)
    assert usage.returncode == 0 and "Usage: papermill" in usage.stdout


def test_notebook_env_points_at_build_dir(tmp_path: Path) -> None:
    env = course.notebook_env(tmp_path, {"PATH": "/bin", "OMP_NUM_THREADS": "8"})
    assert env[R.BUILD_DIR_ENV] == str(tmp_path) and env["PATH"] == "/bin"
    assert env["MPLBACKEND"] == course.INLINE_BACKEND  # plots stay in the executed notebook (make book shows them)
    assert all(env[var] == str(course.THREADS_PER_NOTEBOOK) == "1" for var in course.THREAD_VARS)
    assert all(env[var] == value for var, value in course.ALLOCATOR_ENV.items())


def test_makefile_kernel_env_is_the_runners() -> None:
    """nbval's kernels (started by pytest, not by the runner) get the runner's threads and allocator settings."""
    text = (Path(__file__).resolve().parents[1] / "Makefile").read_text().replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if ln.startswith("KERNEL_ENV :="))
    settings = dict(item.split("=", 1) for item in line.split(":=", 1)[1].split())
    assert settings == course.kernel_env()
    assert all(settings[var] == str(course.THREADS_PER_NOTEBOOK) for var in course.THREAD_VARS)
    assert all(settings[var] == value for var, value in course.ALLOCATOR_ENV.items())


def test_longest_first_follows_the_last_wall_times(tmp_path: Path) -> None:
    notebooks = [tmp_path / f"{n}.ipynb" for n in ("00_a", "01_b", "02_c", "03_new")]
    for name, wall in (("00_a", 5.0), ("01_b", 40.0), ("02_c", 12.0)):
        R.record_run_metrics(tmp_path, name, wall, 100.0)
    assert [p.stem for p in course.longest_first(notebooks, tmp_path)] == ["03_new", "01_b", "02_c", "00_a"]
    assert course.longest_first(notebooks, tmp_path / "empty") == notebooks  # nothing measured: as given
    main = tmp_path / "main"
    R.record_run_metrics(main, "03_new", 20.0, 100.0)
    R.record_run_metrics(main, "00_a", 99.0, 100.0)  # the first folder's time wins
    assert [p.stem for p in course.longest_first(notebooks, tmp_path, main)] == ["01_b", "03_new", "02_c", "00_a"]


TRAINER = """
import torch
from hubhelpers.results import Results
torch.manual_seed(X)
model = torch.nn.Sequential(torch.nn.Linear(384, 384), torch.nn.Tanh(), torch.nn.Linear(384, 1))
opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
x, y = torch.randn(512, 384), torch.randn(512, 1)
for _ in range(30):
    loss = torch.nn.functional.mse_loss(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
res = Results(NAME)
res.record("last_loss", loss.item())  # a Python float: results.json keeps every digit
res.record("threads", torch.get_num_threads())
"""


def course_figures(argv: list[str]) -> dict:
    """Run the course with `argv`; its figures per notebook, the runner's own measurements left out."""
    assert course.main(argv) == 0
    build = Path(argv[argv.index("--build-dir") + 1])
    results = json.loads((build / "results.json").read_text())
    return {nb: {k: v for k, v in r.items() if k not in course.RUN_METRICS} for nb, r in results.items()}


@pytest.mark.timeout(600)
def test_parallel_and_serial_runs_give_the_same_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbdir = tmp_path / "notebooks"
    for i in range(3):
        write_notebook(nbdir / f"0{i}_train.ipynb", [TRAINER], params=f"X: int = {i}  # seed\nNAME: str = '0{i}_train'")
    figures = {jobs: course_figures(["--notebooks", str(nbdir), "--build-dir", str(tmp_path / f"j{jobs}"),
                                     "--jobs", str(jobs)]) for jobs in (1, 2)}
    assert figures[1] == figures[2] and len(figures[1]) == 3
    assert {r["threads"] for r in figures[1].values()} == {1}
    assert len({r["last_loss"] for r in figures[1].values()}) == 3  # three seeds, three runs: the figures are real
    # the check can fail: two math threads sum in another order, and the last digits of the loss move
    monkeypatch.setattr(course, "THREADS_PER_NOTEBOOK", 2)
    two = course_figures(["--notebooks", str(nbdir), "--build-dir", str(tmp_path / "threads2"), "--jobs", "1"])
    assert {r["threads"] for r in two.values()} == {2}
    assert [r["last_loss"] for r in two.values()] != [r["last_loss"] for r in figures[1].values()]


@pytest.mark.timeout(600)
def test_parallel_and_serial_course_runs_agree_on_real_notebooks(tmp_path: Path) -> None:
    figures = {jobs: course_figures(["--only", "03", "09", "--build-dir", str(tmp_path / f"j{jobs}"),
                                     "--jobs", str(jobs)]) for jobs in (1, 2)}
    assert figures[1] == figures[2] and len(figures[1]) == 2


def test_run_measured_reports_exit_wall_and_peak(tmp_path: Path) -> None:
    code = "import time; b = bytearray(120 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(0.3)"
    rc, wall, peak, timed_out = course.run_measured([sys.executable, "-c", code], {}, tmp_path / "log")
    assert rc == 0 and not timed_out and wall > 0.2 and peak >= 120
    rc, *_ = course.run_measured([sys.executable, "-c", "raise SystemExit(3)"], {}, tmp_path / "log")
    assert rc == 3


def test_run_measured_does_not_lend_the_runners_memory_to_the_child(tmp_path: Path) -> None:
    ballast = bytearray(600 * 2**20)  # the runner's own high-water mark, far above the child's
    ballast[::4096] = b"x" * len(ballast[::4096])
    rc, _, peak, _ = course.run_measured([sys.executable, "-c", "import time; time.sleep(0.3)"], {}, tmp_path / "log")
    assert rc == 0 and peak < 300, peak  # a bare interpreter, not the runner's 600 MB
    del ballast


def test_run_measured_timeout_kills(tmp_path: Path) -> None:
    rc, wall, _, timed_out = course.run_measured(
        [sys.executable, "-c", "import time; time.sleep(30)"], {}, tmp_path / "log", timeout=0.5
    )
    assert timed_out and rc != 0 and wall < 10


def test_band_rows_and_status(tmp_path: Path) -> None:
    figures = {"acc": 0.9, "wall_s": 1.0, "curve": {"0": 0.1}}
    bands = {"acc": {"at_least": 0.8, "at_most": None, "value": 0.9, "passed": True}}  # written before band kinds
    assert course.band_rows(figures, bands) == [
        ("acc", "0.9", ">= 0.8", "mechanism", "✅ pass"),
        ("curve", "{0: 0.1}", "–", "–", "recorded"),
    ]
    run = course.RunResult("00_a", 0, 1.0, 10.0, tmp_path / "o", tmp_path / "l")
    assert course.notebook_status(run, bands) == "passed"
    assert course.notebook_status(run, {"acc": {**bands["acc"], "passed": False}}) == "failed"
    unchecked = {"acc": {**bands["acc"], "passed": False, "kind": "shipped", "checked": False}}
    assert course.notebook_status(run, unchecked) == "passed"  # another model: reported, not a failure
    assert course.band_rows({}, unchecked)[0][3:] == (
        "shipped", "not checked for this model (outside the shipped model's band)")


def test_parameters_reach_only_the_notebooks_that_declare_them(tmp_path: Path) -> None:
    with_model = write_notebook(tmp_path / "00_a.ipynb", [], params='MODEL: str = "tinyworld"  # m\nSEED: int = 0')
    without = write_notebook(tmp_path / "01_b.ipynb", [], params="SEED: int = 0  # s")
    assert course.declared_parameters(with_model) == {"MODEL", "SEED"}
    flags = ["-p", "MODEL", "x", "-r", "SEED", "1", "-y", "A: 2"]
    assert course.parameters_for(flags, {"MODEL", "SEED"}) == flags
    assert course.parameters_for(flags, course.declared_parameters(without)) == ["-r", "SEED", "1", "-y", "A: 2"]
    args = course.parse_args(["-p", "MODEL", "x", "-p", "MODLE", "y"])
    assert course.undeclared_parameters(args, [with_model, without]) == ["MODLE"]
    assert course.main(["--notebooks", str(tmp_path), "--build-dir", str(tmp_path / "b"), "-p", "MODLE", "y"]) == 2


@pytest.mark.timeout(600)
def test_course_end_to_end_with_a_failing_notebook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nbdir, build = tmp_path / "notebooks", tmp_path / "build"
    write_notebook(
        nbdir / "00_good.ipynb",
        [
            "from hubhelpers.results import Results\nres = Results('00_good')",
            "res.record('x_seen', X)\nres.expect('x_seen', at_least=5, at_most=5, kind='mechanism')",
            "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2])\n"
            "res.savefig(fig, 'line')",
        ],
    )
    write_notebook(
        nbdir / "01_bad_band.ipynb",
        ["from hubhelpers.results import Results\nres = Results('01_bad_band')",
         "res.record('acc', 0.2)\nres.expect('acc', at_least=0.85, kind='mechanism')"],
    )
    write_notebook(nbdir / "02_after_failure.ipynb", ["from hubhelpers.results import Results",
                                                      "Results('02_after_failure').record('ran', True)"])
    (nbdir / "notes.ipynb").write_text("not a course notebook")

    code = course.main(["--notebooks", str(nbdir), "--build-dir", str(build), "-p", "X", "5"])

    assert code == 1
    out = capsys.readouterr().out
    assert "FAILED 1/3: 01_bad_band" in out
    assert "'acc' = 0.2 is outside the expected band >= 0.85" in out  # the log tail names the failure
    results = json.loads((build / "results.json").read_text())
    assert results["00_good"]["x_seen"] == 5  # the -p parameter reached the notebook
    assert results["02_after_failure"]["ran"] is True  # a failure does not stop the rest
    for name in ("00_good", "01_bad_band", "02_after_failure"):
        assert results[name]["wall_s"] > 0 and results[name]["peak_rss_mb"] > 10
        assert (build / "executed" / f"{name}.ipynb").exists()
    report = (build / "REPORT.md").read_text()
    assert "| 00_good | passed |" in report and "| 01_bad_band | failed |" in report
    assert "| acc | 0.2 | >= 0.85 | mechanism | ❌ FAIL |" in report
    assert "| x_seen | 5 | [5, 5] | mechanism | ✅ pass |" in report
    assert "![line](figures/00_good/line.png)" in report and (build / "figures/00_good/line.png").exists()

    provenance = json.loads((build / course.PROVENANCE_FILE).read_text())
    assert set(provenance) == {"00_good", "01_bad_band", "02_after_failure"}  # where each executed copy came from
    assert provenance["00_good"]["parameters"] == ["-p", "X", "5"] and provenance["00_good"]["packages"]["torch"]

    # a re-run of one notebook starts from a clean slate for it and keeps the others' figures and provenance
    provenance["01_bad_band"]["date"] = "an earlier run"
    (build / course.PROVENANCE_FILE).write_text(json.dumps(provenance))
    again = ["--notebooks", str(nbdir), "--build-dir", str(build), "--only", "00", "-p", "X", "5"]
    assert course.main(again) == 0
    assert "01_bad_band" in json.loads((build / "results.json").read_text())
    assert json.loads((build / course.PROVENANCE_FILE).read_text())["01_bad_band"]["date"] == "an earlier run"


def test_main_reports_bad_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_notebook(tmp_path / "00_a.ipynb", ["pass"])
    args = ["--notebooks", str(tmp_path), "--build-dir", str(tmp_path / "b"), "--only", "09"]
    assert course.main(args) == 2
    assert "matched no notebook" in capsys.readouterr().err


def test_model_means_the_causal_lm_in_every_notebook_that_has_one() -> None:
    """`-p MODEL x` reaches every notebook with a MODEL; 02 (trains its own) and 13 (an ENCODER) have none."""
    root = Path(__file__).resolve().parents[1] / "notebooks"
    declared = {nb.stem[:2]: course.declared_parameters(nb) for nb in course.discover_notebooks(root)}
    without = sorted(n for n, names in declared.items() if "MODEL" not in names)
    assert without == ["02", "13"]
    assert "ENCODER" in declared["13"] and all("ENCODER" in declared[n] for n in ("10", "15"))


@pytest.mark.timeout(600)
def test_seeds_runner_end_to_end_names_the_failing_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nbdir, build = tmp_path / "notebooks", tmp_path / "seeds"
    write_notebook(
        nbdir / "00_seeded.ipynb",
        ["from hubhelpers.results import Results\nres = Results('00_seeded')",
         "res.check('near_one', 1 + SEED / 100, at_least=1.0, kind='mechanism')",
         "res.check('seed_seen', SEED, at_most=1, kind='mechanism')"],  # holds at seed 1, fails at seed 2
        params="SEED: int = 0  # the sampling seed",
    )
    write_notebook(  # declares no SEED: `-p SEED n` must not reach it, and it runs as by default
        nbdir / "01_unseeded.ipynb",
        ["from hubhelpers.results import Results",
         "Results('01_unseeded').check('x_seen', X, at_least=0.5, at_most=2, kind='mechanism')"],
    )

    code = S.main(["--seeds", "1", "2", "--notebooks", str(nbdir), "--build-dir", str(build)])

    assert code == 1
    out = capsys.readouterr().out
    assert "00_seeded: figure 'seed_seen' = 2 outside <= 1 at seed 2" in out
    assert "00_seeded: near_one (margin +1.0% at seed 1)" in out
    for seed in (1, 2):
        assert {"results.json", "bands.json", "REPORT.md"} <= {p.name for p in (build / f"seed{seed}").iterdir()}
        assert json.loads((build / f"seed{seed}" / "bands.json").read_text())["01_unseeded"]["x_seen"]["passed"]
    spread = json.loads((build / "spread.json").read_text())
    assert spread["seeds"] == [1, 2] and spread["runs"]["00_seeded"] == {"1": "passed", "2": "failed"}
    rows = {r["figure"]: r for r in spread["rows"]}
    assert rows["seed_seen"]["values"] == {"1": 1.0, "2": 2.0} and rows["seed_seen"]["failed_seeds"] == [2]
    assert rows["near_one"]["status"] == "near" and rows["x_seen"]["status"] == "ok"
    assert [r["figure"] for r in spread["rows"]] == ["seed_seen", "near_one", "x_seen"]
    report = (build / "REPORT.md").read_text()
    assert "| 00_seeded | seed_seen | mechanism | <= 1 | 1 | 2 | 1 | 1.5 | 2 | 1 | -100.0% | ❌ FAIL at seed 2 |" \
        in report  # values at seeds 1 and 2, min, median, max, spread

    assert S.main(["--seeds", "1", "--only", "01", "--notebooks", str(nbdir), "--build-dir", str(build)]) == 2
    assert "no selected notebook declares a SEED parameter" in capsys.readouterr().err
