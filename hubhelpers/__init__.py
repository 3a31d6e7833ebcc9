"""hubhelpers: the tested helper package of the llm-hub course.

Importing the package does no work: submodules load on first attribute access
(``hubhelpers.results``) or by explicit import (``from hubhelpers.results import Results``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

__version__ = "0.1.0"

_LAZY_ATTRS: dict[str, str] = {
    "Results": "hubhelpers.results",
    "seed_everything": "hubhelpers.runtime",
    "runtime_report": "hubhelpers.runtime",
    "print_runtime_report": "hubhelpers.runtime",
    "setup_plots": "hubhelpers.runtime",
    "in_colab": "hubhelpers.runtime",
}

__all__ = ["__version__", *sorted(_LAZY_ATTRS)]


def __getattr__(name: str) -> object:
    """Load a convenience attribute or a submodule on first access."""
    if name in _LAZY_ATTRS:
        return getattr(importlib.import_module(_LAZY_ATTRS[name]), name)
    if name.startswith("_"):
        raise AttributeError(f"module 'hubhelpers' has no attribute {name!r}")
    try:
        module: ModuleType = importlib.import_module(f"hubhelpers.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"hubhelpers.{name}":
            raise
        raise AttributeError(f"module 'hubhelpers' has no attribute {name!r}") from None
    return module
