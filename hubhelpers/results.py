"""Results API: turn each notebook's measured effect into a recorded, checked figure.

In a notebook::

    res = Results("01_lm_probability", shipped=is_shipped(MODEL))
    res.check("model_perplexity", 12.3, at_most=20.0, kind=SHIPPED)  # record, then check against the band
    res.record("perplexity_by_order", {1: 30.1, 2: 14.2})  # a figure without a band
    res.savefig(fig, "perplexity_by_order")                 # build/figures/01_lm_probability/...png

Figures are merged into ``build/results.json`` as ``{notebook_stem: {figure: value}}`` and the
bands into ``build/bands.json`` as ``{notebook_stem: {figure: {at_least, at_most, value, passed, kind, checked}}}``,
each write atomic (temp file + ``os.replace``) under one file lock shared with the course runner.

Every band says which kind it is:

- ``MECHANISM``: true for any model (a hand-written SGD step equals ``torch.optim.SGD``, a merge is exact, recall@k
  of a retriever that does not depend on the reader): a figure outside it raises an AssertionError, always;
- ``SHIPPED``: what the shipped TinyWorld model (and the shipped encoder) show. It raises when the notebook runs the
  shipped model (``shipped=True``); with any other model the value and the band are recorded and one line says
  "not checked for this model", so a notebook with another model always runs to its end.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock

from hubhelpers.params import check_int

Scalar = float | int | bool
Value = Scalar | dict[str, Scalar]

BUILD_DIR_ENV = "HUBHELPERS_BUILD_DIR"
PROJECT_NAME = "llm-hub"
RESULTS_FILE = "results.json"
BANDS_FILE = "bands.json"
LOCK_FILE = ".results.lock"
FIGURES_DIR = "figures"
LOCK_TIMEOUT_S = 60.0

MECHANISM = "mechanism"
SHIPPED = "shipped"
BAND_KINDS = (MECHANISM, SHIPPED)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
_PROJECT_RE = re.compile(r'^\s*name\s*=\s*["\']' + re.escape(PROJECT_NAME) + r'["\']', re.MULTILINE)


# --------------------------------------------------------------------------- locating build/
def find_project_root(start: Path | None = None) -> Path | None:
    """Return the nearest directory at or above ``start`` whose pyproject.toml declares llm-hub."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file() and _PROJECT_RE.search(pyproject.read_text(encoding="utf-8")):
            return directory
    return None


def find_build_dir(start: Path | None = None) -> Path:
    """Return $HUBHELPERS_BUILD_DIR, else the project root's build/, else ./build."""
    env = os.environ.get(BUILD_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    root = find_project_root(start)
    return (root / "build") if root else (Path.cwd() / "build").resolve()


# --------------------------------------------------------------------------- validation
def display_path(path: str | os.PathLike[str]) -> str:
    """`path` as a learner should see it: relative to the project, else '~/...', else '…/parent/name'.

    Outputs never show a machine's absolute paths (they are noise to a reader and leak user names).
    """
    path = Path(path).resolve()
    for base, prefix in ((find_project_root(), ""), (Path.home().resolve(), "~/")):
        if base is not None and path.is_relative_to(base) and path != base:
            return prefix + str(path.relative_to(base))
    return "…/" + "/".join(path.parts[-2:])


def validate_name(name: object, what: str = "figure") -> str:
    """Return ``name`` if it is a safe figure/notebook name, else raise ValueError naming it."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(
            f"bad {what} name {name!r}: use 1-100 characters from letters, digits, '_', '.', '-', "
            "starting with a letter or digit (e.g. 'model_perplexity')"
        )
    return name


def _to_scalar(name: str, value: object) -> Scalar:
    """Convert a Python/numpy/torch scalar to float, int or bool, rejecting non-finite values."""
    if hasattr(value, "item") and not isinstance(value, (bool, int, float)):
        try:
            value = value.item()  # numpy scalar or one-element tensor
        except (ValueError, RuntimeError) as err:
            raise TypeError(f"figure {name!r}: value {value!r} is not a single number") from err
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"figure {name!r}: value {number!r} is not finite; record a finite number")
        return number
    raise TypeError(
        f"figure {name!r}: value {value!r} of type {type(value).__name__} is not accepted; "
        "accepted: float, int, bool, or a mapping of them"
    )


def normalize_value(name: str, value: object) -> Value:
    """Validate a figure value: a finite scalar or a flat mapping of str/int keys to scalars."""
    if isinstance(value, Mapping):
        if not value:
            raise ValueError(f"figure {name!r}: the mapping is empty; record at least one entry")
        out: dict[str, Scalar] = {}
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(f"figure {name!r}: mapping key {key!r} must be a str or an int")
            out[str(key)] = _to_scalar(f"{name}[{key}]", item)
        return out
    return _to_scalar(name, value)


def _check_bound(name: str, label: str, bound: object) -> float | None:
    """Return a band bound as a finite float (or None), else raise naming it."""
    if bound is None:
        return None
    if isinstance(bound, bool) or not isinstance(bound, numbers.Real) or not math.isfinite(float(bound)):
        raise ValueError(f"band of {name!r}: {label}={bound!r} must be a finite number or None")
    return float(bound)


def validate_band(name: str, at_least: object, at_most: object) -> tuple[float | None, float | None]:
    """Return the validated (at_least, at_most) band; at least one bound, low <= high."""
    low, high = _check_bound(name, "at_least", at_least), _check_bound(name, "at_most", at_most)
    if low is None and high is None:
        raise ValueError(f"band of {name!r}: give at_least=, at_most= or both")
    if low is not None and high is not None and low > high:
        raise ValueError(f"band of {name!r}: empty band, at_least={low} > at_most={high}")
    return low, high


def validate_kind(name: str, kind: object) -> str:
    """Return ``kind`` if it is one of BAND_KINDS, else raise naming the figure and the kinds accepted."""
    if kind not in BAND_KINDS:
        raise ValueError(f"band of {name!r}: kind={kind!r}; accepted: {', '.join(map(repr, BAND_KINDS))}")
    return kind


def in_band(value: float, at_least: float | None, at_most: float | None) -> bool:
    """Return True when ``value`` lies in the closed band [at_least, at_most]."""
    return (at_least is None or value >= at_least) and (at_most is None or value <= at_most)


def format_band(at_least: float | None, at_most: float | None) -> str:
    """Render a band for humans, e.g. '>= 0.85', '<= 20', '[0.1, 0.9]'."""
    if at_least is not None and at_most is not None:
        return f"[{at_least:g}, {at_most:g}]"
    return f">= {at_least:g}" if at_least is not None else f"<= {at_most:g}"


def format_value(value: Any) -> str:
    """Render a figure value compactly for messages and the report."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


# --------------------------------------------------------------------------- atomic JSON store
def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object from ``path``; a missing file reads as {}."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8") or "{}")
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a {type(data).__name__}, expected a JSON object")
    return data


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, then os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def results_lock(build_dir: Path) -> FileLock:
    """Return the file lock guarding results.json and bands.json in ``build_dir``."""
    build_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(build_dir / LOCK_FILE), timeout=LOCK_TIMEOUT_S)


def update_json(build_dir: Path, filename: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``change`` to the JSON object in build_dir/filename under the lock, atomically."""
    path = build_dir / filename
    with results_lock(build_dir):
        data = read_json(path)
        change(data)
        write_json_atomic(path, data)


def merge_entries(build_dir: Path, filename: str, notebook: str, entries: Mapping[str, Any]) -> None:
    """Merge ``entries`` into ``{notebook: {...}}`` of build_dir/filename."""
    update_json(build_dir, filename, lambda data: data.setdefault(notebook, {}).update(entries))


TIMING_RE = re.compile(r"(?:^|_)(?:s|ms|seconds|latency|speedup|per_s|rss_mb|kwh|co2eq_kg|gflops)$"
                       r"|_per_s_|_ms_|^latency_")


def is_timing(name: str) -> bool:
    """True for figures that measure time, speed, energy or process memory: they differ between runs by nature."""
    return bool(TIMING_RE.search(name))


def comparable_figures(results: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """results.json without its timing figures: what two runs with the same parameters must reproduce."""
    return {nb: {k: v for k, v in figs.items() if not is_timing(k)} for nb, figs in results.items()}


def load_results(build_dir: Path) -> dict[str, dict[str, Any]]:
    """Return all recorded figures, ``{notebook: {figure: value}}``."""
    return read_json(Path(build_dir) / RESULTS_FILE)


def load_bands(build_dir: Path) -> dict[str, dict[str, Any]]:
    """Return all recorded bands, ``{notebook: {figure: {at_least, at_most, value, passed, kind, checked}}}``."""
    return read_json(Path(build_dir) / BANDS_FILE)


def record_run_metrics(build_dir: Path, notebook: str, wall_s: float, peak_rss_mb: float) -> None:
    """Record the runner's measurements (wall time, peak memory) for one notebook."""
    validate_name(notebook, "notebook")
    metrics = {"wall_s": round(float(wall_s), 2), "peak_rss_mb": round(float(peak_rss_mb), 1)}
    merge_entries(Path(build_dir), RESULTS_FILE, notebook, metrics)


def clear_notebook(build_dir: Path, notebook: str) -> None:
    """Forget one notebook's figures, bands and saved PNGs (before re-running it)."""
    validate_name(notebook, "notebook")
    build_dir = Path(build_dir)
    for filename in (RESULTS_FILE, BANDS_FILE):
        update_json(build_dir, filename, lambda data: data.pop(notebook, None))
    shutil.rmtree(build_dir / FIGURES_DIR / notebook, ignore_errors=True)


# --------------------------------------------------------------------------- the notebook API
class Results:
    """Record a notebook's figures, check them against bands, save its plots for the report."""

    def __init__(self, notebook: str, build_dir: str | os.PathLike[str] | None = None, *,
                 shipped: bool = True) -> None:
        """Bind to ``notebook`` (its file stem, e.g. '01_lm_probability'); build dir is found lazily.

        ``shipped``: the notebook runs the shipped model(s), so SHIPPED bands are raised (``models.is_shipped``).
        """
        self.notebook = validate_name(notebook, "notebook")
        if not isinstance(shipped, bool):
            raise ValueError(f"shipped must be True or False, got {shipped!r}")
        self.shipped = shipped
        self._build_dir = Path(build_dir).resolve() if build_dir is not None else None
        self._values: dict[str, Value] = {}

    def __repr__(self) -> str:
        """Show the notebook and where its figures go."""
        return f"Results({self.notebook!r}, build_dir={display_path(self.build_dir)!r}, shipped={self.shipped})"

    @property
    def build_dir(self) -> Path:
        """The build directory figures are written to."""
        return self._build_dir if self._build_dir is not None else find_build_dir()

    def record(self, name: str, value: object) -> Value:
        """Record figure ``name`` = ``value`` (scalar or mapping of scalars) and return it."""
        validate_name(name)
        clean = normalize_value(name, value)
        self._values[name] = clean
        merge_entries(self.build_dir, RESULTS_FILE, self.notebook, {name: clean})
        return clean

    def value(self, name: str) -> Value:
        """Return the recorded value of figure ``name`` (this session first, then results.json)."""
        validate_name(name)
        if name in self._values:
            return self._values[name]
        stored = load_results(self.build_dir).get(self.notebook, {})
        if name not in stored:
            known = sorted(set(stored) | set(self._values))
            raise KeyError(
                f"figure {name!r} was not recorded for notebook {self.notebook!r}; "
                f"call record({name!r}, value) first (recorded: {known})"
            )
        return stored[name]

    def expect(self, name: str, *, at_least: float | None = None, at_most: float | None = None,
               kind: str) -> Scalar:
        """Check recorded scalar ``name`` against [at_least, at_most] and record the band.

        A MECHANISM band raises AssertionError when the value lies outside; a SHIPPED band does so only for the
        shipped model, and otherwise prints one line saying it was not checked for this model.
        """
        low, high = validate_band(name, at_least, at_most)
        validate_kind(name, kind)
        value = self.value(name)
        if isinstance(value, Mapping):
            raise TypeError(
                f"expect({name!r}): the figure is a mapping {format_value(value)}; bands apply to a "
                f"scalar only: record one entry as its own figure, e.g. record('{name}_<key>', value)"
            )
        passed = in_band(float(value), low, high)
        checked = kind == MECHANISM or self.shipped
        band = {"at_least": low, "at_most": high, "value": value, "passed": passed, "kind": kind, "checked": checked}
        merge_entries(self.build_dir, BANDS_FILE, self.notebook, {name: band})
        if not checked:
            print(f"{name} = {format_value(value)}: the shipped model's band is {format_band(low, high)}; "
                  f"not checked for this model")
        elif not passed:
            raise AssertionError(
                f"{self.notebook}: figure {name!r} = {format_value(value)} is outside the expected band "
                f"{format_band(low, high)} ({kind} check)"
            )
        return value

    def check(self, name: str, value: object, *, at_least: float | None = None,
              at_most: float | None = None, kind: str) -> Scalar:
        """Record figure ``name`` = ``value`` and check it against [at_least, at_most] (record, then expect)."""
        validate_band(name, at_least, at_most)  # a bad band or kind fails before anything is written
        validate_kind(name, kind)
        self.record(name, value)
        return self.expect(name, at_least=at_least, at_most=at_most, kind=kind)

    def figures(self) -> dict[str, Value]:
        """Return every figure recorded so far for this notebook (from results.json)."""
        return dict(load_results(self.build_dir).get(self.notebook, {}))

    def savefig(self, fig: Any, name: str, *, dpi: int = 110) -> Path:
        """Save matplotlib figure ``fig`` as build/figures/<notebook>/<name>.png and return the path."""
        validate_name(name, "plot")
        if not callable(getattr(fig, "savefig", None)):
            raise TypeError(f"savefig({name!r}): expected a matplotlib Figure, got {type(fig).__name__}")
        check_int("dpi", dpi)
        path = self.build_dir / FIGURES_DIR / self.notebook / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        return path
