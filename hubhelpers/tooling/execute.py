"""papermill's command line for the course runner, started without jsonschema's optional IRI checker.

``python -m hubhelpers.tooling.execute IN.ipynb OUT.ipynb ...`` takes exactly papermill's arguments. papermill
imports nbformat, which imports jsonschema, which imports ``rfc3987_syntax`` when it is installed (jupyter-events asks
for it): that package compiles a Lark grammar at import time, 1.4 s of a 2-core machine before each of the
course's notebooks even starts its kernel. It only checks the ``iri`` formats, which nbformat's notebook schema
does not use, so this process marks it unavailable (jsonschema then skips that check) and runs papermill.
The notebook's kernel is a separate process and is not affected.
"""

from __future__ import annotations

import sys

SKIPPED_MODULES = ("rfc3987_syntax",)


def skip_modules(names: tuple[str, ...] = SKIPPED_MODULES) -> None:
    """Make `names` unimportable in this process (a None entry in sys.modules makes `import` raise ImportError)."""
    for name in names:
        sys.modules.setdefault(name, None)


def main() -> None:
    """Run papermill's CLI with the modules in SKIPPED_MODULES unimportable in this process."""
    skip_modules()
    from papermill.cli import papermill

    papermill(prog_name="papermill")


if __name__ == "__main__":
    main()
