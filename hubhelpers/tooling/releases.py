"""The lock and the next release: requirements.lock, and the course in a second environment with the newest releases.

Usage::

    python -m hubhelpers.tooling.releases lock                 # requirements.lock from this environment (make lock)
    python -m hubhelpers.tooling.releases install              # .venv-latest: the field libraries at their newest
    .venv-latest/bin/python -m hubhelpers.tooling.releases run # the course there: build/latest/, DRIFT.md

``make latest`` runs ``install`` (with the network), then ``run`` with .venv-latest's interpreter (with the network
cut, like nbval): the course executes into ``build/latest/`` and DRIFT.md is written beside it. The environment keeps
torch at the locked CPU build (a constraint, so no dependency pulls a newer one) and takes every other package at its
newest release (pip's eager upgrade strategy), the field libraries named explicitly. DRIFT.md compares that run with
the lock's last plain run (``make course``, in ``build/``): the versions against the lock, the notebooks that failed,
the banded figures that moved by more than their run-to-run spread (the range over ``make seeds``' seeds and the
lock's run, from ``build/seeds/spread.json``), and the warnings the notebooks print with the latest releases that
they do not print with the lock. ``run --seed N`` compares instead with the lock's run at that seed, the one
``make seeds`` left in ``build/seeds/seed<N>/``, and runs the latest course at that seed: the same comparison without
one more course run on the lock. Exit code 1 when a notebook failed there. When everything passes, ``lock --python
.venv-latest/bin/python`` writes the latest versions into requirements.lock.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hubhelpers import results as R
from hubhelpers.tooling import course, seeds

LOCK_FILE = "requirements.lock"
LATEST_VENV = ".venv-latest"
LATEST_DIR = "latest"
DRIFT_FILE = "DRIFT.md"
PUBLISHED_FILE = "published.json"  # in the latest environment: newest release of each field library on the index
EXTRAS = "course,dev"
# The libraries whose releases break courses (transformers, TRL, PEFT... upgrades); torch stays at the lock's build.
FIELD_LIBRARIES = (
    "transformers", "peft", "trl", "bitsandbytes", "datasets", "accelerate", "langchain", "langchain-core",
    "langchain-text-splitters", "langchain-chroma", "langchain-huggingface", "chromadb", "sentence-transformers",
    "papermill", "nbval",
)
PINNED = ("torch",)
LOCK_HEADER = (
    "# Exact versions the course is tested with (Python 3.11). Regenerate with: make lock\n"
    "# torch is installed first as 'pip install torch=={torch}' (the CPU build where a local wheel exists).\n"
)
PROJECT_NAMES = ("llm-hub",)
WARNING_LINE = re.compile(r"\b(\w*Warning): (.+)$")
ABS_TOL = 1e-9


# --------------------------------------------------------------------------- versions
def canonical(name: str) -> str:
    """A distribution name as pip compares them: lower case, runs of -_. as one '-'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pins(text: str) -> dict[str, str]:
    """``{name: version}`` of the ``name==version`` lines of a lock or ``pip freeze`` (local tags like +cpu dropped)."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonical(name)] = version.strip().split("+", 1)[0]
    return pins


def lock_text(freeze: str) -> str:
    """requirements.lock's text from ``pip freeze --exclude-editable`` output (its order), the project left out."""
    lines = [line.strip() for line in freeze.splitlines()
             if "==" in line and canonical(line.split("==", 1)[0]) not in PROJECT_NAMES]
    lines = [re.sub(r"^(torch==[0-9.]+)\+cpu$", r"\1", line) for line in lines]
    torch = parse_pins("\n".join(lines)).get("torch", "?")
    return LOCK_HEADER.format(torch=torch) + "\n".join(lines) + "\n"


def freeze(python: Path) -> str:
    """``pip freeze --exclude-editable`` of the environment whose interpreter is ``python``."""
    return subprocess.run([str(python), "-m", "pip", "freeze", "--exclude-editable"], check=True,
                          capture_output=True, text=True).stdout


def version_rows(lock: Mapping[str, str], latest: Mapping[str, str],
                 published: Mapping[str, Mapping[str, str | None]] | None = None) -> list[dict[str, Any]]:
    """One row per package: the field libraries and the pinned ones first, then every other package that differs.

    ``published`` (from the install step) adds each field library's newest release on the index and, where that is
    not the one installed, pip's reason.
    """
    named = [canonical(n) for n in (*FIELD_LIBRARIES, *PINNED)]
    others = sorted(n for n in set(lock) | set(latest) if n not in named and lock.get(n) != latest.get(n))
    published = published or {}
    return [{"package": n, "lock": lock.get(n), "latest": latest.get(n), "field": n in named,
             "changed": lock.get(n) != latest.get(n), "published": published.get(n, {}).get("published"),
             "why_not": published.get(n, {}).get("why_not")} for n in (*named, *others)]


# --------------------------------------------------------------------------- the environment
def constraint_file(venv: Path) -> Path:
    """The pip constraints file that holds torch at the lock's version inside ``venv``."""
    return venv / "torch-constraint.txt"


def install_commands(venv: Path, project: Path, torch: str, base_python: str = sys.executable) -> list[list[str]]:
    """The commands that create ``venv`` (if missing) and bring it to the newest releases, torch held at ``torch``
    by ``constraint_file(venv)`` (which ``install`` writes)."""
    python = str(venv / "bin" / "python")
    cmds = [] if (venv / "bin" / "python").exists() else [[base_python, "-m", "venv", str(venv)]]
    return cmds + [
        [python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [python, "-m", "pip", "install", "--quiet", f"torch=={torch}"],
        [python, "-m", "pip", "install", "--quiet", "--upgrade", "--upgrade-strategy", "eager",
         "-c", str(constraint_file(venv)), "-e", f"{project}[{EXTRAS}]", *FIELD_LIBRARIES],
    ]


def published_version(python: Path, name: str) -> str | None:
    """The newest release of ``name`` on the package index, as ``pip index versions`` reports it (None if unknown)."""
    out = subprocess.run([str(python), "-m", "pip", "index", "versions", name], capture_output=True, text=True).stdout
    match = re.search(rf"^{re.escape(name)} \(([^)]+)\)", out, flags=re.IGNORECASE | re.MULTILINE)
    return match.group(1) if match else None


def why_not_installable(python: Path, name: str, version: str) -> str:
    """pip's first error line for installing ``name==version`` here (a dry run), or '' when it would install."""
    done = subprocess.run([str(python), "-m", "pip", "install", "--dry-run", "--quiet", f"{name}=={version}"],
                          capture_output=True, text=True)
    errors = [line.removeprefix("ERROR: ") for line in done.stderr.splitlines() if line.startswith("ERROR:")]
    return errors[0] if errors else ""


def record_published(venv: Path) -> dict[str, dict[str, str | None]]:
    """For each field library: newest published release, and why it is not installed where it is not."""
    python = venv / "bin" / "python"
    installed = parse_pins(freeze(python))
    out = {}
    for name in FIELD_LIBRARIES:
        newest = published_version(python, name)
        here = installed.get(canonical(name))
        out[canonical(name)] = {"published": newest,
                                "why_not": why_not_installable(python, name, newest) if newest and newest != here
                                else None}
    R.write_json_atomic(venv / PUBLISHED_FILE, out)
    return out


def install(venv: Path, project: Path, lock: Path) -> int:
    """Create or upgrade ``venv``, then record the newest published releases; return pip's exit code."""
    pins = parse_pins(lock.read_text(encoding="utf-8"))
    if "torch" not in pins:
        raise ValueError(f"{lock} pins no torch version; it must (the CPU build the course is tested with)")
    for cmd in install_commands(venv, project, pins["torch"]):
        print("$", " ".join(cmd), flush=True)
        code = subprocess.run(cmd).returncode
        if code:
            return code
        if cmd[-1].startswith("torch=="):  # torch is in: hold it there for the upgrade that follows
            constraint_file(venv).write_text(f"torch=={pins['torch']}\n", encoding="utf-8")
    behind = {n: p for n, p in record_published(venv).items() if p["why_not"] is not None}
    for name, info in behind.items():
        print(f"{name} {info['published']} is published but not installed: {info['why_not'] or 'pip chose another'}")
    return 0


# --------------------------------------------------------------------------- what moved
def notebook_warnings(notebook: Path) -> set[str]:
    """The ``Category: message`` warnings in an executed notebook's stderr outputs (file and line left out)."""
    found = set()
    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    for cell in cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                text = "".join(out.get("text", []))
                found |= {f"{m.group(1)}: {m.group(2).strip()}" for m in map(WARNING_LINE.search, text.splitlines())
                          if m}
    return found


def executed_warnings(executed: Path) -> dict[str, set[str]]:
    """``{notebook: warnings}`` over the executed notebooks in ``executed``."""
    return {nb.stem: notebook_warnings(nb) for nb in sorted(executed.glob("*.ipynb"))}


def new_warnings(lock: Mapping[str, set[str]], latest: Mapping[str, set[str]]) -> dict[str, list[str]]:
    """The warnings each notebook prints with the latest releases and not with the lock."""
    out = {nb: sorted(found - lock.get(nb, set())) for nb, found in latest.items()}
    return {nb: found for nb, found in out.items() if found}


def seed_spreads(spread: Mapping[str, Any]) -> dict[tuple[str, str], tuple[float, float]]:
    """``{(notebook, figure): (min, max)}`` over the seeds of a spread.json."""
    return {(r["notebook"], r["figure"]): (r["min"], r["max"]) for r in spread.get("rows", [])}


def figure_moves(lock_bands: Mapping[str, Mapping[str, Any]], latest_bands: Mapping[str, Mapping[str, Any]],
                 spreads: Mapping[tuple[str, str], tuple[float, float]]) -> list[dict[str, Any]]:
    """Each banded figure of both runs: lock and latest value, run-to-run spread, and whether it moved beyond it.

    The spread is the range of the figure over the seeds and the lock's run; a figure with no seed range (not in
    spread.json) has spread 0, so any change beyond rounding counts as a move.
    """
    rows = []
    for nb, figures in sorted(latest_bands.items()):
        for name, band in sorted(figures.items()):
            before = lock_bands.get(nb, {}).get(name)
            if before is None:
                continue
            old, new = float(before["value"]), float(band["value"])
            low, high = spreads.get((nb, name), (old, old))
            spread = max(high, old) - min(low, old)
            rows.append({"notebook": nb, "figure": name, "lock": old, "latest": new, "spread": spread,
                         "seeded": (nb, name) in spreads, "passed": bool(band.get("passed", False)),
                         "moved": abs(new - old) > spread + ABS_TOL * max(1.0, abs(old))})
    return rows


# --------------------------------------------------------------------------- report
def render_drift(versions: Sequence[Mapping[str, Any]], runs: Mapping[str, str],
                 moves: Sequence[Mapping[str, Any]], warned: Mapping[str, Sequence[str]], have_spread: bool) -> str:
    """DRIFT.md: versions against the lock, notebook runs, figures that moved, new warnings."""
    changed = [v for v in versions if v["changed"]]
    failed = [nb for nb, status in runs.items() if status != "passed"]
    moved = [m for m in moves if m["moved"]]
    lines = [
        "# llm-hub: the course on the newest releases",
        "",
        f"{len(changed)} package(s) differ from requirements.lock; {len(failed)} of {len(runs)} notebook(s) failed; "
        f"{len(moved)} banded figure(s) moved beyond their run-to-run spread; "
        f"{sum(map(len, warned.values()))} new warning(s).",
        "",
        "## Versions",
        "",
        "| package | lock | latest | |",
        "|---|---|---|---|",
    ]
    lines += [f"| {v['package']}{' (field)' if v['field'] else ''} | {v['lock'] or '–'} | {v['latest'] or '–'} | "
              f"{'changed' if v['changed'] else ''} |" for v in versions]
    behind = [v for v in versions if v.get("why_not") is not None]
    if behind:
        lines += ["", "Published but not installed (the newest set that installs together was taken):", ""]
        lines += [f"- {v['package']} {v['published']}: {v['why_not'] or 'pip resolved an older release'}"
                  for v in behind]
    lines += ["", "## Notebook runs", "", "| notebook | latest |", "|---|---|"]
    lines += [f"| {nb} | {status} |" for nb, status in sorted(runs.items())]
    lines += ["", "## Figures that moved", ""]
    if not have_spread:
        lines += ["No build/seeds/spread.json: run `make seeds` for the run-to-run spread; without it any change "
                  "counts as a move.", ""]
    lines += ["A figure moved when its latest value differs from the lock's by more than its range over the seeds "
              "and the lock's run.", ""]
    if moved:
        lines += ["| notebook | figure | lock | latest | spread | band |", "|---|---|---|---|---|---|"]
        lines += [f"| {m['notebook']} | {m['figure']} | {R.format_value(m['lock'])} | {R.format_value(m['latest'])} "
                  f"| {R.format_value(m['spread'])} | {'held' if m['passed'] else 'FAILED'} |" for m in moved]
    else:
        lines.append(f"None of the {len(moves)} banded figures moved.")
    lines += ["", "## New warnings", ""]
    if warned:
        for nb, found in sorted(warned.items()):
            lines += [f"- **{nb}**", *[f"  - `{w}`" for w in found]]
    else:
        lines.append("None: the notebooks print no warning with the latest releases that they do not print with the "
                     "lock.")
    return "\n".join(lines) + "\n"


def require_baseline(build: Path) -> None:
    """Raise FileNotFoundError with the fix when the lock's run (the comparison's baseline) is missing."""
    if not (build / R.BANDS_FILE).is_file():
        raise FileNotFoundError(f"{build / R.BANDS_FILE} is missing: run make course first (the lock's run at the "
                                "committed defaults, the baseline of the comparison), or make seeds and compare with "
                                "one of its seeds (run --seed N)")


def write_drift(build: Path, latest_dir: Path, runs: Mapping[str, str], venv: Path, lock: Path,
                baseline: Path | None = None) -> Path:
    """Write DRIFT.md and drift.json into ``latest_dir`` for the latest run's ``runs`` ({notebook: status}) in the
    environment ``venv``, compared with the lock's run in ``baseline`` (default: ``build``, the last make course)."""
    baseline = build if baseline is None else baseline
    require_baseline(baseline)
    spread_file = build / seeds.SEEDS_DIR / seeds.SPREAD_FILE
    spreads = seed_spreads(json.loads(spread_file.read_text(encoding="utf-8"))) if spread_file.is_file() else {}
    published_file = venv / PUBLISHED_FILE
    published = json.loads(published_file.read_text(encoding="utf-8")) if published_file.is_file() else {}
    installed = parse_pins(freeze(venv / "bin" / "python"))
    versions = version_rows(parse_pins(lock.read_text(encoding="utf-8")), installed, published)
    moves = figure_moves(R.load_bands(baseline), R.load_bands(latest_dir), spreads)
    warned = new_warnings(executed_warnings(baseline / course.EXECUTED_DIR),
                          executed_warnings(latest_dir / course.EXECUTED_DIR))
    against = R.display_path(baseline)
    R.write_json_atomic(latest_dir / "drift.json", {"versions": versions, "runs": dict(runs), "moves": moves,
                                                    "new_warnings": warned, "baseline": against})
    out = latest_dir / DRIFT_FILE
    text = render_drift(versions, runs, moves, warned, bool(spreads))
    out.write_text(text.replace("\n\n", f"\n\nCompared with the lock's run in `{against}`.\n\n", 1), encoding="utf-8")
    return out


def run_latest(args: argparse.Namespace, project: Path, lock: Path) -> int:
    """Run the course with this interpreter (the latest environment's) into build/latest/, then write DRIFT.md."""
    build = R.find_build_dir()
    latest_dir = (args.build_dir or build / LATEST_DIR).resolve()
    notebooks = course.discover_notebooks((args.notebooks or project / "notebooks").resolve(), args.only)
    baseline = build if args.seed is None else build / seeds.SEEDS_DIR / f"seed{args.seed}"
    require_baseline(baseline)
    extra = [] if args.seed is None else ["-p", "SEED", str(args.seed)]
    runs = course.run_course(notebooks, latest_dir, args.kernel, extra, args.jobs, timeout=args.timeout,
                             cell_timeout=args.cell_timeout)
    course.write_report(runs, latest_dir)
    bands = R.load_bands(latest_dir)
    statuses = {run.name: course.notebook_status(run, bands.get(run.name, {})) for run in runs}
    out = write_drift(build, latest_dir, statuses, Path(sys.prefix), lock, baseline)
    print(f"report: {R.display_path(out)}")
    failed = [nb for nb, status in statuses.items() if status != "passed"]
    if failed:
        print(f"FAILED with the latest releases: {', '.join(failed)}")
        return 1
    print(f"all {len(statuses)} notebooks passed with the latest releases")
    return 0


# --------------------------------------------------------------------------- command line
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command's options."""
    parser = argparse.ArgumentParser(prog="python -m hubhelpers.tooling.releases", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    lock = sub.add_parser("lock", help="write requirements.lock from an environment")
    lock.add_argument("--python", type=Path, default=Path(sys.executable), help="the environment's interpreter")
    install_cmd = sub.add_parser("install", help=f"create or upgrade {LATEST_VENV}")
    install_cmd.add_argument("--venv", type=Path, default=None, help=f"default: {LATEST_VENV}")
    run = sub.add_parser("run", help=f"run the course here into build/{LATEST_DIR}/, write {DRIFT_FILE}")
    course.add_run_options(run, build_default=f"build/{LATEST_DIR}/")
    run.add_argument("--seed", type=int, default=None, metavar="N",
                     help="run at SEED N and compare with make seeds' run at N (default: the committed defaults, "
                          "compared with the last make course)")
    for command in sub.choices.values():
        command.add_argument("--lock", type=Path, default=None, help=f"default: {LOCK_FILE}")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    args = parse_args(argv)
    project = R.find_project_root() or Path.cwd()
    lock = args.lock or project / LOCK_FILE
    try:
        if args.command == "lock":
            lock.write_text(lock_text(freeze(args.python)), encoding="utf-8")
            print(f"wrote {R.display_path(lock)} from {args.python}")
            return 0
        if args.command == "install":
            return install((args.venv or project / LATEST_VENV).resolve(), project, lock)
        return run_latest(args, project, lock)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
