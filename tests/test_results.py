"""Tests of the results API: recording, bands, atomic merging, build-dir discovery, figures."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hubhelpers import results as R
from hubhelpers.results import Results


@pytest.fixture
def res(tmp_path: Path) -> Results:
    """A Results bound to a temporary build dir."""
    return Results("01_lm_probability", build_dir=tmp_path)


def read(path: Path) -> dict:
    """Read a JSON file."""
    return json.loads(path.read_text())


def test_record_writes_notebook_figure_mapping(res: Results, tmp_path: Path) -> None:
    res.record("model_perplexity", 12.3)
    res.record("n_params", 1_300_000)
    res.record("converged", True)
    assert read(tmp_path / "results.json") == {
        "01_lm_probability": {"model_perplexity": 12.3, "n_params": 1300000, "converged": True}
    }


def test_record_merges_across_notebooks_and_overwrites(tmp_path: Path) -> None:
    Results("00_start_here", tmp_path).record("a", 1)
    Results("01_x", tmp_path).record("b", 2.5)
    Results("00_start_here", tmp_path).record("a", 3)
    assert R.load_results(tmp_path) == {"00_start_here": {"a": 3}, "01_x": {"b": 2.5}}


def test_record_accepts_mapping_with_int_keys(res: Results) -> None:
    assert res.record("acc_by_shots", {0: 0.1, "8": 0.6}) == {"0": 0.1, "8": 0.6}
    assert res.figures()["acc_by_shots"] == {"0": 0.1, "8": 0.6}


def test_record_converts_numpy_and_torch_scalars(res: Results) -> None:
    import numpy as np
    import torch

    assert res.record("np_float", np.float32(0.5)) == 0.5
    assert isinstance(res.record("np_int", np.int64(7)), int)
    assert res.record("tensor", torch.tensor(2.0)) == 2.0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_record_rejects_non_finite(res: Results, bad: float) -> None:
    with pytest.raises(ValueError, match="not finite"):
        res.record("x", bad)


@pytest.mark.parametrize("bad", ["0.5", None, [1, 2], {"a": "b"}, {}])
def test_record_rejects_bad_values(res: Results, bad: object) -> None:
    with pytest.raises((TypeError, ValueError), match="figure 'x"):
        res.record("x", bad)


@pytest.mark.parametrize("bad", ["", "has space", "../escape", "-lead", 3, "x" * 101])
def test_bad_names_rejected(res: Results, bad: object) -> None:
    with pytest.raises(ValueError, match="bad figure name"):
        res.record(bad, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bad notebook name"):
        Results(bad)  # type: ignore[arg-type]


def test_expect_passes_and_records_band(res: Results, tmp_path: Path) -> None:
    res.record("acc", 0.9)
    assert res.expect("acc", at_least=0.85, kind="mechanism") == 0.9
    res.expect("acc", at_least=0.5, at_most=1.0, kind="mechanism")
    band = read(tmp_path / "bands.json")["01_lm_probability"]["acc"]
    assert band == {"at_least": 0.5, "at_most": 1.0, "value": 0.9, "passed": True, "kind": "mechanism",
                    "checked": True}


def test_expect_failure_names_figure_value_and_band(res: Results, tmp_path: Path) -> None:
    res.record("model_perplexity", 25.0)
    with pytest.raises(AssertionError, match=r"'model_perplexity' = 25 .*band <= 20"):
        res.expect("model_perplexity", at_most=20.0, kind="mechanism")
    assert R.load_bands(tmp_path)["01_lm_probability"]["model_perplexity"]["passed"] is False


def test_check_records_then_expects(res: Results, tmp_path: Path) -> None:
    assert res.check("acc", 0.9, at_least=0.85, kind="mechanism") == 0.9
    assert R.load_results(tmp_path)["01_lm_probability"]["acc"] == 0.9
    assert R.load_bands(tmp_path)["01_lm_probability"]["acc"]["passed"] is True
    with pytest.raises(AssertionError, match=r"'loss' = 3 .*band <= 1"):
        res.check("loss", 3.0, at_most=1.0, kind="mechanism")
    assert R.load_results(tmp_path)["01_lm_probability"]["loss"] == 3.0  # recorded even when it fails


def test_check_with_a_bad_band_writes_nothing(res: Results, tmp_path: Path) -> None:
    with pytest.raises((ValueError, TypeError)):
        res.check("acc", 0.9, at_least="high", kind="mechanism")
    assert "acc" not in R.load_results(tmp_path).get("01_lm_probability", {})


def test_expect_both_bounds_message(res: Results) -> None:
    res.record("ratio", 2.0)
    with pytest.raises(AssertionError, match=r"\[0.1, 0.9\]"):
        res.expect("ratio", at_least=0.1, at_most=0.9, kind="mechanism")


def test_expect_bounds_are_inclusive(res: Results) -> None:
    res.record("edge", 1.0)
    assert res.expect("edge", at_least=1.0, at_most=1.0, kind="mechanism") == 1.0


def test_expect_on_mapping_is_a_type_error(res: Results) -> None:
    res.record("acc_by_shots", {"0": 0.1, "8": 0.6})
    with pytest.raises(TypeError, match="scalar only"):
        res.expect("acc_by_shots", at_least=0.0, kind="mechanism")


def test_expect_unrecorded_figure(res: Results) -> None:
    with pytest.raises(KeyError, match="was not recorded"):
        res.expect("missing", at_least=0, kind="mechanism")


def test_expect_reads_value_recorded_by_another_instance(tmp_path: Path) -> None:
    Results("02_x", tmp_path).record("loss", 1.5)
    assert Results("02_x", tmp_path).expect("loss", at_most=2, kind="mechanism") == 1.5


@pytest.mark.parametrize(
    ("low", "high", "match"),
    [
        (None, None, "give at_least"),
        (2.0, 1.0, "empty band"),
        (math.nan, None, "finite"),
        ("1", None, "finite"),
    ],
)
def test_expect_validates_band(res: Results, low: object, high: object, match: str) -> None:
    res.record("x", 1.0)
    with pytest.raises(ValueError, match=match):
        res.expect("x", at_least=low, at_most=high, kind="mechanism")  # type: ignore[arg-type]


def test_concurrent_records_all_land(tmp_path: Path) -> None:
    def write(i: int) -> None:
        Results(f"nb{i % 3}", tmp_path).record(f"fig{i}", float(i))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(40)))
    data = R.load_results(tmp_path)
    assert sum(len(v) for v in data.values()) == 40
    assert not list(tmp_path.glob(".results.json.*.tmp"))


def test_record_run_metrics_and_clear(tmp_path: Path) -> None:
    res = Results("03_x", tmp_path)
    res.record("acc", 0.5)
    res.expect("acc", at_least=0.1, kind="mechanism")
    R.record_run_metrics(tmp_path, "03_x", 1.234, 456.78)
    assert R.load_results(tmp_path)["03_x"] == {"acc": 0.5, "wall_s": 1.23, "peak_rss_mb": 456.8}
    R.clear_notebook(tmp_path, "03_x")
    assert "03_x" not in R.load_results(tmp_path)
    assert "03_x" not in R.load_bands(tmp_path)


def test_savefig_writes_png(res: Results, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = res.savefig(fig, "loss_curve")
    plt.close(fig)
    assert path == tmp_path / "figures" / "01_lm_probability" / "loss_curve.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_savefig_validates(res: Results) -> None:
    with pytest.raises(TypeError, match="matplotlib Figure"):
        res.savefig("not a figure", "x")
    with pytest.raises(ValueError, match="bad plot name"):
        res.savefig(object(), "bad/name")


def test_build_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(R.BUILD_DIR_ENV, str(tmp_path / "out"))
    assert Results("00_a").build_dir == (tmp_path / "out").resolve()


def test_build_dir_walks_up_to_llm_hub_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(R.BUILD_DIR_ENV, raising=False)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "llm-hub"\n')
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    deep = tmp_path / "other" / "notebooks" / "sub"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert R.find_build_dir() == tmp_path.resolve() / "build"


def test_build_dir_falls_back_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(R.BUILD_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    if R.find_project_root() is None:
        assert R.find_build_dir() == tmp_path.resolve() / "build"


def test_corrupt_results_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        Results("00_a", tmp_path).record("x", 1)


def test_display_path_never_shows_a_machine_absolute_path(tmp_path, monkeypatch):
    project = tmp_path / "course"
    (project / "build").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "llm-hub"\n')
    monkeypatch.chdir(project)
    assert R.display_path(project / "build" / "results.json") == "build/results.json"
    elsewhere = tmp_path / "scratch" / "build"
    assert R.display_path(elsewhere) == "…/scratch/build"
    assert str(tmp_path) not in repr(R.Results("01_x", build_dir=elsewhere))


@pytest.mark.parametrize("name", ["wall_s", "retrieval_ms_per_query", "train_tokens_per_s", "peak_rss_mb",
                                  "energy_kwh", "co2eq_kg", "achieved_gflops", "gen_per_s_batched",
                                  "latency_ratio_nf4_over_fp32"])
def test_measurements_of_time_speed_energy_and_memory_are_not_compared(name: str) -> None:
    assert R.is_timing(name) and name not in R.comparable_figures({"nb": {name: 1.0}})["nb"]


@pytest.mark.parametrize("name", ["recall_at_3", "gpt3_flops_ratio", "llama2_implied_intensity", "kl_to_reference",
                                  "acc_with_retrieval", "store_records"])
def test_effects_are_compared_between_runs(name: str) -> None:
    assert not R.is_timing(name) and R.comparable_figures({"nb": {name: 1.0}}) == {"nb": {name: 1.0}}


def test_shipped_band_is_raised_for_the_shipped_model(tmp_path: Path) -> None:
    res = Results("09_x", tmp_path, shipped=True)
    with pytest.raises(AssertionError, match=r"'known_rate' = 0.5 .* <= 0.1 \(shipped check\)"):
        res.check("known_rate", 0.5, at_most=0.1, kind=R.SHIPPED)
    assert R.load_bands(tmp_path)["09_x"]["known_rate"] == {
        "at_least": None, "at_most": 0.1, "value": 0.5, "passed": False, "kind": "shipped", "checked": True}


def test_shipped_band_is_reported_not_raised_for_another_model(tmp_path: Path, capsys) -> None:
    res = Results("09_x", tmp_path, shipped=False)
    assert res.check("known_rate", 0.5, at_most=0.1, kind=R.SHIPPED) == 0.5
    line = "known_rate = 0.5: the shipped model's band is <= 0.1; not checked for this model\n"
    assert capsys.readouterr().out == line
    band = R.load_bands(tmp_path)["09_x"]["known_rate"]
    assert (band["passed"], band["checked"], band["kind"]) == (False, False, "shipped")
    assert res.check("inside", 0.05, at_most=0.1, kind=R.SHIPPED) == 0.05  # in band: recorded as passed, unchecked
    assert R.load_bands(tmp_path)["09_x"]["inside"]["passed"] is True


def test_mechanism_band_is_raised_for_any_model(tmp_path: Path) -> None:
    res = Results("05_x", tmp_path, shipped=False)
    with pytest.raises(AssertionError, match=r"\(mechanism check\)"):
        res.check("sgd_diff", 1e-3, at_most=1e-6, kind=R.MECHANISM)
    assert R.load_bands(tmp_path)["05_x"]["sgd_diff"]["checked"] is True


@pytest.mark.parametrize("kind", [None, "shipped-model", "MECHANISM", True])
def test_band_kind_must_be_named(res: Results, tmp_path: Path, kind: object) -> None:
    with pytest.raises(ValueError, match=r"kind=.*accepted: 'mechanism', 'shipped'"):
        res.check("acc", 0.9, at_least=0.5, kind=kind)  # type: ignore[arg-type]
    assert "acc" not in R.load_results(tmp_path).get("01_lm_probability", {})
    with pytest.raises(TypeError, match="kind"):
        res.check("acc", 0.9, at_least=0.5)  # type: ignore[call-arg]


def test_shipped_flag_must_be_a_bool(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="shipped must be True or False, got 'tinyworld'"):
        Results("05_x", tmp_path, shipped="tinyworld")  # type: ignore[arg-type]
