"""Several seeds, one report: the whole course once per sampling seed, and how far each band's figure moves.

Usage::

    python -m hubhelpers.tooling.seeds                        # seeds 1 2 3 4, every notebook
    python -m hubhelpers.tooling.seeds --seeds 1 --only 05 07 # one seed, two notebooks
    python -m hubhelpers.tooling.seeds --seeds 1 2 --build-dir /tmp/seeds
    python -m hubhelpers.tooling.seeds --report-only           # the report again from the seeds' folders

Each seed runs through the course runner (``hubhelpers.tooling.course``) with ``-p SEED n``, which reaches only the
notebooks that declare SEED, into ``<build-dir>/seed<n>/`` (its own results.json, bands.json, REPORT.md). The seeds'
bands are then gathered into ``<build-dir>/spread.json`` and ``<build-dir>/REPORT.md``: one row per banded figure
with its value at each seed, min / median / max, and the smallest margin to the band's edge, failures first, then
the figures within 5% of an edge. The exit code is 1 when a checked band failed (or a notebook stopped) at any seed,
each named with its seed. ``--report-only`` runs nothing and writes the report from what the seed folders hold
(after, say, rerunning two changed notebooks with ``--only``): each notebook's status is then read from its executed
copy (an error output or an unexecuted cell: it stopped) and its bands.

The margin of a value to a band is the smaller of its margins to the band's edges, each a fraction of that edge's
magnitude: ``(value - at_least) / |at_least|`` and ``(at_most - value) / |at_most|``; negative means outside. An
edge at 0 has no magnitude to scale by, so the margin to it is the plain distance ``value - 0`` (``0 - value``) in
the figure's own units.

A margin under 5% is a warning only where the seed could carry the figure across the edge. So each row also has the
figure's *spread* (max - min over the seeds) and its distance to the edge in spreads. A figure within 5% of an edge
is "near" when that distance is under ``CLEAR_SPREADS`` spreads (or there is one seed only, so no spread); it is
"steady" when the seeds move it far less than its distance to the edge (at least ``CLEAR_SPREADS`` spreads away,
e.g. a perplexity ratio of 1.0001 against <= 1.01, or a figure the seed does not change at all). A value lying on its
band's edge at every seed (a count or yes/no check such as ``mismatches <= 0`` or ``reproducible >= 1``) is "exact".
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hubhelpers import results as R
from hubhelpers.tooling import course

DEFAULT_SEEDS = (1, 2, 3, 4)
SEEDS_DIR = "seeds"
SPREAD_FILE = "spread.json"
NEAR_EDGE = 0.05  # a figure whose smallest margin is below this fraction of its band edge is flagged...
CLEAR_SPREADS = 3.0  # ...unless it lies at least this many seed spreads (max - min over the seeds) from the edge
STATUS_ORDER = ("fail", "near", "steady", "exact", "ok", "not checked")

Bands = Mapping[str, Mapping[str, Mapping[str, Any]]]  # {notebook: {figure: band}} of one seed


# --------------------------------------------------------------------------- margins and rows
def band_edges(band: Mapping[str, Any]) -> list[tuple[float, bool]]:
    """The edges of ``band`` as (edge, above): ``above`` when the value must lie at or above it (at_least)."""
    return [(band[key], key == "at_least") for key in ("at_least", "at_most") if band.get(key) is not None]


def signed_distance(value: float, edge: float, above: bool) -> float:
    """How far ``value`` lies inside one band edge, in the figure's units; negative when outside."""
    return value - edge if above else edge - value


def edge_margin(value: float, edge: float, above: bool) -> float:
    """Margin of ``value`` to one band edge (``above``: it must lie at or above it), a fraction of |edge|."""
    distance = signed_distance(value, edge, above)
    return distance / abs(edge) if edge else distance


def margin(value: float, band: Mapping[str, Any]) -> float:
    """The smaller margin of ``value`` to the edges of ``band`` ({at_least, at_most}); negative when outside."""
    return min(edge_margin(value, edge, above) for edge, above in band_edges(band))


def edge_distance(value: float, band: Mapping[str, Any]) -> float:
    """The plain distance of ``value`` to the nearer edge of ``band``, in the figure's units; negative when outside."""
    return min(signed_distance(value, edge, above) for edge, above in band_edges(band))


def on_edge(value: float, band: Mapping[str, Any]) -> bool:
    """True when ``value`` lies exactly on an edge of ``band`` (an equality check, e.g. 'mismatches <= 0')."""
    return any(value == edge for edge, _ in band_edges(band))


def spreads_to_edge(distance: float, spread: float, n_seeds: int) -> float | None:
    """The distance to the edge in seed spreads: inf when the seeds never move the figure, None with one seed."""
    if n_seeds < 2:
        return None
    return distance / spread if spread > 0 else float("inf")


def row_status(margin_min: float, spreads: float | None, failed: Sequence[int], exact: bool, checked: bool) -> str:
    """'fail', 'near', 'steady', 'exact', 'ok' or 'not checked' for one figure's seeds (see the module docstring)."""
    if failed:
        return "fail"
    if not checked:
        return "not checked"
    if exact:
        return "exact"
    if margin_min >= NEAR_EDGE:
        return "ok"
    return "steady" if spreads is not None and spreads >= CLEAR_SPREADS else "near"


def figure_row(notebook: str, figure: str, by_seed: Mapping[int, Mapping[str, Any] | None]) -> dict[str, Any]:
    """One figure across the seeds: its band, value per seed, min / median / max, smallest margin and status.

    ``by_seed`` maps each seed to the figure's band record at that seed (None when the notebook stopped before it).
    """
    present = {seed: band for seed, band in by_seed.items() if band is not None}
    first = next(iter(present.values()))
    values = {seed: float(band["value"]) for seed, band in present.items()}
    margins = {seed: margin(values[seed], band) for seed, band in present.items()}
    failed = [seed for seed, band in present.items() if band.get("checked", True) and not band.get("passed", False)]
    exact = all(on_edge(values[seed], band) for seed, band in present.items())
    checked = all(band.get("checked", True) for band in present.values())
    edges = {(band.get("at_least"), band.get("at_most")) for band in present.values()}
    worst = min(margins, key=margins.__getitem__)
    spread = max(values.values()) - min(values.values())
    spreads = spreads_to_edge(min(edge_distance(values[s], b) for s, b in present.items()), spread, len(values))
    return {
        "notebook": notebook, "figure": figure, "kind": first.get("kind", R.MECHANISM),
        "at_least": first.get("at_least"), "at_most": first.get("at_most"), "band_varies": len(edges) > 1,
        "values": {str(seed): values.get(seed) for seed in by_seed},
        "min": min(values.values()), "median": statistics.median(values.values()), "max": max(values.values()),
        "margin": margins[worst], "worst_seed": worst, "spread": spread,
        "spreads_to_edge": None if spreads is None or spreads == float("inf") else spreads,
        "failed_seeds": failed, "missing_seeds": [seed for seed in by_seed if seed not in present],
        "status": row_status(margins[worst], spreads, failed, exact, checked),
    }


def spread_rows(bands_by_seed: Mapping[int, Bands], notebooks: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One row per banded figure of ``notebooks`` (default: all), failures first, then near an edge, then by name."""
    names = {(nb, fig) for bands in bands_by_seed.values() for nb, figs in bands.items() for fig in figs
             if notebooks is None or nb in notebooks}
    rows = [figure_row(nb, fig, {seed: bands.get(nb, {}).get(fig) for seed, bands in bands_by_seed.items()})
            for nb, fig in names]
    return sorted(rows, key=lambda r: (STATUS_ORDER.index(r["status"]), r["notebook"], r["figure"]))


def run_statuses(runs_by_seed: Mapping[int, Sequence[course.RunResult]],
                 bands_by_seed: Mapping[int, Bands]) -> dict[str, dict[str, str]]:
    """``{notebook: {seed: 'passed' | 'failed' | 'timed out'}}`` from each seed's runs and bands."""
    out: dict[str, dict[str, str]] = {}
    for seed, runs in runs_by_seed.items():
        for run in runs:
            status = course.notebook_status(run, bands_by_seed.get(seed, {}).get(run.name, {}))
            out.setdefault(run.name, {})[str(seed)] = status
    return out


def recorded_status(build_dir: Path, notebook: str, bands: Mapping[str, Any]) -> str:
    """A notebook's status from a seed folder: 'not run', 'failed' (an error, a cell never reached, a band) or
    'passed'."""
    executed = build_dir / course.EXECUTED_DIR / f"{notebook}.ipynb"
    if not executed.is_file():
        return "not run"
    stopped = course.executed_stopped(json.loads(executed.read_text(encoding="utf-8")))
    return "failed" if stopped or course.checked_failures(bands) else "passed"


def failures(rows: Sequence[Mapping[str, Any]], statuses: Mapping[str, Mapping[str, str]]) -> list[str]:
    """One line per failure: a checked band outside at a seed, or a notebook that stopped there for another reason."""
    lines = [f"{r['notebook']}: figure {r['figure']!r} = {R.format_value(r['values'][str(seed)])} outside "
             f"{R.format_band(r['at_least'], r['at_most'])} at seed {seed}"
             for r in rows for seed in r["failed_seeds"]]
    banded = {(r["notebook"], str(seed)) for r in rows for seed in r["failed_seeds"]}
    lines += [f"{nb}: {status} at seed {seed}" for nb, by_seed in sorted(statuses.items())
              for seed, status in by_seed.items() if status != "passed" and (nb, seed) not in banded]
    return lines


# --------------------------------------------------------------------------- report
def _percent(fraction: float) -> str:
    """A margin as a signed percentage, e.g. '+12.3%'."""
    return f"{fraction:+.1%}"


def status_text(row: Mapping[str, Any]) -> str:
    """The report's status cell of one row."""
    seeds = ", ".join(map(str, row["failed_seeds"]))
    text = {
        "fail": f"❌ FAIL at seed {seeds}",
        "near": f"⚠️ within {NEAR_EDGE:.0%} of an edge (seed {row['worst_seed']})",
        "steady": ("✅ steady: the same at every seed" if row["spreads_to_edge"] is None else
                   f"✅ steady: {row['spreads_to_edge']:.0f} seed spreads from its edge"),
        "exact": "✅ exact (on its edge at every seed)",
        "ok": "✅",
        "not checked": "not checked for this model",
    }[row["status"]]
    return text + (f" · missing at seed {', '.join(map(str, row['missing_seeds']))}" if row["missing_seeds"] else "")


def render_spread(rows: Sequence[Mapping[str, Any]], statuses: Mapping[str, Mapping[str, str]],
                  seeds: Sequence[int]) -> str:
    """Render the seeds' REPORT.md: the notebook runs per seed, then one row per banded figure."""
    heads = [f"seed {s}" for s in seeds]
    lines = [
        "# llm-hub: the course at several seeds",
        "",
        f"Seeds {', '.join(map(str, seeds))}, each with `-p SEED n` for the notebooks that declare SEED; per-seed "
        "reports: " + " · ".join(f"[seed {s}](seed{s}/REPORT.md)" for s in seeds) + ".",
        "",
        "*Margin*: the smallest, over the seeds, of the value's distance to its band's nearer edge as a fraction of "
        "that edge's magnitude, `(value - at_least) / |at_least|` or `(at_most - value) / |at_most|` (negative: "
        "outside); to an edge at 0, the plain distance in the figure's units. *Spread*: max - min over the seeds. "
        f"A figure within {NEAR_EDGE:.0%} of an edge is *near* (⚠️) unless it lies at least {CLEAR_SPREADS:g} "
        "spreads from that edge (*steady*: the seed cannot carry it across, e.g. a ratio of 1.0001 against <= 1.01). "
        "*Exact*: on its edge at every seed (a count or yes/no check). Failures first, then near, then the rest.",
        "",
        "## Notebook runs",
        "",
        "| notebook | " + " | ".join(heads) + " |",
        "|---|" + "---|" * len(seeds),
    ]
    lines += [f"| {nb} | " + " | ".join(by_seed.get(str(s), "–") for s in seeds) + " |"
              for nb, by_seed in sorted(statuses.items())]
    lines += ["", "## Banded figures", "",
              "| notebook | figure | kind | band | " + " | ".join(heads)
              + " | min | median | max | spread | margin | status |",
              "|---|---|---|---|" + "---|" * len(seeds) + "---|---|---|---|---|---|"]
    for r in rows:
        band = R.format_band(r["at_least"], r["at_most"]) + (" (varies by seed)" if r["band_varies"] else "")
        values = [R.format_value(r["values"].get(str(s))) if r["values"].get(str(s)) is not None else "–"
                  for s in seeds]
        stats = [R.format_value(r[k]) for k in ("min", "median", "max", "spread")]
        lines.append(f"| {r['notebook']} | {r['figure']} | {r['kind']} | {band} | " + " | ".join(values + stats)
                     + f" | {_percent(r['margin'])} | {status_text(r)} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- running
def run_seed(seed: int, notebooks: Sequence[Path], root: Path, kernel: str,
             **limits: Any) -> list[course.RunResult]:
    """Run ``notebooks`` with ``-p SEED seed`` into root/seed<seed>/ and write its REPORT.md."""
    build_dir = root / f"seed{seed}"
    runs = course.run_course(notebooks, build_dir, kernel, ["-p", "SEED", str(seed)], **limits)
    course.write_report(runs, build_dir)
    return runs


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The seeds runner's options."""
    parser = argparse.ArgumentParser(prog="python -m hubhelpers.tooling.seeds", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS), metavar="N")
    parser.add_argument("--report-only", action="store_true", help="run nothing: the report from the seed folders")
    course.add_run_options(parser, build_default="build/seeds")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every seed, write spread.json and REPORT.md; 1 when a band failed at a seed, 2 on bad arguments."""
    from tqdm.auto import tqdm

    args = parse_args(argv)
    project = R.find_project_root() or Path.cwd()
    root = (args.build_dir or R.find_build_dir() / SEEDS_DIR).resolve()
    seeds = list(dict.fromkeys(args.seeds))
    try:
        notebooks = course.discover_notebooks((args.notebooks or project / "notebooks").resolve(), args.only)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not any("SEED" in course.declared_parameters(nb) for nb in notebooks):
        print("error: no selected notebook declares a SEED parameter", file=sys.stderr)
        return 2
    limits = {"timeout": args.timeout, "cell_timeout": args.cell_timeout, "jobs": args.jobs}
    runs_by_seed: dict[int, list[course.RunResult]] = {}
    for seed in ([] if args.report_only else tqdm(seeds, desc="seeds", unit="seed", file=sys.stderr)):
        runs_by_seed[seed] = run_seed(seed, notebooks, root, args.kernel, **limits)
    bands_by_seed = {seed: R.load_bands(root / f"seed{seed}") for seed in seeds}
    values_by_seed = {seed: R.load_results(root / f"seed{seed}") for seed in seeds}
    names = [nb.stem for nb in notebooks]
    rows = spread_rows(bands_by_seed, names)
    statuses = run_statuses(runs_by_seed, bands_by_seed) if not args.report_only else {
        nb: {str(s): recorded_status(root / f"seed{s}", nb, bands_by_seed[s].get(nb, {})) for s in seeds}
        for nb in names}
    failed = failures(rows, statuses)
    R.write_json_atomic(root / SPREAD_FILE, {
        "seeds": seeds, "near_edge": NEAR_EDGE, "clear_spreads": CLEAR_SPREADS, "rows": rows, "runs": statuses,
        "failures": failed,
        "wall_s": {nb: {str(s): values_by_seed[s].get(nb, {}).get("wall_s") for s in seeds} for nb in names},
    })
    (root / "REPORT.md").write_text(render_spread(rows, statuses, seeds), encoding="utf-8")
    near = [f"{r['notebook']}: {r['figure']} (margin {_percent(r['margin'])} at seed {r['worst_seed']})"
            for r in rows if r["status"] == "near"]
    print(f"\nreport: {R.display_path(root / 'REPORT.md')}")
    if near:
        print(f"{len(near)} figure(s) within {NEAR_EDGE:.0%} of a band edge:\n  " + "\n  ".join(near))
    if failed:
        print(f"FAILED at some seed ({len(failed)}):\n  " + "\n  ".join(failed))
        return 1
    print(f"every band held at seeds {', '.join(map(str, seeds))} ({len(rows)} banded figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
