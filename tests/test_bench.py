"""The benchmark: budget rows, comparison with the previous run, the README column, the minimal GPT."""

import pytest
import torch

from hubhelpers.tooling import bench as B
from hubhelpers.tooling import sync as S

RESULTS = {
    "01_lm_probability": {"wall_s": 21.0, "peak_rss_mb": 800.0, "model_perplexity": 2.4},
    "11_rlhf": {"wall_s": 85.0, "peak_rss_mb": 1200.0},
    "12_catastrophic_forgetting": {"wall_s": 130.0, "peak_rss_mb": 900.0},
    "08_quantization": {"wall_s": 50.0, "peak_rss_mb": 4000.0},
    "99_not_run": {"figure": 1.0},
}


def test_notebook_rows_apply_each_budget():
    rows = {row["name"]: row for row in B.notebook_rows(RESULTS)}
    assert set(rows) == {"01_lm_probability", "11_rlhf", "12_catastrophic_forgetting", "08_quantization"}
    assert rows["01_lm_probability"]["ok"] and rows["01_lm_probability"]["limit_s"] == 90
    assert rows["11_rlhf"]["ok"] and rows["11_rlhf"]["limit_s"] == 90  # every notebook has the same budget
    assert not rows["12_catastrophic_forgetting"]["ok"] and rows["12_catastrophic_forgetting"]["limit_s"] == 90
    assert not rows["08_quantization"]["ok"]  # fast, but above 3 GB


def test_budgets_are_judged_on_normalised_time():
    # a machine twice as slow as the calibration one: 130 s here is 65 s there, within 90
    slow = {row["name"]: row for row in B.notebook_rows(RESULTS, speed=0.5)}
    assert slow["12_catastrophic_forgetting"]["ok"] and slow["12_catastrophic_forgetting"]["normalised_s"] == 65.0
    assert slow["12_catastrophic_forgetting"]["wall_s"] == 130.0  # the measured seconds are kept
    # a machine 1.5x faster: 70 s here is 105 s there, over 90
    fast = B.notebook_rows({"05_x": {"wall_s": 70.0, "peak_rss_mb": 500.0}}, speed=1.5)[0]
    assert fast["normalised_s"] == 105.0 and not fast["ok"]
    budgets = B.Budgets()
    assert B.speed_factor(budgets.reference_s * 2, budgets) == 0.5
    with pytest.raises(ValueError, match="reference_s must be positive"):
        B.speed_factor(0.0, budgets)


def test_course_total_and_budgets_met():
    rows = B.notebook_rows(RESULTS)
    total = B.course_total(rows, parallel_s=200.0, jobs=2)
    assert total["serial_s"] == 286.0 and total["parallel_s"] == 200.0 and total["speedup"] == 1.43
    assert total["parallel_peak_bound_mb"] == 5200.0  # the two largest peaks: 4000 + 1200
    assert total["ok"]
    assert not B.course_total(rows, parallel_s=200.0, jobs=2, speed=2.5)["ok"]  # 500 s normalised, over 480
    assert not B.course_total(rows, parallel_s=None, jobs=2)["ok"]  # not run is not a pass
    alone = B.course_total(rows, parallel_s=200.0, jobs=2, serial_rows=False)  # rows from the parallel run itself
    assert alone["serial_s"] is None and alone["speedup"] is None and alone["ok"]
    heavy = B.notebook_rows({"a": {"wall_s": 1.0, "peak_rss_mb": 3000.0}, "b": {"wall_s": 1.0, "peak_rss_mb": 3200.0}})
    assert not B.course_total(heavy, parallel_s=1.0, jobs=2)["ok"]  # 6200 MB at once, over 6144
    assert not B.budgets_met({"notebooks": rows, "course": total})
    fine = [row for row in rows if row["ok"]]
    assert B.budgets_met({"notebooks": fine, "course": B.course_total(fine, 100.0, 2)})
    assert not B.course_total([], 1.0, 2)["ok"]  # nothing measured is not a pass
    subset = B.course_total(fine, parallel_s=100.0, jobs=2, whole=False)  # --only: a few notebooks
    assert subset["ok"] is None and subset["whole_course"] is False and subset["parallel_s"] == 100.0
    assert B.budgets_met({"notebooks": fine, "course": subset})  # judged on its notebooks alone
    assert not B.budgets_met({"notebooks": rows, "course": subset})  # a notebook over budget still fails it
    assert "not judged" in B.render_table({"budgets": {"peak_mb": 3072.0}, "notebooks": fine, "course": subset}, {})


def test_the_median_reading_of_the_reference_sets_the_speed():
    """The machine drifts during a bench: the median of its readings normalises, and every reading is kept."""
    budgets = B.Budgets(reference_s=1.0)
    ref = B.reference_speed([1.0, 1.25, 1.3], budgets)
    assert ref == {"seconds": 1.25, "readings": [1.0, 1.25, 1.3], "calibration_s": 1.0, "speed_factor": 0.8}
    assert B.reference_speed([2.0], budgets)["speed_factor"] == 0.5
    with pytest.raises(ValueError, match="at least one reading"):
        B.reference_speed([], budgets)


def test_reference_workload_is_timed_with_one_thread_and_restores_the_count():
    threads = torch.get_num_threads()
    seconds = B.reference_seconds(steps=2, repeats=3, batch_size=2)
    assert seconds > 0 and torch.get_num_threads() == threads
    with pytest.raises(ValueError, match="steps"):
        B.reference_seconds(steps=0)


def test_compare_gives_ratios_of_shared_numeric_figures():
    before = {"notebooks": {"a": {"wall_s": 10.0, "ok": True}}, "retrieval": {"ms_per_query": 4.0}, "old": 1.0}
    now = {"notebooks": {"a": {"wall_s": 15.0, "ok": True}}, "retrieval": {"ms_per_query": 2.0}, "new": 3.0}
    assert B.compare(now, before) == {"notebooks.a.wall_s": 1.5, "retrieval.ms_per_query": 0.5}


def test_update_readme_rewrites_only_the_cpu_time_column():
    text = ("intro | 01 | not a row\n"
            "| # | notebook | concept | CPU time | GPU needed? |\n|---|---|---|---|---|\n"
            "| 01 | [LM](x.ipynb) | chain rule | ≈20 s | no |\n"
            "| 07 | LoRA | PEFT | planned | no |\n")
    out = S.update_readme(text, {"01_lm_probability": 23.4, "07_lora_and_qlora": 87.0})
    assert "| 01 | [LM](x.ipynb) | chain rule | ≈25 s | no |" in out
    assert "| 07 | LoRA | PEFT | ≈85 s | no |" in out
    assert out.splitlines()[0] == "intro | 01 | not a row"
    with pytest.raises(ValueError, match="CPU time"):
        S.update_readme("| # | notebook |\n", {"01_x": 1.0})


def test_render_table_marks_missed_budgets():
    rows = B.notebook_rows(RESULTS, speed=0.9)
    bench = {"budgets": {"peak_mb": 3072.0}, "notebooks": rows, "course": B.course_total(rows, 200.0, 2, speed=0.9),
             "reference": B.reference_speed([1.2, 1.1, 1.0], B.Budgets(reference_s=0.99))}
    table = B.render_table(bench, {"notebooks.11_rlhf.wall_s": 1.2})
    assert ("| reference workload | 1.100 s, median of 1.200, 1.100, 1.000 (calibration 0.990 s: times here count "
            "×0.90) |") in table
    assert "| 12_catastrophic_forgetting | 130.0 s (117.0 s), 900 MB | ≤ 90 s, ≤ 3072 MB | **NO** |" in table
    assert "| 08_quantization | 50.0 s (45.0 s), 4000 MB | ≤ 90 s, ≤ 3072 MB | **NO** |" in table
    assert "| 11_rlhf | 85.0 s (76.5 s), 1200 MB | ≤ 90 s, ≤ 3072 MB | yes | 1.2 |" in table
    assert "| whole course, 2 at a time | 200 s (180 s), speed-up 1.43×; memory ≤ 5200 MB |" in table


def test_minimal_gpt_is_causal_and_learns():
    torch.manual_seed(0)
    gpt = B.MinimalGPT(vocab_size=50, hidden=32, layers=1, heads=2, mlp=64, max_len=16)
    ids = torch.randint(0, 50, (4, 16))
    changed = ids.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % 50
    assert torch.allclose(gpt(ids)[:, :10], gpt(changed)[:, :10], atol=1e-6)  # no peeking at later tokens
    opt = torch.optim.AdamW(gpt.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(gpt(ids)[:, :-1].transpose(1, 2), ids[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_training_throughput_reports_both_paths():
    out = B.training_throughput(steps=5, batch_size=4)
    assert out["course_tokens_per_s"] > 0 and out["minimal_tokens_per_s"] > 0
    assert abs(out["minimal_params"] - out["course_params"]) / out["course_params"] < 0.1  # same size class
    assert set(out["phase_fraction"]) == {"data", "forward", "backward", "optimizer"}
    assert 0.5 < sum(out["phase_fraction"].values()) <= 1.0
    with pytest.raises(ValueError, match="steps"):
        B.training_throughput(steps=2)


@pytest.mark.timeout(300)
def test_fixed_cost_runs_a_lesson_free_notebook():
    seconds = B.fixed_cost_seconds()
    assert 0.5 < seconds < 120  # a kernel start and imports: seconds, not minutes
