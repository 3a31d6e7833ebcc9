"""Every notebook follows the course conventions; the checker itself is proven able to fail."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from hubhelpers.tooling import conventions as C
from hubhelpers.tooling import sync as S
from hubhelpers.tooling.sync import sync_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CONFIG = C.load_course_config(ROOT)
TEST_CONFIG = C.CourseConfig("https://github.com/example/course", "main")


# --------------------------------------------------------------------------- the real notebooks
def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_follows_conventions(path: Path) -> None:
    violations = C.check_notebook(path, CONFIG)
    assert not violations, "\n".join(violations)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_matches_single_source_repo(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert sync_notebook(nb, path.name, CONFIG) == nb, (
        f"{path.name}: Colab badge or setup cell differ from [tool.llm-hub] in pyproject.toml; "
        "run `make sync-notebooks`"
    )


# --------------------------------------------------------------------------- the single source
def test_readme_module_table_follows_the_notebooks_imports() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = S.module_table(S.notebooks_in(ROOT / "notebooks"))
    assert S.with_module_table(text, table) == text, "README's notebook -> modules table is stale: make sync-notebooks"
    assert "| 11_rlhf | `dpo`, `finetune`, `models`, `preferences`, `reward`, `rl`" in table


def test_modules_used_reads_every_import_form() -> None:
    cells = [new_code_cell("from hubhelpers import world, tasks\nfrom hubhelpers.models import load_model"),
             new_code_cell("import hubhelpers.lora\nimport torch\nfrom hubhelpers.results import Results")]
    assert S.modules_used(new_notebook(cells=cells)) == ["lora", "models", "results", "tasks", "world"]


def test_repo_address_lives_in_pyproject_only() -> None:
    assert CONFIG.repo.startswith("https://github.com/")
    others = [p for p in ROOT.glob("*") if p.is_file() and p.name != "pyproject.toml"]
    hits = [p.name for p in others if CONFIG.repo in p.read_text(encoding="utf-8", errors="ignore")]
    assert hits == [], f"the repo address is repeated outside pyproject.toml: {hits}"


def test_config_drives_badge_and_cell(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.llm-hub]\nrepo = "https://github.com/fork/course.git"\n')
    cfg = C.load_course_config(tmp_path)
    assert cfg == C.CourseConfig("https://github.com/fork/course", "main")
    assert C.colab_url(cfg, "00_a.ipynb") == (
        "https://colab.research.google.com/github/fork/course/blob/main/notebooks/00_a.ipynb"
    )
    assert "git+https://github.com/fork/course@main" in C.colab_cell_source(cfg)


@pytest.mark.parametrize("repo", ["", "https://gitlab.com/a/b", "github.com/a/b", 3])
def test_config_rejects_bad_repo(tmp_path: Path, repo: object) -> None:
    value = f'"{repo}"' if isinstance(repo, str) else repo
    (tmp_path / "pyproject.toml").write_text(f"[tool.llm-hub]\nrepo = {value}\n")
    with pytest.raises(ValueError, match="repo"):
        C.load_course_config(tmp_path)


def test_colab_cell_installs_only_inside_colab(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    calls: list[Any] = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    source = C.colab_cell_source(CONFIG)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(source, "colab-cell", "exec"), {})
    assert calls == []
    monkeypatch.setitem(sys.modules, "google.colab", object())
    exec(compile(source, "colab-cell", "exec"), {})
    assert len(calls) == 1 and f"git+{CONFIG.repo}@" in calls[0][0][-1]


def test_sync_inserts_missing_badge_and_cell() -> None:
    nb = new_notebook(cells=[new_markdown_cell("# Title\n\ntext"), new_code_cell("x = 1")])
    synced = sync_notebook(nb, "00_a.ipynb", TEST_CONFIG)
    assert C.badge_markdown(TEST_CONFIG, "00_a.ipynb") in synced.cells[0].source
    assert synced.cells[0].source.startswith("# Title")
    assert synced.cells[1].source == C.colab_cell_source(TEST_CONFIG)
    assert sync_notebook(synced, "00_a.ipynb", TEST_CONFIG) == synced  # idempotent
    assert nb.cells[1].source == "x = 1"  # the input is not mutated


# --------------------------------------------------------------------------- the checker can fail
def good_notebook(name: str = "05_full_fine_tuning.ipynb") -> Any:
    """Return a notebook that follows every convention under TEST_CONFIG."""
    intro = (
        f"# 05 · Full fine-tuning\n\n{C.badge_markdown(TEST_CONFIG, name)}\n\n"
        "**You will learn** how gradient descent updates every weight.\n\n"
        "**Measured effect:** task accuracy before/after."
    )
    params = 'SEED: int = 0  # the seed\nMODEL: str = "tinyworld"  # model id or path\nLR: float = 1e-3  # lr'
    cells = [
        new_markdown_cell(intro),
        new_code_cell(C.colab_cell_source(TEST_CONFIG)),
        new_code_cell(params, metadata={"tags": ["parameters"]}),
        new_code_cell(VALIDATION),
        new_code_cell("from hubhelpers.runtime import seed_everything\nseed_everything(SEED)"),
    ]
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})


VALIDATION = ('from hubhelpers.params import Float, Int, Model, check_params\n\n'
              'check_params(globals(), {"SEED": Int(0), "MODEL": Model(), "LR": Float(0, 1)})')


def check(nb: Any, tmp_path: Path, name: str = "05_full_fine_tuning.ipynb") -> list[str]:
    """Write ``nb`` under ``name`` in tmp_path and return its violations."""
    path = tmp_path / name
    nbformat.write(nb, path)
    return C.check_notebook(path, TEST_CONFIG)


def test_good_notebook_has_no_violations(tmp_path: Path) -> None:
    assert check(good_notebook(), tmp_path) == []
    nb = good_notebook()
    _append("from hubhelpers.models import is_shipped\nfrom hubhelpers.results import Results\n"
            'res = Results("05_full_fine_tuning", shipped=is_shipped(MODEL))')(nb)
    assert check(nb, tmp_path) == []


def _set(index: int, source: str) -> Callable[[Any], None]:
    """Return a mutation replacing cell ``index``'s source."""
    return lambda nb: nb.cells[index].__setitem__("source", source)


def _append(source: str) -> Callable[[Any], None]:
    """Return a mutation appending a code cell."""
    return lambda nb: nb.cells.append(new_code_cell(source))


def _intro_without(text: str) -> Callable[[Any], None]:
    """Return a mutation deleting ``text`` from the intro cell."""
    return lambda nb: nb.cells[0].__setitem__("source", nb.cells[0].source.replace(text, ""))


def _colab_source(**swap: str) -> str:
    """Return the canonical Colab cell with substrings swapped."""
    source = C.colab_cell_source(TEST_CONFIG)
    for old, new in swap.items():
        source = source.replace(old.replace("_", " "), new)
    return source


BAD_CASES: dict[str, tuple[Callable[[Any], None], str]] = {
    "first cell is code": (
        lambda nb: nb.cells.insert(0, new_code_cell("x = 1")),
        "first cell must be a markdown",
    ),
    "no title": (_intro_without("# 05 · Full fine-tuning"), "no '# ' title"),
    "no badge": (_intro_without("[![Open In Colab]"), "Open in Colab badge"),
    "badge to another notebook": (
        lambda nb: nb.cells[0].__setitem__("source", nb.cells[0].source.replace("05_full", "06_full")),
        "Open in Colab badge",
    ),
    "no learn section": (_intro_without("You will learn"), "'You will learn'"),
    "no measured effect": (_intro_without("Measured effect"), "'Measured effect'"),
    "no parameters cell": (lambda nb: nb.cells[2].metadata.pop("tags"), "found 0"),
    "two parameters cells": (
        lambda nb: nb.cells.append(new_code_cell("X: int = 1  # x", metadata={"tags": ["parameters"]})),
        "found 2",
    ),
    "parameter not literal": (_set(2, 'SEED: int = int("3")  # seed'), "literal"),
    "parameter not annotated": (_set(2, "SEED = 0  # seed"), "only `NAME: type = literal"),
    "parameter with logic": (_set(2, "SEED: int = 0  # s\nif SEED:\n    pass"), "only `NAME: type = literal"),
    "parameter without comment": (_set(2, "SEED: int = 0"), "trailing '# comment'"),
    "parameter lower case": (_set(2, "seed: int = 0  # s"), "UPPER_SNAKE_CASE"),
    "parameters do not parse": (_set(2, "SEED: int = (  # s"), "does not parse"),
    "no colab cell": (lambda nb: nb.cells.pop(1), "exactly one Colab setup cell"),
    "unguarded install": (
        _set(1, 'import subprocess, sys\nsubprocess.run(["pip", "install", "x"])  # google.colab'),
        "does work outside the Colab guard",
    ),
    "guard with else": (
        _set(1, _colab_source() + '\nelse:\n    print("local")'),
        "with no else",
    ),
    "installs another repo": (
        _set(1, C.colab_cell_source(C.CourseConfig("https://github.com/other/repo"))),
        "must pip-install the course from https://github.com/example/course",
    ),
    "colab cell after hubhelpers import": (
        lambda nb: nb.cells.insert(4, nb.cells.pop(1)),
        "must come before the first hubhelpers import",
    ),
    "outputs committed": (
        lambda nb: nb.cells[3].__setitem__("outputs", [new_output("stream", name="stdout", text="hi")]),
        "committed outputs",
    ),
    "execution count": (lambda nb: nb.cells[3].__setitem__("execution_count", 3), "execution count"),
    "no kernelspec": (lambda nb: nb.metadata.pop("kernelspec"), "kernelspec"),
    "bang pip": (_append("!pip install peft"), "!pip / %pip"),
    "percent pip": (_append("%pip install -q peft"), "!pip / %pip"),
    "subprocess pip": (_append('import subprocess\nsubprocess.run(["pip", "install", "x"])'), "pip install"),
    "login": (_append("from huggingface_hub import login\nlogin()"), "login("),
    "notebook_login": (_append("from huggingface_hub import notebook_login\nnotebook_login()"), "login("),
    "no hubhelpers import": (lambda nb: [_set(i, "print(SEED)")(nb) for i in (3, 4)], "no cell imports hubhelpers"),
    "raise in validation cell": (
        _set(3, 'if SEED < 0:\n    raise ValueError(f"SEED must be an int >= 0, got {SEED!r}")'),
        "no hand-written `raise`",
    ),
    "check beside check_params": (
        _set(3, VALIDATION + '\nassert LR < 1, "LR must be below 1"'),
        "no hand-written `assert`",
    ),
    "no validation cell": (lambda nb: nb.cells.pop(3), "validation cell must hold only imports"),
    "results without shipped flag": (
        _append('from hubhelpers.results import Results\nres = Results("05_full_fine_tuning")'),
        "must pass shipped=is_shipped(MODEL) (found no shipped=)",
    ),
    "typed measured number": (
        lambda nb: nb.cells.append(new_markdown_cell("The fine-tuned model reached 0.93 accuracy.")),
        "markdown cell 5: '0.93' in",
    ),
    "typed percentage": (
        lambda nb: nb.cells.append(new_markdown_cell("LoRA trains 4.2% of the weights.")),
        "'4.2%' in '…LoRA trains 4.2% of the weights.…' is typed by hand",
    ),
    "results with a constant shipped flag": (
        _append('from hubhelpers.results import Results\nres = Results("05_full_fine_tuning", shipped=True)'),
        "must pass shipped=is_shipped(MODEL) (found True)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_checker_flags_each_broken_rule(case: str, tmp_path: Path) -> None:
    mutate, expected = BAD_CASES[case]
    nb = good_notebook()
    mutate(nb)
    violations = check(nb, tmp_path)
    assert any(expected in v for v in violations), f"{case}: expected {expected!r} in {violations}"


def test_markdown_numbers_allowed_as_thresholds_citations_parameters_and_code() -> None:
    allowed = {0.5}
    ok = ("accuracy $\\ge 0.9$, drop at least 0.3 and within 2% of fp32, below\n0.25, under 0.1%",
          "GPT-3 used 3.14e23 FLOPs, 175 billion parameters ([Brown et al.](https://arxiv.org/abs/2005.14165): 0.6)",
          "the default `LR = 3e-4` and ```\nmake course P=\"-p ALPHA 0.75\"\n```", "with ALPHA = 0.5 (the default)",
          "integers 128 and 7B are fine, and so are versions like 2.13.0")
    assert [C.typed_numbers(text, allowed) for text in ok] == [[]] * len(ok)
    bad = C.typed_numbers("- a cited item ([paper](https://x.org)) 0.3\n- an uncited item reached 0.97 (4%)", allowed)
    assert [hit.split(" in ")[0] for hit in bad] == ["'0.97'", "'4%'"]


BAD_NAMES = ["5_short.ipynb", "05-dashes.ipynb", "05_CamelCase.ipynb", "start_here.ipynb", "05_.ipynb"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_checker_flags_bad_file_names(name: str, tmp_path: Path) -> None:
    assert any("is not NN_snake_case" in v for v in check(good_notebook(name), tmp_path, name))


def test_checker_flags_unreadable_notebook(tmp_path: Path) -> None:
    path = tmp_path / "07_broken.ipynb"
    path.write_text("{not json")
    assert C.check_notebook(path, TEST_CONFIG) == [
        "07_broken.ipynb: cannot read as a notebook: Notebook does not appear to be JSON: '{not json'"
    ]
