"""The course runner: execute every notebook headless with papermill and write build/REPORT.md.

Usage::

    python -m hubhelpers.tooling.course                 # every notebooks/NN_*.ipynb, in order
    python -m hubhelpers.tooling.course --only 00 03    # by number prefix, stem or glob
    python -m hubhelpers.tooling.course -p SEED 1 -y "MODEL: tinyworld"
    python -m hubhelpers.tooling.course -p MODEL path/to/model   # every notebook that has a MODEL parameter
    python -m hubhelpers.tooling.course -j 1            # one notebook at a time (default: 2 at once, longest first)

A plain run (the committed defaults: no parameters, the default notebooks and build folders) also rewrites the
"measured effect" column of README's course map from build/results.json (``hubhelpers.tooling.effects``), for each
notebook that passed, so the map's numbers are always the last run's.

Each notebook runs in its own papermill subprocess (a fresh kernel), so its wall time and peak
resident memory can be measured; they are recorded into build/results.json beside the notebook's
own figures. A failing notebook does not stop the others; the exit code is 1 if any failed. Two
notebooks run at once by default (``-j``), each kernel with one math thread (THREADS_PER_NOTEBOOK),
so a parallel run gives the same figures as a serial one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubhelpers import results as R
from hubhelpers.runtime import REPORTED_PACKAGES, package_version
from hubhelpers.tooling import effects
from hubhelpers.tooling.conventions import notebooks_in, parameter_names
from hubhelpers.tooling.sync import update_readme_column

RUN_METRICS = ("wall_s", "peak_rss_mb")
# Math threads of every notebook kernel, whatever the number of parallel jobs: a float sum's order (and so a
# fine-tune's last digits, and sometimes a greedy answer) depends on the thread count, so a fixed count gives the
# same figures serial or parallel, on any number of cores. On these small models a second thread inside one
# notebook buys less than a second notebook at once (make bench measures both).
THREADS_PER_NOTEBOOK = 1
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# glibc's allocator returns a freed block of more than 128 KiB (a threshold it raises as it goes) to the system, so
# the next batch's activations land on fresh pages the kernel must zero again: a notebook spent about 5% of its time
# there. With the threshold fixed at 32 MiB and freed memory kept (and 64 MiB more taken at a time) a kernel reuses
# its memory: the same figures, about 6% less wall time on notebook 11, the same peak. Other allocators ignore them.
ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024), "MALLOC_TRIM_THRESHOLD_": str(1024 * 1024 * 1024),
                 "MALLOC_TOP_PAD_": str(64 * 1024 * 1024)}
DEFAULT_JOBS = min(2, os.cpu_count() or 1)
POLL_S = 0.2
MB = 1024 * 1024
LOG_TAIL_LINES = 25
# The kernel's own headless backend: plt.show() leaves each plot in the executed notebook as a PNG (make book shows
# them), where Agg, a sound choice for scripts, would leave none. Figures saved by Results.savefig are the same.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
EXECUTED_DIR = "executed"  # in the build folder: each notebook as it ran, with its outputs, and its log
PROVENANCE_FILE = "provenance.json"  # in the build folder: for each notebook, where and with what it last ran
PROVENANCE_PACKAGES = ("torch", *REPORTED_PACKAGES, "papermill")


@dataclass(frozen=True)
class RunResult:
    """Outcome of one notebook run."""

    name: str
    returncode: int
    wall_s: float
    peak_rss_mb: float
    output: Path
    log: Path
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """True when papermill exited 0."""
        return self.returncode == 0 and not self.timed_out


# --------------------------------------------------------------------------- discovery
def discover_notebooks(directory: Path, only: Sequence[str] = ()) -> list[Path]:
    """Return notebooks named NN_snake_case.ipynb in ``directory``, sorted, filtered by ``only``."""
    if not directory.is_dir():
        raise FileNotFoundError(f"notebook directory {str(directory)!r} does not exist")
    found = notebooks_in(directory)
    if not only:
        return found
    unmatched = [token for token in only if not any(_selects(token, p.stem) for p in found)]
    if unmatched:
        raise ValueError(f"--only {unmatched} matched no notebook; available: {[p.stem for p in found]}")
    return [p for p in found if any(_selects(token, p.stem) for token in only)]


def _selects(token: str, stem: str) -> bool:
    """True when ``token`` (a number prefix, a stem or a glob) selects notebook ``stem``."""
    token = token.removesuffix(".ipynb")
    return stem == token or stem.startswith(f"{token}_") or fnmatch.fnmatch(stem, token)


# --------------------------------------------------------------------------- command line
def add_run_options(parser: argparse.ArgumentParser, build_default: str = "build/") -> None:
    """The options of a course run: which notebooks, where to write, which kernel, time limits."""
    parser.add_argument("--only", nargs="+", default=[], metavar="NB", help="number prefix, stem or glob")
    parser.add_argument("--notebooks", type=Path, default=None, help="notebook folder (default: notebooks/)")
    parser.add_argument("--build-dir", type=Path, default=None, help=f"output folder (default: {build_default})")
    parser.add_argument("--kernel", default="python3", help="kernel name (default: python3 of this env)")
    parser.add_argument("--timeout", type=float, default=None, help="wall-clock limit per notebook, s")
    parser.add_argument("--cell-timeout", type=int, default=None, help="papermill per-cell limit, s")
    parser.add_argument("-j", "--jobs", type=int, default=DEFAULT_JOBS,
                        help=f"notebooks run at once, longest first (default: {DEFAULT_JOBS}; 1: one after another)")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the runner's options and the papermill parameters it passes through."""
    parser = argparse.ArgumentParser(prog="python -m hubhelpers.tooling.course",
                                     description=__doc__.split("\n")[0])
    add_run_options(parser)
    pair = {"nargs": 2, "action": "append", "default": [], "metavar": ("NAME", "VALUE")}
    parser.add_argument("-p", "--parameters", help="papermill parameter", **pair)
    parser.add_argument("-r", "--parameters_raw", help="papermill raw-string parameter", **pair)
    parser.add_argument("-y", "--parameters_yaml", action="append", default=[], metavar="YAML")
    parser.add_argument("-f", "--parameters_file", action="append", default=[], metavar="FILE")
    return parser.parse_args(argv)


def papermill_parameters(args: argparse.Namespace) -> list[str]:
    """Rebuild the papermill parameter flags from parsed arguments."""
    flags: list[str] = []
    for name, value in args.parameters:
        flags += ["-p", name, value]
    for name, value in args.parameters_raw:
        flags += ["-r", name, value]
    for text in args.parameters_yaml:
        flags += ["-y", text]
    for path in args.parameters_file:
        flags += ["-f", str(Path(path).resolve())]
    return flags


def declared_parameters(notebook: Path) -> set[str]:
    """Names assigned in ``notebook``'s cell tagged 'parameters' (an empty set when it has none)."""
    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    for cell in cells:
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return parameter_names("".join(cell.get("source", "")))
    return set()


def parameters_for(flags: Sequence[str], declared: set[str]) -> list[str]:
    """``flags`` without the -p / -r pairs naming a parameter the notebook does not declare (-y, -f pass as they are).

    So ``-p MODEL X`` reaches every notebook that has a MODEL and leaves 02 (which trains its own) and 13 (whose
    model is its ENCODER) alone, instead of papermill warning and injecting an unused variable.
    """
    out: list[str] = []
    i = 0
    while i < len(flags):
        if flags[i] in ("-p", "-r"):
            if flags[i + 1] in declared:
                out += flags[i:i + 3]
            i += 3
        else:
            out += flags[i:i + 2]
            i += 2
    return out


def all_parameters(notebooks: Sequence[Path]) -> set[str]:
    """Every parameter name declared by one of ``notebooks``."""
    return set().union(*(declared_parameters(nb) for nb in notebooks))


def undeclared_parameters(args: argparse.Namespace, notebooks: Sequence[Path]) -> list[str]:
    """The -p / -r names that no notebook of ``notebooks`` declares (a typo, or the wrong notebooks)."""
    declared = all_parameters(notebooks)
    return sorted({name for name, _ in (*args.parameters, *args.parameters_raw)} - declared)


def papermill_command(
    notebook: Path, output: Path, kernel: str, extra: Sequence[str], cell_timeout: int | None = None
) -> list[str]:
    """Return the papermill command line executing ``notebook`` into ``output`` (see tooling/execute.py)."""
    cmd = [sys.executable, "-m", "hubhelpers.tooling.execute", str(notebook), str(output), "-k", kernel]
    cmd += ["--cwd", str(notebook.parent), "--no-progress-bar", "--start-timeout", "180"]
    if cell_timeout:
        cmd += ["--execution-timeout", str(cell_timeout)]
    return [*cmd, *extra]


def kernel_env() -> dict[str, str]:
    """Every kernel's settings, the runner's and nbval's alike (the Makefile's KERNEL_ENV, checked equal by a test):
    THREADS_PER_NOTEBOOK math threads and ALLOCATOR_ENV."""
    return {**dict.fromkeys(THREAD_VARS, str(THREADS_PER_NOTEBOOK)), **ALLOCATOR_ENV}


def notebook_env(build_dir: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the environment a notebook runs in: figures to ``build_dir``, inline plots, kernel_env()
    (fixed math threads, the allocator settings of ALLOCATOR_ENV)."""
    env = dict(os.environ if base is None else base)
    env[R.BUILD_DIR_ENV] = str(build_dir)
    env.update(kernel_env())
    env["MPLBACKEND"] = INLINE_BACKEND  # whatever the caller's (make sets Agg for scripts)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


# --------------------------------------------------------------------------- measured execution
def tree_memory_bytes(pid: int) -> tuple[int, int]:
    """(summed RSS of the descendants of ``pid``: the kernel and its children, the largest RSS high-water mark of
    ``pid`` and its descendants), from one walk of the process tree; (0, 0) once ``pid`` is gone.

    The high-water mark is Linux's VmHWM (reset at exec; 0 where /proc has none): it keeps a spike between two
    polls, as long as the process is still alive at the next one.
    """
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return 0, 0
    total = 0
    for child in children:
        try:
            total += child.memory_info().rss
        except psutil.Error:
            continue
    return total, max(_hwm_bytes(p) for p in [pid, *(c.pid for c in children)])


def _hwm_bytes(pid: int) -> int:
    """Process ``pid``'s RSS high-water mark from /proc/<pid>/status (VmHWM), or 0 where there is none."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            line = next((x for x in status if x.startswith("VmHWM:")), "")
    except OSError:
        return 0
    return int(line.split()[1]) * 1024 if line else 0  # kB


def _kill_tree(pid: int) -> None:
    """Kill process ``pid`` and all its descendants."""
    import psutil

    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            continue


def run_measured(
    cmd: Sequence[str], env: Mapping[str, str], log: Path, timeout: float | None = None
) -> tuple[int, float, float, bool]:
    """Run ``cmd`` logging to ``log``; return (exit code, wall s, peak RSS MB, timed out).

    Peak RSS is the largest of the sampled process-tree total of the kernel side, the largest single-process
    high-water mark sampled from /proc (VmHWM: it keeps spikes between polls), and the ``ru_maxrss`` that
    ``os.wait4`` reports for the run. A child's ``ru_maxrss`` starts from its parent's at the fork (Linux keeps it
    across exec), so it counts only above the runner's own: a runner that loaded torch (the bench) would otherwise
    lend it to every notebook.
    """
    import resource

    inherited = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, peak, timed_out = time.perf_counter(), 0, False
    with log.open("wb") as sink:
        proc = subprocess.Popen(list(cmd), env=dict(env), stdout=sink, stderr=subprocess.STDOUT)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, *tree_memory_bytes(proc.pid))
            if timeout is not None and time.perf_counter() - start > timeout and not timed_out:
                timed_out = True
                _kill_tree(proc.pid)
            time.sleep(POLL_S)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    maxrss = (usage.ru_maxrss if usage.ru_maxrss > inherited else 0) * (1 if sys.platform == "darwin" else 1024)
    return proc.returncode, wall, max(peak, maxrss) / MB, timed_out


def run_notebook(
    notebook: Path, build_dir: Path, kernel: str, extra: Sequence[str], **limits: Any
) -> RunResult:
    """Execute one notebook afresh into build/executed/ and record its wall time and peak RSS."""
    name = notebook.stem
    executed = build_dir / EXECUTED_DIR
    executed.mkdir(parents=True, exist_ok=True)
    output, log = executed / notebook.name, executed / f"{name}.log"
    R.clear_notebook(build_dir, name)
    extra = parameters_for(extra, declared_parameters(notebook))
    cmd = papermill_command(notebook.resolve(), output, kernel, extra, limits.get("cell_timeout"))
    code, wall, peak, timed_out = run_measured(cmd, notebook_env(build_dir), log, limits.get("timeout"))
    R.record_run_metrics(build_dir, name, wall, peak)
    return RunResult(name, code, round(wall, 2), round(peak, 1), output, log, timed_out)


# --------------------------------------------------------------------------- report
def band_rows(figures: Mapping[str, Any], bands: Mapping[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """Return (figure, value, band, kind, check) rows for one notebook, run metrics excluded."""
    rows = []
    for name in sorted(set(figures) | set(bands)):
        if name in RUN_METRICS:
            continue
        band = bands.get(name)
        value = figures.get(name, band["value"] if band else None)
        if band is None:
            rows.append((name, R.format_value(value), "–", "–", "recorded"))
            continue
        rows.append((name, R.format_value(value), R.format_band(band["at_least"], band["at_most"]),
                     band.get("kind", R.MECHANISM), band_check(band)))
    return rows


def band_check(band: Mapping[str, Any]) -> str:
    """'✅ pass', '❌ FAIL', or for a shipped-model band of another model 'not checked for this model (...)'."""
    if not band.get("checked", True):
        return f"not checked for this model ({'inside' if band['passed'] else 'outside'} the shipped model's band)"
    return "✅ pass" if band["passed"] else "❌ FAIL"


def executed_stopped(executed: Mapping[str, Any]) -> bool:
    """True when an executed notebook shows an error output or a code cell that never ran (a run that raised, or was
    stopped)."""
    cells = [c for c in executed["cells"] if c["cell_type"] == "code"]
    return any(o.get("output_type") == "error" for c in cells for o in c.get("outputs", [])) or \
        any(c.get("execution_count") is None and "".join(c["source"]).strip() for c in cells)


def checked_failures(bands: Mapping[str, Any]) -> list[str]:
    """Names of the bands that were checked (raised) and failed."""
    return [name for name, b in bands.items() if b.get("checked", True) and not b.get("passed", False)]


def notebook_status(run: RunResult, bands: Mapping[str, Any]) -> str:
    """Return 'passed', 'failed' or 'timed out' for a run and its checked bands."""
    if run.timed_out:
        return "timed out"
    return "passed" if run.ok and not checked_failures(bands) else "failed"


def _section(run: RunResult, figures: Mapping[str, Any], bands: Mapping[str, Any], build_dir: Path) -> str:
    """Render one notebook's section of REPORT.md."""
    status = notebook_status(run, bands)
    lines = [
        f"## {run.name}",
        "",
        f"**{status}** · wall {run.wall_s:.1f} s · peak RSS {run.peak_rss_mb:.0f} MB · "
        f"[executed notebook]({_rel(run.output, build_dir)}) · [log]({_rel(run.log, build_dir)})",
        "",
    ]
    rows = band_rows(figures, bands)
    if rows:
        lines += ["| figure | value | band | kind | check |", "|---|---|---|---|---|"]
        lines += [f"| {' | '.join(row)} |" for row in rows]
        lines.append("")
    for png in sorted((build_dir / R.FIGURES_DIR / run.name).glob("*.png")):
        lines += [f"![{png.stem}]({_rel(png, build_dir)})", ""]
    return "\n".join(lines)


def _rel(path: Path, base: Path) -> str:
    """Return ``path`` relative to ``base`` with forward slashes (for Markdown links)."""
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def render_report(runs: Sequence[RunResult], build_dir: Path) -> str:
    """Render build/REPORT.md: a summary table, then each notebook's figures, bands and images."""
    figures, bands = R.load_results(build_dir), R.load_bands(build_dir)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# llm-hub course report",
        "",
        f"{stamp} · Python {platform.python_version()} · {platform.platform(terse=True)} · "
        f"{os.cpu_count()} CPUs",
        "",
        "| notebook | status | wall_s | peak_rss_mb | checked bands passed | shipped-model bands not checked |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        nb_bands = bands.get(run.name, {})
        checked = [b for b in nb_bands.values() if b.get("checked", True)]
        passed = sum(1 for b in checked if b.get("passed"))
        lines.append(
            f"| {run.name} | {notebook_status(run, nb_bands)} | {run.wall_s:.1f} | {run.peak_rss_mb:.0f} "
            f"| {passed}/{len(checked)} | {len(nb_bands) - len(checked)} |"
        )
    lines.append("")
    for run in runs:
        lines.append(_section(run, figures.get(run.name, {}), bands.get(run.name, {}), build_dir))
    return "\n".join(lines)


def write_report(runs: Sequence[RunResult], build_dir: Path) -> Path:
    """Write build_dir/REPORT.md for ``runs`` and return its path."""
    report = build_dir / "REPORT.md"
    report.write_text(render_report(runs, build_dir) + "\n", encoding="utf-8")
    return report


def log_tail(log: Path, n: int = LOG_TAIL_LINES) -> str:
    """Return the last ``n`` lines of a log file."""
    if not log.exists():
        return ""
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])


# --------------------------------------------------------------------------- main
def longest_first(notebooks: Sequence[Path], *build_dirs: Path) -> list[Path]:
    """``notebooks`` by their last recorded wall time, longest first, so that parallel jobs do not end with one long
    notebook running alone: each notebook's time from the first of ``build_dirs`` that recorded one (a seed's folder,
    then the main build), unmeasured notebooks first, ties in the given order."""
    results = [R.load_results(d) for d in build_dirs]

    def last_wall(nb: Path) -> float:
        return next((r[nb.stem]["wall_s"] for r in results if "wall_s" in r.get(nb.stem, {})), float("inf"))

    return sorted(notebooks, key=lambda nb: -last_wall(nb))


def run_course(
    notebooks: Sequence[Path], build_dir: Path, kernel: str, extra: Sequence[str], jobs: int = 1,
    provenance: Mapping[str, Any] | None = None, **limits: Any
) -> list[RunResult]:
    """Run ``notebooks``, ``jobs`` at a time (longest first), with a progress bar; never stop at a failure.

    Each notebook is its own papermill process with THREADS_PER_NOTEBOOK math threads, so the figures do not depend
    on ``jobs``; results.json is written under a lock. With ``provenance``, each finished notebook's entry in
    build_dir/provenance.json is set to it (as it finishes: an interrupted run leaves the others' entries as they
    were). The runs are returned in the order of ``notebooks``.
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from tqdm.auto import tqdm

    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    bar = tqdm(total=len(notebooks), desc=f"course ({jobs} at a time)", unit="notebook", file=sys.stderr)
    done: dict[str, RunResult] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_notebook, nb, build_dir, kernel, extra, **limits)
                   for nb in longest_first(notebooks, build_dir, R.find_build_dir())]
        for future in as_completed(futures):
            run = future.result()
            mark = "ok  " if run.ok else "FAIL"
            bar.write(f"{mark} {run.name:<32} {run.wall_s:8.1f} s {run.peak_rss_mb:8.0f} MB", file=sys.stderr)
            bar.update()
            done[run.name] = run
            if provenance is not None:
                write_provenance(build_dir, [run.name], provenance)
    bar.close()
    return [done[nb.stem] for nb in notebooks]


def summarize(runs: Sequence[RunResult], report: Path) -> int:
    """Print the summary naming the failures; return the process exit code."""
    bands = R.load_bands(report.parent)
    failed = [r for r in runs if notebook_status(r, bands.get(r.name, {})) != "passed"]
    for run in failed:
        print(f"\n--- {run.name} (exit {run.returncode}), last lines of {run.log}:\n{log_tail(run.log)}")
    print(f"\nreport: {report}")
    if failed:
        print(f"FAILED {len(failed)}/{len(runs)}: {', '.join(r.name for r in failed)}")
        return 1
    print(f"all {len(runs)} notebooks passed")
    return 0


def git_commit(root: Path) -> str:
    """The checked-out commit (short hash), with ' + uncommitted changes' when tracked files differ; '' outside git."""
    def git(*cmd: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *cmd], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""
    commit = git("rev-parse", "--short=12", "HEAD")
    dirty = commit and git("status", "--porcelain", "--untracked-files=no")
    return commit + (" + uncommitted changes" if dirty else "")


def cpu_model() -> str:
    """The processor's model name from /proc/cpuinfo, else platform.processor() (may be '')."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run_provenance(root: Path, parameters: Sequence[str]) -> dict[str, Any]:
    """Where and with what a course run executes: date, commit, machine, package versions, papermill parameters."""
    return {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": git_commit(root),
            "python": platform.python_version(), "platform": platform.platform(terse=True), "cpu": cpu_model(),
            "cpus": os.cpu_count() or 1, "packages": {n: package_version(n) for n in PROVENANCE_PACKAGES},
            "parameters": list(parameters)}


def write_provenance(build_dir: Path, names: Sequence[str], provenance: Mapping[str, Any]) -> Path:
    """Record `provenance` for each notebook of `names` (stems) in build_dir/provenance.json, keeping the others'."""
    path = build_dir / PROVENANCE_FILE
    known = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    R.write_json_atomic(path, {**known, **{name: dict(provenance) for name in names}})
    return path


def is_default_run(args: argparse.Namespace) -> bool:
    """True for a run of the committed defaults: no parameters, the default notebooks and build folders."""
    return not papermill_parameters(args) and args.notebooks is None and args.build_dir is None


def write_effects(runs: Sequence[RunResult], build_dir: Path, readme: Path) -> list[str]:
    """Rewrite README's measured-effect column for the runs that passed; return the notebooks rewritten."""
    bands = R.load_bands(build_dir)
    passed = [r.name for r in runs if notebook_status(r, bands.get(r.name, {})) == "passed"]
    cells = effects.effect_cells(R.load_results(build_dir), passed)
    text = readme.read_text(encoding="utf-8")
    readme.write_text(update_readme_column(text, effects.COLUMN, cells), encoding="utf-8")
    return passed


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    args = parse_args(argv)
    root = R.find_project_root() or Path.cwd()
    build_dir = (args.build_dir or R.find_build_dir()).resolve()
    try:
        notebooks = discover_notebooks((args.notebooks or root / "notebooks").resolve(), args.only)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not notebooks:
        print("error: no notebooks named NN_snake_case.ipynb found", file=sys.stderr)
        return 2
    unknown = undeclared_parameters(args, notebooks)
    if unknown:
        print(f"error: no selected notebook has a parameter named {', '.join(unknown)}; the parameters are "
              f"{sorted(all_parameters(notebooks))}", file=sys.stderr)
        return 2
    limits = {"timeout": args.timeout, "cell_timeout": args.cell_timeout}
    runs = run_course(notebooks, build_dir, args.kernel, papermill_parameters(args), args.jobs,
                      provenance=run_provenance(root, papermill_parameters(args)), **limits)
    code = summarize(runs, write_report(runs, build_dir))
    if is_default_run(args) and (root / "README.md").is_file():
        try:
            written = write_effects(runs, build_dir, root / "README.md")
        except KeyError as err:
            print(f"error: README's measured-effect column not written: {err.args[0]}", file=sys.stderr)
            return 1
        print(f"README course map: the measured effect of {len(written)} notebook(s), from the results above")
    return code


if __name__ == "__main__":
    sys.exit(main())
