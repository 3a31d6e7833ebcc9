"""The course as a website: ``make book`` turns the last course run's executed notebooks into build/book/.

Usage::

    python -m hubhelpers.tooling.book            # first runs the notebooks whose executed copy is missing or stale
    python -m hubhelpers.tooling.book --no-run   # fail instead, naming the notebooks to run

Sphinx with MyST-NB and the Sphinx Book Theme (the engine of Jupyter Book 1) renders each executed notebook in
build/executed/ as a page, with its outputs and plots, and never executes one (``nb_execution_mode = "off"``): the
course runner already did, and checked every figure. The landing page is README's course map, the report of figures
and bands (as REPORT.md, from every notebook's last run) is a page, and every page's footer says where its outputs
come from: the date, commit, machine and package versions the runner recorded in build/provenance.json. Every asset
is local (MathJax from sphinx-mathjax-offline, no ipywidgets JavaScript from a CDN), so the site builds and reads with
the network cut.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hubhelpers import results as R
from hubhelpers.tooling import course
from hubhelpers.tooling.conventions import BADGE_IMAGE, BADGE_RE, CourseConfig, colab_url, load_course_config

SOURCE_DIR = "book-src"  # in the build folder: the staged Sphinx project, rewritten on every build
BOOK_DIR = "book"
PAGES_DIR = "notebooks"  # pages live under book/notebooks/<stem>.html
DOWNLOADS_DIR = "downloads"  # the committed notebooks, without outputs, offered for download
REPORT_PAGE = "report"
MAP_HEADING = "## Course map"
BADGE_FILE = "_static/colab-badge.svg"  # a local stand-in for Colab's badge image, which is served from Google
BADGE_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20" role="img" aria-label="Open in Colab">'
             '<rect width="117" height="20" rx="3" fill="#555"/><rect x="44" width="73" height="20" rx="3" '
             'fill="#f9ab00"/><rect x="44" width="6" height="20" fill="#f9ab00"/><g fill="#fff" '
             'font-family="Verdana,DejaVu Sans,sans-serif" font-size="11"><text x="7" y="14">Open</text>'
             '<text x="52" y="14" fill="#333">in Colab</text></g></svg>')
NOTEBOOK_LINK = re.compile(r"\]\((?:\.\./)?(?:notebooks|executed)/(\d\d_[a-z0-9_]+)\.ipynb\)")
LOCAL_LINK = re.compile(r"\[([^\]]+)\]\((?!https?://|#|notebooks/)([^)]+)\)")


def stale_notebooks(notebooks: Sequence[Path], build_dir: Path) -> list[str]:
    """Stems whose executed copy, provenance or finished run (wall_s in results.json: an interrupted run has none) is
    missing, or whose executed copy is older than the notebook."""
    executed = build_dir / course.EXECUTED_DIR
    known, results = load_provenance(build_dir), R.load_results(build_dir)
    return [nb.stem for nb in notebooks
            if nb.stem not in known or "wall_s" not in results.get(nb.stem, {}) or not (executed / nb.name).is_file()
            or (executed / nb.name).stat().st_mtime < nb.stat().st_mtime]


def load_provenance(build_dir: Path) -> dict[str, Any]:
    """build/provenance.json ({} if the course runner has not written it)."""
    path = build_dir / course.PROVENANCE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def provenance_html(provenance: Mapping[str, Any]) -> str:
    """One footer paragraph: when, at which commit, on what machine and with which packages a notebook ran."""
    packages = ", ".join(f"{name} {version}" for name, version in provenance.get("packages", {}).items() if version)
    params = " ".join(provenance.get("parameters", [])) or "the committed defaults"
    parts = [f"Executed {provenance.get('date', '?')}", f"commit {provenance.get('commit') or 'unknown'}",
             f"{provenance.get('cpu') or 'unknown CPU'} ({provenance.get('cpus', '?')} CPUs), "
             f"{provenance.get('platform', '?')}", f"Python {provenance.get('python', '?')}", packages,
             f"parameters: {params}"]
    return f'<p class="llm-hub-provenance">{html.escape(" · ".join(p for p in parts if p))}</p>'


def site_provenance(provenance: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One provenance for the pages that are not a notebook: the run's, or the range when notebooks ran apart."""
    runs = [provenance[k] for k in sorted(provenance)]
    if not runs:
        return {}
    out = dict(max(runs, key=lambda r: r.get("date", "")))  # the newest run's machine and packages
    dates = sorted({r.get("date", "?") for r in runs})
    commits = sorted({r.get("commit") or "unknown" for r in runs})
    out["date"] = dates[0] if len(dates) == 1 else f"between {dates[0]} and {dates[-1]}"
    out["commit"] = ", ".join(commits) if len(commits) > 1 else commits[0]
    return out


def course_map(readme: str) -> str:
    """README's course-map section, its notebook links pointing at the site's pages and other local links as text."""
    start = readme.find(MAP_HEADING)
    if start < 0:
        raise ValueError(f"README has no '{MAP_HEADING}' section to use as the landing page")
    end = readme.find("\n## ", start + len(MAP_HEADING))
    section = readme[start:end if end > 0 else None]
    return as_site_links(section)


def as_site_links(markdown: str) -> str:
    """Point links to notebooks (committed or executed) at their pages; other relative links become plain code."""
    markdown = NOTEBOOK_LINK.sub(rf"]({PAGES_DIR}/\1.ipynb)", markdown)
    return LOCAL_LINK.sub(lambda m: m.group(0) if m.group(2).startswith(f"{PAGES_DIR}/")
                          or m.group(2).startswith("figures/") else f"{m.group(1)} (`{m.group(2)}`)", markdown)


def index_page(readme: str, stems: Sequence[str]) -> str:
    """The landing page: what the site is, the course map, and the table of contents."""
    toc = "\n".join(f"{PAGES_DIR}/{stem}" for stem in stems)
    return (f"# llm-hub\n\nA course on large language models in numbered notebooks. Each page below is a notebook as "
            f"the course runner last executed it, with its outputs and plots; the footer of every page says when, "
            f"at which commit, on what machine and with which package versions. Every measured effect is checked "
            f"against a band: [the report](report.md) lists them all. Open a notebook in Colab from its badge, or "
            f"download it (without outputs) from the link under its title.\n\n"
            f"{course_map(readme)}\n\n```{{toctree}}\n:hidden:\n:caption: Notebooks\n\n{toc}\n```\n\n"
            f"```{{toctree}}\n:hidden:\n:caption: Figures and bands\n\n{REPORT_PAGE}\n```\n")


def with_download_cell(notebook: dict, stem: str, config: CourseConfig) -> dict:
    """The executed notebook with, beside its Colab badge (the site's own image), a link to download the committed
    copy; a notebook without a badge gets the links in a cell after its first."""
    links = (f"{{download}}`Download this notebook <../{DOWNLOADS_DIR}/{stem}.ipynb>` (as committed, without "
             f"outputs: run it yourself; the outputs below are from `make course`, the footer says where it ran)")
    cells = [local_badge(c) for c in notebook["cells"]]
    first = "".join(cells[0]["source"]) if cells and cells[0]["cell_type"] == "markdown" else ""
    badge = BADGE_RE.search(first)
    if badge:
        cells[0] = {**cells[0], "source": f"{first[:badge.end()]} · {links}{first[badge.end():]}"}
        return {**notebook, "cells": cells}
    cell = {"cell_type": "markdown", "id": "llm-hub-download", "metadata": {},
            "source": f"[Open it in Colab]({colab_url(config, stem + '.ipynb')}) · {links}"}
    return {**notebook, "cells": cells[:1] + [cell] + cells[1:]}


def local_badge(cell: dict) -> dict:
    """A markdown cell whose Colab badge image is the site's own copy (no image fetched from Google at view time)."""
    if cell["cell_type"] != "markdown":
        return cell
    source = "".join(cell["source"]).replace(BADGE_IMAGE, f"../{BADGE_FILE}")
    return {**cell, "source": source}


def conf_py(repo_url: str, footers: Mapping[str, str]) -> str:
    """The Sphinx configuration of the staged project; `footers`: each page's provenance paragraph, by page name."""
    return f'''# Written by hubhelpers.tooling.book on every build; edit the generator, not this file.
project = "llm-hub"
html_title = "llm-hub"
extensions = ["myst_nb", "sphinx-mathjax-offline"]
nb_execution_mode = "off"  # the course runner executed every notebook; the site only renders them
nb_ipywidgets_js = {{}}  # no widget JavaScript from a CDN; progress bars show their text
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
exclude_patterns = ["_build", ".doctrees", "downloads"]  # downloads: files offered by the {{download}} links
html_theme = "sphinx_book_theme"
html_show_sourcelink = False
html_copy_source = False
html_context = {{"default_mode": "auto"}}  # light or dark as the reader's system prefers
html_theme_options = {{
    "repository_url": {repo_url!r},
    "use_repository_button": True,
    "use_download_button": False,  # it offers the page's source, not copied here; each page links its notebook
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
}}

# Each notebook page gets its own provenance in the footer (the theme's extra_footer, set per page); the other
# pages get the course run's.
FOOTERS = {dict(footers)!r}


def _page_footer(app, pagename, templatename, context, doctree):
    context["theme_extra_footer"] = FOOTERS.get(pagename, FOOTERS[""])


def setup(app):
    app.connect("html-page-context", _page_footer)
'''


def recorded_run(path: Path, executed: Mapping[str, Any], figures: Mapping[str, Any]) -> course.RunResult:
    """A notebook's last run as the runner left it: its executed copy at `path` (`executed`, parsed: did it stop?)
    and its figures in results.json (wall time, peak memory), so the report page covers every notebook even when the
    last course run was a subset (--only)."""
    return course.RunResult(path.stem, 1 if course.executed_stopped(executed) else 0,
                            float(figures.get("wall_s", 0.0)), float(figures.get("peak_rss_mb", 0.0)), path,
                            path.with_suffix(".log"))


def stage(root: Path, build_dir: Path, notebooks: Sequence[Path]) -> Path:
    """Write the Sphinx project into build/book-src/ from the executed notebooks, their results and README."""
    src = build_dir / SOURCE_DIR
    shutil.rmtree(src, ignore_errors=True)
    (src / PAGES_DIR).mkdir(parents=True)
    (src / DOWNLOADS_DIR).mkdir()
    (src / BADGE_FILE).parent.mkdir()
    (src / BADGE_FILE).write_text(BADGE_SVG, encoding="utf-8")
    provenance, config, results = load_provenance(build_dir), load_course_config(root), R.load_results(build_dir)
    runs = []
    for nb in notebooks:
        path = build_dir / course.EXECUTED_DIR / nb.name
        executed = json.loads(path.read_text(encoding="utf-8"))
        runs.append(recorded_run(path, executed, results.get(nb.stem, {})))
        page = with_download_cell(executed, nb.stem, config)
        (src / PAGES_DIR / nb.name).write_text(json.dumps(page, ensure_ascii=False), encoding="utf-8")
        shutil.copy2(nb, src / DOWNLOADS_DIR / nb.name)
    stems = [nb.stem for nb in notebooks]
    (src / "index.md").write_text(index_page((root / "README.md").read_text(encoding="utf-8"), stems),
                                  encoding="utf-8")
    report = course.render_report(runs, build_dir)
    (src / f"{REPORT_PAGE}.md").write_text(as_site_links(report), encoding="utf-8")
    if (build_dir / "figures").is_dir():
        shutil.copytree(build_dir / "figures", src / "figures")
    footers = {"": provenance_html(site_provenance(provenance)),
               **{f"{PAGES_DIR}/{stem}": provenance_html(provenance[stem]) for stem in stems}}  # none is stale
    (src / "conf.py").write_text(conf_py(config.repo, footers), encoding="utf-8")
    return src


def build_site(src: Path, out: Path) -> int:
    """Run Sphinx's HTML builder on `src` into `out`; warnings are errors (a broken reference fails the build)."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going", "-d", str(src / ".doctrees"),
           str(src), str(out)]
    return subprocess.run(cmd).returncode


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hubhelpers.tooling.book", description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=None, help="the course's build folder (default: build/)")
    parser.add_argument("--no-run", action="store_true",
                        help="fail if an executed notebook is missing or stale instead of running it")
    parser.add_argument("-j", "--jobs", type=int, default=course.DEFAULT_JOBS,
                        help="notebooks run at once when the course must run first")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    args = parse_args(argv)
    root = R.find_project_root() or Path.cwd()
    build_dir = (args.build_dir or R.find_build_dir()).resolve()
    notebooks = course.discover_notebooks(root / "notebooks")
    stale = stale_notebooks(notebooks, build_dir)
    if stale and args.no_run:
        print(f"error: no up-to-date executed notebook for {', '.join(stale)}: run `make course`", file=sys.stderr)
        return 2
    if stale:
        print(f"executed notebooks missing, interrupted or older than their source: {', '.join(stale)}; running them")
        where = ["--build-dir", str(build_dir)] if args.build_dir else []
        code = course.main(["--jobs", str(args.jobs), *where, "--only", *stale])
        if code:
            print("error: the course run failed; the site is not built from a failing run", file=sys.stderr)
            return code
    try:
        src = stage(root, build_dir, notebooks)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    code = build_site(src, build_dir / BOOK_DIR)
    if code == 0:
        print(f"site: {build_dir / BOOK_DIR / 'index.html'} ({len(notebooks)} notebook pages and the report)")
    return code


if __name__ == "__main__":
    sys.exit(main())
