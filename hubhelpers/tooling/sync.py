"""Rewrite every notebook's Colab badge and Colab setup cell from [tool.llm-hub] in pyproject.toml.

    python -m hubhelpers.tooling.sync            # rewrite notebooks/*.ipynb in place
    python -m hubhelpers.tooling.sync --check    # exit 1 listing notebooks that are out of sync

Also home to the course's other file rewriting: README's table of which lesson modules each notebook uses
(written here, from the notebooks' imports), and ``update_readme``, which writes the README course map's CPU-time
column from measured notebook times (called by ``make bench``).
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hubhelpers.results import find_project_root
from hubhelpers.tooling.conventions import (
    BADGE_RE,
    CourseConfig,
    badge_markdown,
    colab_cell_indices,
    colab_cell_source,
    load_course_config,
    notebooks_in,
)

README_ROW_RE = re.compile(r"^\| (?P<num>\d{2}) \|")
MODULES_BEGIN = "<!-- notebook -> modules: written by make sync-notebooks -->"
MODULES_END = "<!-- end of notebook -> modules -->"
EVERY_NOTEBOOK = ("params", "results", "runtime")  # used by every notebook: left out of the table


def _with_badge(text: str, badge: str) -> str:
    """Return markdown ``text`` with its Colab badge replaced by ``badge`` (inserted after the title)."""
    if BADGE_RE.search(text):
        return BADGE_RE.sub(lambda _: badge, text, count=1)
    lines = text.splitlines()
    at = next((i + 1 for i, line in enumerate(lines) if line.startswith("# ")), 0)
    return "\n".join([*lines[:at], "", badge, "", *lines[at:]]).strip("\n")


def sync_notebook(nb: Any, name: str, config: CourseConfig) -> Any:
    """Return a copy of ``nb`` whose badge and Colab cell are derived from ``config``."""
    import nbformat

    out = copy.deepcopy(nb)
    if out.cells and out.cells[0].cell_type == "markdown":
        out.cells[0].source = _with_badge(out.cells[0].source, badge_markdown(config, name))
    indices = colab_cell_indices(out)
    if indices:
        out.cells[indices[0]].source = colab_cell_source(config)
    else:
        out.cells.insert(1 if out.cells else 0, nbformat.v4.new_code_cell(colab_cell_source(config)))
    return out


def sync_file(path: Path, config: CourseConfig, *, write: bool) -> bool:
    """Sync one notebook file; return True when it was (or would be) changed."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    synced = sync_notebook(nb, path.name, config)
    changed = synced != nb
    if changed and write:
        nbformat.write(synced, path)
    return changed


def modules_used(nb: Any) -> list[str]:
    """The hubhelpers modules a notebook's code imports (`from hubhelpers import x`, `from hubhelpers.x import y`)."""
    found: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "hubhelpers":
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hubhelpers."):
                found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("hubhelpers."))
    return sorted(found)


def module_table(paths: Sequence[Path]) -> str:
    """README's table: each notebook and the lesson modules it uses (beyond params, results and runtime)."""
    import nbformat

    rows = ["| notebook | hubhelpers modules it uses |", "|---|---|"]
    for path in paths:
        modules = [m for m in modules_used(nbformat.read(path, as_version=4)) if m not in EVERY_NOTEBOOK]
        rows.append(f"| {path.stem} | {', '.join(f'`{m}`' for m in modules) or '—'} |")
    every = ", ".join(f"`{m}`" for m in EVERY_NOTEBOOK)
    return "\n".join([*rows, "", f"Every notebook also uses {every}."])


def with_module_table(text: str, table: str) -> str:
    """README ``text`` with the block between the module-table markers replaced by ``table``."""
    begin, end = text.find(MODULES_BEGIN), text.find(MODULES_END)
    if begin < 0 or end < begin:
        raise ValueError(f"README has no {MODULES_BEGIN!r} ... {MODULES_END!r} block for the module table")
    return text[: begin + len(MODULES_BEGIN)] + "\n" + table + "\n" + text[end:]


def update_readme(text: str, wall_s: Mapping[str, float]) -> str:
    """Rewrite the CPU-time column of the README course map from measured notebook times."""
    return update_readme_column(text, "CPU time", {name[:2]: f"≈{_round_seconds(s)} s" for name, s in wall_s.items()})


def update_readme_column(text: str, column_name: str, values: Mapping[str, str]) -> str:
    """Rewrite one column of the README course map: ``values`` maps a notebook number ('07') to its cell text."""
    header = next((line for line in text.splitlines() if line.startswith("| # |") and column_name in line), None)
    if header is None:
        raise ValueError(f"README has no course-map table with a {column_name!r} column")
    column = [c.strip() for c in header.strip("|").split("|")].index(column_name)
    out = []
    for line in text.splitlines(keepends=True):
        match = README_ROW_RE.match(line)
        if match and match["num"] in values:
            cells = line.rstrip("\n").strip("|").split("|")
            cells[column] = f" {values[match['num']]} "
            line = "|" + "|".join(cells) + "|" + ("\n" if line.endswith("\n") else "")
        out.append(line)
    return "".join(out)


def _round_seconds(seconds: float) -> int:
    """Seconds rounded to 5 s (to 1 s below 10 s): a map entry, not a stopwatch."""
    return max(1, round(seconds)) if seconds < 10 else int(5 * round(seconds / 5))


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m hubhelpers.tooling.sync",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only report notebooks out of sync")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/NN_*.ipynb")
    args = parser.parse_args(argv)
    root = find_project_root() or Path.cwd()
    config = load_course_config(root)
    paths = args.notebooks or notebooks_in(root / "notebooks")
    changed = [p for p in paths if sync_file(p, config, write=not args.check)]
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    synced = with_module_table(text, module_table(notebooks_in(root / "notebooks")))
    if synced != text:
        changed.append(readme)
        if not args.check:
            readme.write_text(synced, encoding="utf-8")
    verb = "out of sync" if args.check else "rewritten"
    for path in changed:
        print(f"{verb}: {path}")
    print(f"{len(paths)} notebooks checked against {config.repo}@{config.branch}; {len(changed)} {verb}")
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
