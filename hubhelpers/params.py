"""Checks for notebook parameters: each returns the value or raises an error naming the parameter and what it accepts.

Used in the cell after a notebook's parameters cell, so that `papermill -p STEPS -5` fails at once with
"STEPS must be an int >= 1, got -5" instead of deep inside a training loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def check_int(name: str, value: Any, low: int = 1, high: int | None = None) -> int:
    """An int (not a bool) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an int {span}, got {value!r}")
    return value


def check_float(name: str, value: Any, low: float = 0.0, high: float | None = None) -> float:
    """A real number (int or float, not a bool) with low < value (<= high)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > low \
            or (high is not None and value > high):
        span = f"> {low}" if high is None else f"in ({low}, {high}]"
        raise ValueError(f"{name} must be a number {span}, got {value!r}")
    return float(value)


def check_model(name: str, value: Any) -> str:
    """A model name: 'tinyworld', a hub id or a local path (a non-empty str)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be 'tinyworld', a hub id or a local path (a non-empty str), got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """One of `choices`."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_list(name: str, value: Any, item: Callable[[Any], bool], what: str, min_len: int = 1) -> list:
    """A list of at least `min_len` items, each accepted by `item` (`what` says what an item must be)."""
    if not isinstance(value, list) or len(value) < min_len or not all(item(v) for v in value):
        raise ValueError(f"{name} must be a list of at least {min_len} {what}, got {value!r}")
    return value
