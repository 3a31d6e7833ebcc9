"""Notebook conventions of the course: the single-source repo address and the rule checker.

``check_notebook(path, repo, branch)`` returns a list of human-readable violations (empty when
the notebook follows every rule); ``tests/test_notebook_conventions.py`` runs it on every
``notebooks/*.ipynb``. The rules are listed in README.md, "How to add a notebook".
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubhelpers.params import PARAMETER_NAME

NAME_RE = re.compile(r"^\d{2}_[a-z0-9]+(?:_[a-z0-9]+)*\.ipynb$")
GITHUB_RE = re.compile(r"^https://github\.com/(?P<owner>[\w.-]+)/(?P<name>[\w.-]+?)(?:\.git)?/?$")
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_RE = re.compile(r"\[!\[Open in Colab\]\([^)]*\)\]\([^)]*\)", re.IGNORECASE)
COLAB_MARKER = "google.colab"
FORBIDDEN = {
    "!pip / %pip": re.compile(r"^\s*(?:!|%{1,2})\s*pip\b", re.MULTILINE),
    "pip install": re.compile(r"\bpip\s+install\b|[\"']pip[\"']\s*,\s*[\"']install[\"']"),
    "login(": re.compile(r"login\s*\("),
}
UNSAFE = {
    "trust_remote_code=True": re.compile(r"""trust_remote_code["']?\s*[=:]\s*True"""),
    "pickle.load": re.compile(r"\bpickle\.loads?\s*\("),
    "torch.load without weights_only=True": re.compile(r"\btorch\.load\s*\((?![^)]*weights_only\s*=\s*True)"),
}
TOKEN_RE = re.compile(r"\b(?:hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{20,})\b")
LOCAL_PATH_RE = re.compile(r"(?<![\w.~])(?:/(?:root|home|Users|work|tmp|private|var/folders)/[^\s'\"<>)]*|"
                           r"[A-Z]:\\Users\\[^\s'\"<>)]*)")
HUBHELPERS_IMPORT_RE = re.compile(r"^\s*(?:from\s+hubhelpers\b|import\s+hubhelpers\b)", re.MULTILINE)


@dataclass(frozen=True)
class CourseConfig:
    """Where the course lives: the one place a fork edits ([tool.llm-hub] in pyproject.toml)."""

    repo: str
    branch: str = "main"


def _load_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file (tomllib on Python 3.11+, tomli before)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    with path.open("rb") as handle:
        return tomllib.load(handle)


def load_course_config(root: Path) -> CourseConfig:
    """Read [tool.llm-hub] repo/branch from ``root``/pyproject.toml, validating the address."""
    table = _load_toml(root / "pyproject.toml").get("tool", {}).get("llm-hub", {})
    repo, branch = table.get("repo"), table.get("branch", "main")
    if not isinstance(repo, str) or not GITHUB_RE.match(repo):
        raise ValueError(f"[tool.llm-hub] repo = {repo!r}: expected 'https://github.com/OWNER/NAME'")
    if not isinstance(branch, str) or not branch:
        raise ValueError(f"[tool.llm-hub] branch = {branch!r}: expected a non-empty branch name")
    return CourseConfig(repo.rstrip("/").removesuffix(".git"), branch)


def colab_url(config: CourseConfig, notebook_name: str) -> str:
    """Return the Colab address opening ``notebooks/<notebook_name>`` of the course repo."""
    match = GITHUB_RE.match(config.repo)
    if not match:
        raise ValueError(f"repo {config.repo!r} is not a GitHub address 'https://github.com/OWNER/NAME'")
    owner, name = match["owner"], match["name"]
    return f"https://colab.research.google.com/github/{owner}/{name}/blob/{config.branch}/notebooks/{notebook_name}"


def badge_markdown(config: CourseConfig, notebook_name: str) -> str:
    """Return the "Open in Colab" badge for one notebook."""
    return f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(config, notebook_name)})"


def colab_cell_source(config: CourseConfig) -> str:
    """Return the canonical Colab setup cell: installs the course inside Colab, nothing elsewhere."""
    return (
        "# Colab setup: inside Google Colab, install the course package (Colab keeps its own torch).\n"
        "# Elsewhere this cell does nothing: use `make course`, `make lab` or environment.yml.\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        f'if "{COLAB_MARKER}" in sys.modules:\n'
        f'    COURSE_PACKAGE = "llm-hub @ git+{config.repo}@{config.branch}"\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", COURSE_PACKAGE], check=True)'
    )


def notebooks_in(directory: Path) -> list[Path]:
    """Return the course notebooks (NN_snake_case.ipynb) in ``directory``, sorted."""
    return sorted(p for p in directory.glob("*.ipynb") if NAME_RE.match(p.name))


# --------------------------------------------------------------------------- cell helpers
def _code_cells(nb: Any) -> list[tuple[int, Any]]:
    """Return (index, cell) for every code cell."""
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def _tags(cell: Any) -> list[str]:
    """Return a cell's tags."""
    return list(cell.get("metadata", {}).get("tags", []))


def colab_cell_indices(nb: Any) -> list[int]:
    """Return the indices of code cells that mention google.colab (the Colab setup cell)."""
    return [i for i, c in _code_cells(nb) if COLAB_MARKER in c.source]


# --------------------------------------------------------------------------- rules
def check_name(path: Path) -> list[str]:
    """File name must be NN_snake_case.ipynb."""
    return [] if NAME_RE.match(path.name) else [f"file name {path.name!r} is not NN_snake_case.ipynb"]


def check_intro(nb: Any, config: CourseConfig, name: str) -> list[str]:
    """First cell: markdown with a '# ' title, this notebook's Colab badge, learn and effect lines."""
    if not nb.cells or nb.cells[0].cell_type != "markdown":
        return ["first cell must be a markdown cell (title, Colab badge, what you learn, measured effect)"]
    text, problems = nb.cells[0].source, []
    if not re.search(r"^# \S", text, re.MULTILINE):
        problems.append("first cell has no '# ' title line")
    if f"]({colab_url(config, name)})" not in text or not BADGE_RE.search(text):
        problems.append(f"first cell lacks the Open in Colab badge linking to {colab_url(config, name)}")
    for phrase in ("You will learn", "Measured effect"):
        if phrase.lower() not in text.lower():
            problems.append(f"first cell lacks a {phrase!r} section")
    return problems


def _check_assignment(stmt: ast.stmt, lines: list[str]) -> list[str]:
    """One parameters-cell statement must be `NAME: type = literal  # comment`."""
    if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
        return [f"parameters cell line {stmt.lineno}: only `NAME: type = literal  # comment` is allowed"]
    name, problems = stmt.target.id, []
    if not PARAMETER_NAME.fullmatch(name):
        problems.append(f"parameter {name!r} must be UPPER_SNAKE_CASE")
    try:
        ast.literal_eval(stmt.value) if stmt.value is not None else None
    except ValueError:
        problems.append(f"parameter {name!r} must be assigned a literal (number, string, bool, list, ...)")
    if stmt.value is None:
        problems.append(f"parameter {name!r} has no value")
    if "#" not in lines[stmt.lineno - 1]:
        problems.append(f"parameter {name!r} needs a trailing '# comment' saying what it does")
    return problems


def check_parameters(nb: Any) -> list[str]:
    """Exactly one code cell tagged 'parameters', holding only annotated literal assignments."""
    tagged = [c for c in nb.cells if "parameters" in _tags(c)]
    if len(tagged) != 1:
        return [f"expected exactly one cell tagged 'parameters', found {len(tagged)}"]
    cell = tagged[0]
    if cell.cell_type != "code":
        return ["the cell tagged 'parameters' must be a code cell"]
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as err:
        return [f"parameters cell does not parse: {err.msg} (line {err.lineno})"]
    if not tree.body:
        return ["parameters cell defines no parameter"]
    lines = cell.source.splitlines()
    return [problem for stmt in tree.body for problem in _check_assignment(stmt, lines)]


def check_validation_cell(nb: Any) -> list[str]:
    """The cell after the parameters cell declares the checks: imports, one `check_params(...)`, at most a print."""
    index = next((i for i, c in enumerate(nb.cells) if "parameters" in _tags(c)), None)
    if index is None or index + 1 >= len(nb.cells) or nb.cells[index + 1].cell_type != "code":
        return ["the parameters cell must be followed by a code cell calling hubhelpers.params.check_params"]
    try:
        tree = ast.parse(nb.cells[index + 1].source)
    except SyntaxError as err:
        return [f"validation cell does not parse: {err.msg} (line {err.lineno})"]
    problems = [f"validation cell line {node.lineno}: no hand-written `{type(node).__name__.lower()}`: declare the "
                f"check in check_params(globals(), {{...}}) (hubhelpers.params)"
                for node in ast.walk(tree) if isinstance(node, (ast.Raise, ast.If, ast.IfExp, ast.Assert))]
    calls = [ast.unparse(stmt.value.func) for stmt in tree.body
             if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)]
    others = [stmt for stmt in tree.body if not isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Expr))]
    if calls not in (["check_params"], ["check_params", "print"]) or others:
        problems.append("validation cell must hold only imports, one check_params(globals(), {...}) call and "
                        f"at most a print, found calls {calls} and {len(others)} other statement(s)")
    return problems


MODEL_PARAMETERS = ("MODEL", "ENCODER")


def parameter_names(source: str) -> set[str]:
    """The names a parameters cell's source assigns (annotated or not); SyntaxError when it does not parse."""
    return {target.id for node in ast.parse(source).body if isinstance(node, (ast.Assign, ast.AnnAssign))
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Name)}


def check_shipped_flag(nb: Any) -> list[str]:
    """A notebook with a MODEL / ENCODER parameter builds its Results with shipped=is_shipped(those parameters).

    Its SHIPPED bands are then raised for the shipped models only, and reported for any other model.
    """
    params = next((c for c in nb.cells if "parameters" in _tags(c)), None)
    try:
        declared = parameter_names(params.source) if params else set()
    except SyntaxError:
        return []  # check_parameters reports it
    needed = [name for name in MODEL_PARAMETERS if name in declared]
    problems = []
    for i, cell in _code_cells(nb):
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == "Results"):
            flag = next((ast.unparse(k.value) for k in call.keywords if k.arg == "shipped"), "")
            if needed and flag != f"is_shipped({', '.join(needed)})":
                problems.append(f"cell {i}: Results(...) must pass shipped=is_shipped({', '.join(needed)}) "
                                f"(found {flag or 'no shipped='}): SHIPPED bands hold for the shipped models only")
    return problems


def _is_colab_guard(stmt: ast.stmt) -> bool:
    """True for `if "google.colab" in sys.modules:` with no else branch."""
    if not isinstance(stmt, ast.If) or stmt.orelse:
        return False
    test = stmt.test
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Constant)
        and test.left.value == COLAB_MARKER
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.In)
        and ast.unparse(test.comparators[0]) == "sys.modules"
    )


def check_colab_cell(nb: Any, config: CourseConfig) -> list[str]:
    """One Colab cell: imports, then only `if "google.colab" in sys.modules:` installing the course."""
    indices = colab_cell_indices(nb)
    if len(indices) != 1:
        return [f"expected exactly one Colab setup cell (mentioning {COLAB_MARKER!r}), found {len(indices)}"]
    source = nb.cells[indices[0]].source
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        return [f"Colab setup cell does not parse: {err.msg} (line {err.lineno})"]
    guards = [s for s in tree.body if _is_colab_guard(s)]
    imports = (ast.Import, ast.ImportFrom)
    others = [s for s in tree.body if not _is_colab_guard(s) and not isinstance(s, imports)]
    problems = []
    if len(guards) != 1:
        problems.append('Colab setup cell needs one `if "google.colab" in sys.modules:` block with no else')
    if others:
        problems.append(f"Colab setup cell does work outside the Colab guard (line {others[0].lineno})")
    guarded = "\n".join(ast.unparse(g) for g in guards)
    if "pip" not in guarded or f"git+{config.repo}@" not in guarded:
        problems.append(f"Colab setup cell must pip-install the course from {config.repo} inside the guard")
    first_import = next((i for i, c in _code_cells(nb) if HUBHELPERS_IMPORT_RE.search(c.source)), None)
    if first_import is not None and first_import < indices[0]:
        problems.append("Colab setup cell must come before the first hubhelpers import")
    return problems


def check_clean(nb: Any) -> list[str]:
    """Code cells carry no outputs and no execution counts."""
    problems = []
    for i, cell in _code_cells(nb):
        if cell.get("outputs"):
            problems.append(f"cell {i} has committed outputs (clear them)")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {i} has an execution count (clear it)")
    return problems


def check_kernelspec(nb: Any) -> list[str]:
    """Notebook metadata names a kernelspec."""
    spec = nb.metadata.get("kernelspec") or {}
    if not spec.get("name") or not spec.get("display_name"):
        return ["metadata has no kernelspec with a name and display_name"]
    return []


def check_forbidden(nb: Any) -> list[str]:
    """No pip installs or login() calls outside the Colab setup cell."""
    allowed = set(colab_cell_indices(nb)[:1])
    return [
        f"cell {i} uses {label} (only the Colab setup cell may install; tokens come from the environment)"
        for i, cell in _code_cells(nb)
        if i not in allowed
        for label, pattern in FORBIDDEN.items()
        if pattern.search(cell.source)
    ]


def unsafe_code(source: str) -> list[str]:
    """Labels of the unsafe loading patterns in `source` (remote code, pickle loads)."""
    return [label for label, pattern in UNSAFE.items() if pattern.search(source)]


def check_unsafe(nb: Any) -> list[str]:
    """No cell enables trust_remote_code or loads a pickle."""
    return [f"cell {i} uses {label} (only safetensors are loaded; remote code stays off)"
            for i, cell in _code_cells(nb) for label in unsafe_code(cell.source)]


def _output_texts(cell: Any) -> list[str]:
    """Every text a code cell's outputs carry: streams, results, displays and tracebacks."""
    texts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            texts.append("".join(out["text"]) if isinstance(out["text"], list) else out["text"])
        for value in (out.get("data") or {}).values():
            if isinstance(value, (str, list)):
                texts.append("".join(value) if isinstance(value, list) else value)
        texts.extend(out.get("traceback", []))
    return texts


def scan_outputs(nb: Any, secrets: tuple[str, ...] = ()) -> list[str]:
    """Leaks in an executed notebook's outputs: token-like strings, the given secrets, local absolute paths."""
    problems = []
    for i, cell in _code_cells(nb):
        for text in _output_texts(cell):
            if TOKEN_RE.search(text) or any(secret and secret in text for secret in secrets):
                problems.append(f"cell {i} output contains an access token")
            problems.extend(f"cell {i} output contains a local path {m.group(0)[:60]!r}"
                            for m in LOCAL_PATH_RE.finditer(text))
    return problems


# A measured number is printed by the code, never typed into markdown (it goes stale on the next run or machine).
# A decimal or a percentage in markdown is accepted only as: a band threshold (right after a comparison), a reference
# value in a paragraph that cites its source (a link or "et al."), a literal of the parameters cell, or code.
DECIMAL_RE = re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?%|(?<![\w.])\d+\.\d+(?![\w.])")
THRESHOLD_RE = re.compile(r"(?:≥|≤|<|>|\\geq?|\\leq?|\bat (?:least|most)|\bwithin|\bbelow|\babove|\bunder)\s*\$?\s*$")
CITED_RE = re.compile(r"\]\(https?://|\bet al\.")
CODE_RE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
LINK_TARGET_RE = re.compile(r"\]\([^)]*\)")
BLOCK_RE = re.compile(r"\n\s*\n|\n(?=\s*(?:[-*]|\d+\.)\s)")  # paragraphs and list items


def _parameter_literals(nb: Any) -> set[float]:
    """The numbers written as literals in the parameters cell (in lists too)."""
    params = next((c for c in nb.cells if "parameters" in _tags(c)), None)
    try:
        tree = ast.parse(params.source) if params else ast.Module(body=[], type_ignores=[])
    except SyntaxError:
        return set()
    return {float(node.value) for node in ast.walk(tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, (int, float)) and not isinstance(node.value, bool)}


def typed_numbers(markdown: str, allowed: set[float] = frozenset()) -> list[str]:
    """The decimals and percentages of ``markdown`` that are neither thresholds, cited values, parameters nor code."""
    found = []
    for block in BLOCK_RE.split(CODE_RE.sub("`code`", markdown)):
        if CITED_RE.search(block):
            continue
        prose = LINK_TARGET_RE.sub("]()", block).replace("\n", " ")
        for match in DECIMAL_RE.finditer(prose):
            before = prose[max(0, match.start() - 30):match.start()]
            if THRESHOLD_RE.search(before) or float(match.group().rstrip("%").strip()) in allowed:
                continue
            found.append(f"{match.group()!r} in '…{prose[max(0, match.start() - 40):match.end() + 20]}…'")
    return found


def check_markdown_numbers(nb: Any) -> list[str]:
    """No markdown cell types a measured number: decimals and percentages only as thresholds, citations, parameters."""
    allowed = _parameter_literals(nb)
    return [f"markdown cell {i}: {hit} is typed by hand: print measured numbers from code and explain them in "
            "words; markdown may hold a band threshold (after ≥, ≤, <, >, at least, at most, within, below, above, "
            "under), a reference value whose paragraph cites its source (a link or 'et al.'), a parameters-cell "
            "literal, or code"
            for i, cell in enumerate(nb.cells) if cell.cell_type == "markdown"
            for hit in typed_numbers(cell.source, allowed)]


def check_imports(nb: Any) -> list[str]:
    """At least one code cell imports from hubhelpers."""
    if any(HUBHELPERS_IMPORT_RE.search(c.source) for _, c in _code_cells(nb)):
        return []
    return ["no cell imports hubhelpers (`from hubhelpers... import ...`)"]


def check_notebook(path: Path, config: CourseConfig) -> list[str]:
    """Return every convention violation of the notebook at ``path`` (empty list: all good)."""
    import nbformat

    path = Path(path)
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # nbformat raises several unrelated types on bad input
        return [f"{path.name}: cannot read as a notebook: {err}"]
    rules: list[Callable[[], list[str]]] = [
        lambda: check_name(path),
        lambda: check_intro(nb, config, path.name),
        lambda: check_parameters(nb),
        lambda: check_validation_cell(nb),
        lambda: check_shipped_flag(nb),
        lambda: check_colab_cell(nb, config),
        lambda: check_clean(nb),
        lambda: check_kernelspec(nb),
        lambda: check_forbidden(nb),
        lambda: check_unsafe(nb),
        lambda: check_imports(nb),
        lambda: check_markdown_numbers(nb),
    ]
    return [f"{path.name}: {problem}" for rule in rules for problem in rule()]
