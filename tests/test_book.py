"""make book: the staged Sphinx project and a real build of a one-notebook course in tmp_path (no network, no run)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from hubhelpers.tooling import book, course
from hubhelpers.tooling.conventions import BADGE_IMAGE, CourseConfig

REPO = "https://github.com/someone/llm-hub"
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5E"
                       "rkJggg==")
README = """# llm-hub

## Course map

*Measured effect* is written by `make course` from [results](build/results.json).

| # | notebook | effect |
|---|---|---|
| 00 | [start here](notebooks/00_start_here.ipynb) | a figure |

## Ways to run
"""


def _project(tmp_path: Path) -> tuple[Path, Path]:
    """A course of one notebook, executed, with a report and provenance: (project root, build folder)."""
    root, build = tmp_path / "proj", tmp_path / "proj" / "build"
    (root / "notebooks").mkdir(parents=True)
    (root / "README.md").write_text(README, encoding="utf-8")
    (root / "pyproject.toml").write_text(f'[project]\nname = "llm-hub"\n\n[tool.llm-hub]\nrepo = "{REPO}"\n',
                                         encoding="utf-8")
    title = f"# 00 · Start here\n\n[![Open In Colab]({BADGE_IMAGE})](https://colab.example)\n\nSome $x^2$ maths."
    nb = new_notebook(cells=[new_markdown_cell(title), new_code_cell("print(1)")])
    nbformat.write(nb, root / "notebooks" / "00_start_here.ipynb")
    outputs = [new_output("display_data", data={"image/png": base64.b64encode(PNG).decode(), "text/plain": "<Figure>"})]
    ran = new_code_cell("plot()", execution_count=1, outputs=outputs)  # as papermill leaves a cell that ran
    executed = new_notebook(cells=[new_markdown_cell(title), ran])
    executed.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}  # as papermill leaves it
    (build / "executed").mkdir(parents=True)
    nbformat.write(executed, build / "executed" / "00_start_here.ipynb")
    (build / "executed" / "00_start_here.log").write_text("ran\n", encoding="utf-8")
    (build / "results.json").write_text(json.dumps({"00_start_here": {"wall_s": 1.5, "peak_rss_mb": 100.0}}))
    prov = {"date": "2026-01-01 00:00 UTC", "commit": "abc123", "cpu": "a CPU", "cpus": 2, "platform": "Linux",
            "python": "3.11", "packages": {"torch": "2.13.0"}, "parameters": []}
    course.write_provenance(build, ["00_start_here"], prov)
    return root, build


def test_as_site_links_points_notebooks_at_pages_and_keeps_no_dead_local_link() -> None:
    text = ("[a](notebooks/00_start_here.ipynb) [b](executed/01_lm.ipynb) [c](build/bench.json) "
            "[d](https://x.org/y) ![f](figures/00/plot.png) [e](#anchor)")
    out = book.as_site_links(text)
    assert "[a](notebooks/00_start_here.ipynb)" in out and "[b](notebooks/01_lm.ipynb)" in out
    assert "c (`build/bench.json`)" in out and "[d](https://x.org/y)" in out
    assert "![f](figures/00/plot.png)" in out and "[e](#anchor)" in out


def test_course_map_needs_the_section() -> None:
    assert book.course_map(README).startswith("## Course map") and "Ways to run" not in book.course_map(README)
    with pytest.raises(ValueError, match="Course map"):
        book.course_map("# no map here\n")


def test_stale_notebooks_missing_older_or_without_provenance(tmp_path: Path) -> None:
    root, build = _project(tmp_path)
    source = root / "notebooks" / "00_start_here.ipynb"
    executed = build / "executed" / source.name
    os.utime(source, (1_000, 1_000))
    os.utime(executed, (2_000, 2_000))
    assert book.stale_notebooks([source], build) == []
    os.utime(source, (3_000, 3_000))  # edited after the run
    assert book.stale_notebooks([source], build) == ["00_start_here"]
    os.utime(source, (1_000, 1_000))
    (build / course.PROVENANCE_FILE).unlink()
    assert book.stale_notebooks([source], build) == ["00_start_here"]
    course.write_provenance(build, [source.stem], {"date": "d"})
    assert book.stale_notebooks([source], build) == []
    (build / "results.json").write_text(json.dumps({"00_start_here": {"acc": 1.0}}))  # a run interrupted
    assert book.stale_notebooks([source], build) == ["00_start_here"]
    (build / "results.json").write_text(json.dumps({"00_start_here": {"wall_s": 1.0}}))
    executed.unlink()
    assert book.stale_notebooks([source], build) == ["00_start_here"]


def test_write_provenance_keeps_other_notebooks_entries(tmp_path: Path) -> None:
    course.write_provenance(tmp_path, ["00_a", "01_b"], {"date": "d1"})
    course.write_provenance(tmp_path, ["01_b"], {"date": "d2"})
    assert json.loads((tmp_path / course.PROVENANCE_FILE).read_text()) == {"00_a": {"date": "d1"},
                                                                            "01_b": {"date": "d2"}}
    assert course.git_commit(tmp_path) == ""  # not a git checkout
    prov = course.run_provenance(tmp_path, ["-p", "SEED", "1"])
    assert {"date", "commit", "cpu", "cpus", "python", "packages"} <= set(prov) and prov["packages"]["torch"]


def test_book_builds_a_page_with_plot_badge_download_and_provenance(tmp_path: Path, monkeypatch) -> None:
    root, build = _project(tmp_path)
    monkeypatch.chdir(root)
    monkeypatch.setenv("HUBHELPERS_BUILD_DIR", str(build))
    assert book.main(["--no-run"]) == 0
    site = build / book.BOOK_DIR
    page = (site / "notebooks" / "00_start_here.html").read_text(encoding="utf-8")
    assert "Start here" in page and "commit abc123" in page and "torch 2.13.0" in page
    assert BADGE_IMAGE not in page and "colab-badge.svg" in page  # the badge image is the site's own
    assert "_downloads/" in page and "00_start_here.ipynb" in page
    assert (site / "_images").is_dir() and any((site / "_images").glob("*.png"))  # the plot
    assert "mathjax/tex-chtml.js" in page and (site / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert "cdn." not in page and "unpkg" not in page
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "commit abc123" in index and "Executed 2026-01-01" in index  # every page says where the outputs ran
    assert "Course map" in index and "notebooks/00_start_here.html" in index and "build/results.json" in index
    report = (site / "report.html").read_text(encoding="utf-8")
    assert "notebooks/00_start_here.html" in report and "passed" in report and "1.5" in report
    downloaded = next((site / "_downloads").rglob("00_start_here.ipynb"))
    assert json.loads(downloaded.read_text())["cells"][1]["outputs"] == []  # as committed, without outputs


def test_site_provenance_is_the_run_or_the_range() -> None:
    one = {"date": "2026-01-01 00:00 UTC", "commit": "a", "packages": {"torch": "1"}}
    assert book.site_provenance({"00_x": one, "01_y": one}) == one
    later = {**one, "date": "2026-01-02 00:00 UTC", "commit": "b", "packages": {"torch": "2"}}
    mixed = book.site_provenance({"00_x": one, "01_y": later})
    assert mixed["date"] == "between 2026-01-01 00:00 UTC and 2026-01-02 00:00 UTC" and mixed["commit"] == "a, b"
    assert mixed["packages"] == {"torch": "2"} and book.site_provenance({}) == {}


def test_book_refuses_a_stale_run_with_no_run(tmp_path: Path, monkeypatch, capsys) -> None:
    root, build = _project(tmp_path)
    monkeypatch.chdir(root)
    monkeypatch.setenv("HUBHELPERS_BUILD_DIR", str(build))
    (build / "executed" / "00_start_here.ipynb").unlink()
    assert book.main(["--no-run"]) == 2
    assert "00_start_here" in capsys.readouterr().err and not (build / book.BOOK_DIR).exists()


def test_recorded_run_reads_status_and_time_from_the_last_run(tmp_path: Path) -> None:
    _, build = _project(tmp_path)
    path = build / "executed" / "00_start_here.ipynb"
    executed, figures = json.loads(path.read_text()), {"wall_s": 1.5, "peak_rss_mb": 100.0}
    run = book.recorded_run(path, executed, figures)
    assert run.name == "00_start_here" and run.ok and run.wall_s == 1.5 and run.peak_rss_mb == 100.0
    executed["cells"][1]["outputs"] = [new_output("error", ename="ValueError", evalue="x", traceback=[])]
    run = book.recorded_run(path, executed, figures)
    assert not run.ok and "failed" in course.render_report([run], build)


def test_download_link_sits_beside_the_badge_or_in_a_cell_of_its_own() -> None:
    config = CourseConfig(REPO, "main")
    title = f"# 00 · Title\n\n[![Open In Colab]({BADGE_IMAGE})](https://colab.example)\n\nText."
    page = book.with_download_cell(new_notebook(cells=[new_markdown_cell(title), new_code_cell("x")]), "00_x", config)
    first = page["cells"][0]["source"]
    assert len(page["cells"]) == 2 and BADGE_IMAGE not in first and "colab-badge.svg" in first
    assert first.index("colab.example") < first.index("{download}`Download this notebook") < first.index("Text.")
    bare = book.with_download_cell(new_notebook(cells=[new_markdown_cell("# 00 · Title")]), "00_x", config)
    assert len(bare["cells"]) == 2 and "Download this notebook" in bare["cells"][1]["source"]
    colab = "colab.research.google.com/github/someone/llm-hub/blob/main/notebooks/00_x.ipynb"
    assert colab in bare["cells"][1]["source"]
