"""README's measured-effect column: one template per notebook, filled from results.json by a plain `make course`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hubhelpers import results as R
from hubhelpers.tooling import course, effects

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
STRING_RE = re.compile(r'(f?)"([A-Za-z0-9_{}]+)"')  # figure names: issue 22's rougeL_* have a capital


def recorded_names(path: Path) -> list[re.Pattern[str]]:
    """Patterns for the figure names a notebook's code can record: its string literals, f-string fields as wildcards."""
    code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    patterns = []
    for is_f, text in STRING_RE.findall(code):
        parts = re.split(r"\{[^}]*\}", text) if is_f else [text]
        patterns.append(re.compile(".+".join(re.escape(p) for p in parts) + r"\Z"))
    return patterns


def test_every_notebook_has_one_template() -> None:
    assert sorted(effects.EFFECTS) == [p.name[:2] for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_template_reads_only_figures_the_notebook_records(path: Path) -> None:
    patterns = recorded_names(path)
    missing = [name for name in effects.template_figures(effects.EFFECTS[path.name[:2]])
               if not any(p.match(name) for p in patterns)]
    assert not missing, f"{path.name}: the effect template reads figures the notebook never records: {missing}"


def test_render_fills_figures_and_dict_keys_as_written() -> None:
    templates = {"07": "LoRA {acc:.2f}; at 1e-05: {sweep[1e-05]:.1f}; {plan[Llama-2-7B qlora]:.1f} GiB; {frac:.1%}"}
    figures = {"acc": 0.9123, "sweep": {"1e-05": 0.04}, "plan": {"Llama-2-7B qlora": 4.2}, "frac": 0.042}
    text = effects.render_effect("07_lora", figures, templates)
    assert text == "LoRA 0.91; at 1e-05: 0.0; 4.2 GiB; 4.2%"


def test_render_names_the_missing_figure_and_key() -> None:
    templates = {"07": "{acc:.2f} {sweep[8]:.2f}"}
    with pytest.raises(KeyError, match=r"07_lora: the effect template names figure 'acc'"):
        effects.render_effect("07_lora", {"sweep": {"8": 1.0}}, templates)
    with pytest.raises(KeyError, match=r"figure 'sweep' has no key '8'; it has \['4'\]"):
        effects.render_effect("07_lora", {"acc": 1.0, "sweep": {"4": 1.0}}, templates)
    with pytest.raises(KeyError, match="no effect template for notebook '99_x'"):
        effects.render_effect("99_x", {}, templates)


def test_write_effects_rewrites_the_rows_of_passed_notebooks_only(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n| # | notebook | measured effect | CPU time |\n|---|---|---|---|\n"
                      "| 00 | a | old text | ≈20 s |\n| 01 | b | old text | ≈15 s |\n", encoding="utf-8")
    build = tmp_path / "build"
    R.merge_entries(build, "results.json", "00_start_here", {"n_libraries_imported": 12})
    R.merge_entries(build, "results.json", "01_lm_probability", {"bigram_perplexity": 14.9})
    runs = [course.RunResult("00_start_here", 0, 1.0, 1.0, tmp_path / "o", tmp_path / "l"),
            course.RunResult("01_lm_probability", 1, 1.0, 1.0, tmp_path / "o", tmp_path / "l")]
    assert course.write_effects(runs, build, readme) == ["00_start_here"]
    lines = readme.read_text(encoding="utf-8").splitlines()
    assert lines[-2] == "| 00 | a | environment report; 12 course libraries import offline | ≈20 s |"
    assert lines[-1] == "| 01 | b | old text | ≈15 s |"


def test_only_a_plain_run_writes_the_readme() -> None:
    assert course.is_default_run(course.parse_args([]))
    assert course.is_default_run(course.parse_args(["--only", "07"]))
    assert not course.is_default_run(course.parse_args(["-p", "SEED", "1"]))
    assert not course.is_default_run(course.parse_args(["--build-dir", "build/seed1"]))
    assert not course.is_default_run(course.parse_args(["--notebooks", "elsewhere"]))


def test_readme_course_map_has_the_column() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if re.match(r"\| \d{2} \|", line)]
    assert [r[2:4] for r in rows] == [p.name[:2] for p in NOTEBOOKS]
    assert any(line.startswith("| # |") and f"| {effects.COLUMN} |" in line for line in text.splitlines())
