"""Tests of the seeds runner: margins to a band's edges and the spread across seeds (end to end: test_course_runner)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubhelpers.tooling import course
from hubhelpers.tooling import seeds as S


def band(value: float, at_least: float | None = None, at_most: float | None = None, **extra: object) -> dict:
    """A bands.json record as Results.expect writes it (passed from the band, checked unless told)."""
    passed = (at_least is None or value >= at_least) and (at_most is None or value <= at_most)
    return {"at_least": at_least, "at_most": at_most, "value": value, "passed": passed, "kind": "mechanism",
            "checked": True, **extra}


def test_margin_is_a_fraction_of_the_nearer_edge() -> None:
    assert S.margin(0.9, band(0.9, at_least=0.8)) == pytest.approx(0.125)
    assert S.margin(15.0, band(15.0, at_most=20.0)) == pytest.approx(0.25)
    assert S.margin(-1.5, band(-1.5, at_least=-2.0)) == pytest.approx(0.25)  # the edge's magnitude, not its sign
    assert S.margin(1.0032, band(1.0032, 0.99, 1.01)) == pytest.approx((1.01 - 1.0032) / 1.01)  # the nearer edge
    assert S.margin(0.5, band(0.5, at_least=0.85)) == pytest.approx(-0.35 / 0.85)  # outside: negative
    assert S.margin(0.3, band(0.3, at_least=0.0)) == pytest.approx(0.3)  # an edge at 0: the plain distance
    assert S.margin(0.0, band(0.0, at_most=0)) == 0.0 and S.on_edge(0.0, band(0.0, at_most=0))
    assert not S.on_edge(0.0, band(0.0, at_most=1e-6))
    assert S.on_edge(1.0, band(1.0, at_least=1.0)) and S.on_edge(12, band(12, at_least=12.0))
    assert S.edge_distance(1.0032, band(1.0032, 0.99, 1.01)) == pytest.approx(1.01 - 1.0032)


def test_spreads_to_edge() -> None:
    assert S.spreads_to_edge(0.02, 0.0001, 4) == pytest.approx(200)
    assert S.spreads_to_edge(0.02, 0.0, 4) == float("inf")  # the seed never moves it
    assert S.spreads_to_edge(0.02, 0.0, 1) is None  # one seed: no spread to compare with


def test_near_an_edge_is_steady_only_far_from_it_in_seed_spreads() -> None:
    def status(*values: float, at_most: float = 1.01) -> str:
        [row] = S.spread_rows({i: {"08": {"ratio": band(v, at_most=at_most)}} for i, v in enumerate(values)})
        return row["status"]

    assert status(0.9999, 1.0) == "steady"  # 1% of the edge away, but 100 spreads: no seed carries it across
    assert status(1.0032, 1.0032) == "steady"  # the seed does not move it at all
    assert status(0.99, 1.005) == "near"  # 0.005 from the edge, spread 0.015
    assert status(0.9999) == "near"  # one seed: no spread, so the 5% rule alone
    assert status(0.9, 0.8) == "ok"
    assert status(1.01, 1.01) == "exact"  # on its edge at every seed


def test_spread_rows_put_failures_first_then_near_edges(tmp_path: Path) -> None:
    bands_by_seed = {
        1: {"00_a": {"acc": band(0.95, at_least=0.8), "ratio": band(1.03, at_least=1.0),
                     "mismatches": band(0, at_most=0)},
            "01_b": {"loss": band(1.0, at_most=2.0)}},
        2: {"00_a": {"acc": band(0.90, at_least=0.8), "ratio": band(1.2, at_least=1.0),
                     "mismatches": band(0, at_most=0)},
            "01_b": {"loss": band(2.5, at_most=2.0)}},
        3: {"00_a": {"acc": band(0.85, at_least=0.8), "ratio": band(1.1, at_least=1.0),
                     "mismatches": band(0, at_most=0)}},  # 01_b stopped before its band
    }
    rows = S.spread_rows(bands_by_seed)
    assert [(r["notebook"], r["figure"], r["status"]) for r in rows] == [
        ("01_b", "loss", "fail"), ("00_a", "ratio", "near"), ("00_a", "mismatches", "exact"), ("00_a", "acc", "ok")]
    loss, ratio, _, acc = rows
    assert loss["failed_seeds"] == [2] and loss["missing_seeds"] == [3] and loss["values"]["3"] is None
    assert loss["margin"] == pytest.approx(-0.25) and loss["worst_seed"] == 2
    assert (acc["min"], acc["median"], acc["max"]) == pytest.approx((0.85, 0.90, 0.95))
    assert acc["margin"] == pytest.approx(0.0625) and acc["worst_seed"] == 3
    assert ratio["margin"] == pytest.approx(0.03) and ratio["worst_seed"] == 1
    assert [r["notebook"] for r in S.spread_rows(bands_by_seed, ["00_a"])] == ["00_a"] * 3

    runs = {seed: [course.RunResult(nb, 0, 1.0, 10.0, tmp_path / "o", tmp_path / "l") for nb in ("00_a", "01_b")]
            for seed in (1, 2, 3)}
    runs[3][1] = course.RunResult("01_b", 1, 1.0, 10.0, tmp_path / "o", tmp_path / "l")
    statuses = S.run_statuses(runs, bands_by_seed)
    assert statuses["00_a"] == {"1": "passed", "2": "passed", "3": "passed"}
    assert statuses["01_b"] == {"1": "passed", "2": "failed", "3": "failed"}
    assert S.failures(rows, statuses) == ["01_b: figure 'loss' = 2.5 outside <= 2 at seed 2", "01_b: failed at seed 3"]

    report = S.render_spread(rows, statuses, [1, 2, 3])
    assert "| 01_b | loss | mechanism | <= 2 | 1 | 2.5 | – | 1 | 1.75 | 2.5 | 1.5 | -25.0% | ❌ FAIL at seed 2 · " \
           "missing at seed 3 |" in report
    assert "| 00_a | ratio | mechanism | >= 1 | 1.03 | 1.2 | 1.1 | 1.03 | 1.1 | 1.2 | 0.17 | +3.0% | ⚠️ within 5% " \
           "of an edge (seed 1) |" in report
    assert "| 01_b | passed | failed | failed |" in report and "[seed 2](seed2/REPORT.md)" in report
    assert report.index("| 01_b | loss |") < report.index("| 00_a | ratio |") < report.index("| 00_a | acc |")


def test_a_shipped_band_not_checked_is_no_failure() -> None:
    unchecked = band(0.1, at_least=0.9, kind="shipped", checked=False)
    [row] = S.spread_rows({1: {"00_a": {"acc": unchecked}}})
    assert row["status"] == "not checked" and row["failed_seeds"] == [] and row["margin"] < 0


def test_recorded_status_reads_the_executed_copy(tmp_path: Path) -> None:
    import json

    def executed(name: str, *cells: dict) -> None:
        (tmp_path / "executed").mkdir(exist_ok=True)
        (tmp_path / "executed" / f"{name}.ipynb").write_text(json.dumps({"cells": list(cells)}))

    ran = {"cell_type": "code", "source": ["x = 1"], "execution_count": 1, "outputs": []}
    error = {**ran, "outputs": [{"output_type": "error", "ename": "AssertionError"}]}
    never = {**ran, "execution_count": None}
    executed("00_ok", ran, {"cell_type": "markdown", "source": ["# t"]})
    executed("01_error", ran, error)
    executed("02_stopped", ran, never)
    assert S.recorded_status(tmp_path, "00_ok", {"acc": band(0.9, at_least=0.8)}) == "passed"
    assert S.recorded_status(tmp_path, "00_ok", {"acc": band(0.5, at_least=0.8)}) == "failed"
    assert S.recorded_status(tmp_path, "01_error", {}) == "failed"
    assert S.recorded_status(tmp_path, "02_stopped", {}) == "failed"
    assert S.recorded_status(tmp_path, "03_missing", {}) == "not run"
