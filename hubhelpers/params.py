"""Notebook parameters and config fields, declared once and checked with one message format.

The cell after a notebook's papermill `parameters` cell is a single call that says what each parameter accepts::

    check_params(globals(), {
        "SEED": Int(0),                       # an int >= 0 (never a bool)
        "MODEL": Model(),                     # 'tinyworld', a hub id or a local path
        "STEPS": Int(10),                     # an int >= 10
        "LR": Float(0, 1),                    # a number in (0, 1), bools refused
        "C": Float(0),                        # a number > 0: an int passes too (papermill -p C 2)
        "N_SHOW": Int(1, at_most="N_TEST"),   # a bound may name a parameter listed before it
        "SWEEP_LRS": ListOf(Float(0, 1), min_len=3, increasing=True),
    }, rules=[Rule("SWEEP_LRS", lambda p: p["LR"] in p["SWEEP_LRS"], "include LR={LR}")])

so that `papermill -p STEPS -5` fails at once with "STEPS must be an int >= 10, got -5" instead of deep inside a
training loop. Every message reads `NAME must ..., got VALUE`. The spec must name exactly the parameters
(the annotated UPPER_SNAKE_CASE names) with a kind that agrees with each annotation; a spec that does not is a bug
of the notebook and raises a TypeError saying so. `check_fields` does the same for a frozen dataclass config.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

PARAMETER_NAME = re.compile(r"[A-Z][A-Z0-9_]*")  # what a parameter is called (the notebook conventions)

Bound = int | float | str | None  # a number, or the name of another parameter (or field) checked before this one


def _and(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


class Kind:
    """What one parameter accepts: `accepts` tests a value, `describe` says it in words."""

    annotation: type | None = None  # the annotation this kind agrees with (None: any)

    def refs(self) -> list[str]:
        """The other parameters this kind's bounds name."""
        return []

    def accepts(self, value: Any, params: Mapping[str, Any]) -> bool:
        """Whether `value` is accepted (`params`: the values of the parameters a bound may name)."""
        raise NotImplementedError

    def describe(self, params: Mapping[str, Any], plural: bool = False) -> str:
        """What is accepted, e.g. 'an int >= 1' (plural: 'ints >= 1')."""
        raise NotImplementedError

    def check(self, name: str, value: Any, params: Mapping[str, Any]) -> None:
        """Raise a ValueError 'NAME must be WHAT, got VALUE' unless `value` is accepted."""
        if not self.accepts(value, params):
            raise ValueError(f"{name} must be {self.describe(params)}, got {value!r}")


class _Number(Kind):
    """A number between an optional lower and upper bound, each inclusive or not, each a number or a name."""

    nouns = ("a number", "numbers")

    def __init__(self, low: Bound, high: Bound, closed: bool, default_low: Bound,
                 at_least: Bound, above: Bound, at_most: Bound, below: Bound):
        self.lower = self._one("lower", {"low": (low, closed), "at_least": (at_least, True), "above": (above, False)},
                               (default_low, True))
        self.upper = self._one("upper", {"high": (high, closed), "at_most": (at_most, True), "below": (below, False)},
                               (None, True))

    @staticmethod
    def _one(side: str, given: dict[str, tuple[Bound, bool]], default: tuple[Bound, bool]) -> tuple[Bound, bool]:
        """The one bound given for a side (bound, inclusive), or `default` when none is."""
        named = {key: bound for key, bound in given.items() if bound[0] is not None}
        if len(named) > 1:
            raise TypeError(f"give one {side} bound, got {sorted(named)}")
        return next(iter(named.values()), default)

    def refs(self) -> list[str]:
        return [b for b, _ in (self.lower, self.upper) if isinstance(b, str)]

    def is_number(self, value: Any) -> bool:
        """A finite int or float, not a bool."""
        return isinstance(value, (int, float)) and not isinstance(value, bool) and \
            (isinstance(value, int) or math.isfinite(value))

    def accepts(self, value: Any, params: Mapping[str, Any]) -> bool:
        if not self.is_number(value):
            return False
        (low, low_in), (high, high_in) = self.lower, self.upper
        low, high = params.get(low, low), params.get(high, high)
        return (low is None or (value >= low if low_in else value > low)) and \
            (high is None or (value <= high if high_in else value < high))

    def describe(self, params: Mapping[str, Any], plural: bool = False) -> str:
        def show(bound: Bound) -> str:
            return f"{bound}={params[bound]!r}" if isinstance(bound, str) and bound in params else str(bound)

        (low, low_in), (high, high_in) = self.lower, self.upper
        if low is not None and high is not None:
            span = f"in {'[' if low_in else '('}{show(low)}, {show(high)}{']' if high_in else ')'}"
        elif low is not None:
            span = f"{'>=' if low_in else '>'} {show(low)}"
        elif high is not None:
            span = f"{'<=' if high_in else '<'} {show(high)}"
        else:
            return self.nouns[plural]
        return f"{self.nouns[plural]} {span}"


class Int(_Number):
    """An int (never a bool) in [low, high] (low defaults to 1); at_least/above/at_most/below may name a parameter."""

    annotation = int
    nouns = ("an int", "ints")

    def __init__(self, low: int | None = None, high: int | None = None, *, at_least: Bound = None,
                 above: Bound = None, at_most: Bound = None, below: Bound = None):
        super().__init__(low, high, True, 1, at_least, above, at_most, below)

    def is_number(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)


class Float(_Number):
    """A finite number (an int or a float, never a bool) in (low, high); at_least/above/at_most/below as for Int."""

    annotation = float

    def __init__(self, low: float | None = None, high: float | None = None, *, at_least: Bound = None,
                 above: Bound = None, at_most: Bound = None, below: Bound = None):
        super().__init__(low, high, False, None, at_least, above, at_most, below)


class Bool(Kind):
    """True or False."""

    annotation = bool

    def accepts(self, value: Any, params: Mapping[str, Any]) -> bool:
        return isinstance(value, bool)

    def describe(self, params: Mapping[str, Any], plural: bool = False) -> str:
        return "bools" if plural else "True or False"


class Str(Kind):
    """A non-empty str, or one that fully matches `pattern` (`what` then says what that is)."""

    annotation = str

    def __init__(self, pattern: str | None = None, what: str = "a non-empty str"):
        self.pattern, self.what = pattern, what

    def accepts(self, value: Any, params: Mapping[str, Any]) -> bool:
        if not isinstance(value, str):
            return False
        return bool(re.fullmatch(self.pattern, value)) if self.pattern else bool(value.strip())

    def describe(self, params: Mapping[str, Any], plural: bool = False) -> str:
        return f"strs, each {self.what}" if plural else self.what


class Model(Str):
    """A model: the shipped one (`shipped`), a hub id or a local path (a non-empty str)."""

    def __init__(self, shipped: str = "tinyworld"):
        super().__init__(what=f"{shipped!r}, a hub id or a local path (a non-empty str)")


class Choice(Kind):
    """One of `choices` (of the same type too: True is not the choice 1)."""

    def __init__(self, choices: Sequence[Any] | Mapping[Any, Any]):
        self.choices = list(choices)
        types = {type(c) for c in self.choices}
        self.annotation = types.pop() if len(types) == 1 else None

    def accepts(self, value: Any, params: Mapping[str, Any]) -> bool:
        return any(type(value) is type(c) and value == c for c in self.choices)

    def describe(self, params: Mapping[str, Any], plural: bool = False) -> str:
        return f"{'values from' if plural else 'one of'} {self.choices}"


class ListOf(Kind):
    """A list of at least `min_len` items each accepted by `item`; optionally increasing, containing `contains`."""

    annotation = list

    def __init__(self, item: Kind, min_len: int = 1, *, increasing: bool = False, contains: Sequence[Any] = ()):
        self.item, self.min_len, self.increasing, self.contains = item, min_len, increasing, tuple(contains)

    def refs(self) -> list[str]:
        return self.item.refs()

    def accepts(self, value: Any, params: Mapping[str, Any]) -> bool:
        return (isinstance(value, list) and len(value) >= self.min_len
                and all(self.item.accepts(v, params) for v in value)
                and (not self.increasing or all(a < b for a, b in zip(value, value[1:])))
                and all(c in value for c in self.contains))

    def describe(self, params: Mapping[str, Any], plural: bool = False) -> str:
        size = "a non-empty list of" if self.min_len == 1 else f"a list of at least {self.min_len}"
        order = "increasing " if self.increasing else ""
        including = f" including {_and([repr(c) for c in self.contains])}" if self.contains else ""
        text = f"{size} {order}{self.item.describe(params, plural=True)}{including}"
        return f"lists, each {text}" if plural else text


@dataclasses.dataclass(frozen=True)
class Rule:
    """A requirement linking parameters: `holds(values)` must be true, else 'NAME must WHAT, got VALUE'.

    `what` follows "NAME must"; `{OTHER}` in it shows another parameter, e.g. "include BETA={BETA}".
    """

    name: str
    holds: Callable[[dict[str, Any]], bool]
    what: str

    def check(self, values: dict[str, Any], label: str) -> None:
        """Raise a ValueError naming the parameter (as `label`) unless the rule holds."""
        if not self.holds(values):
            raise ValueError(f"{label} must {self.what.format(**values)}, got {values[self.name]!r}")


def _type_name(annotation: Any) -> str:
    """The bare type name of an annotation: int -> 'int'; list[int] or 'list[int]' -> 'list'."""
    if isinstance(annotation, str):
        return annotation.split("[")[0].strip()
    return getattr(typing.get_origin(annotation) or annotation, "__name__", repr(annotation))


def _check_spec(spec: Mapping[str, Kind], annotations: Mapping[str, Any], rules: Sequence[Rule], where: str) -> None:
    """Raise a TypeError (a bug of the code, not of the values) unless `spec` fits the declared names and types."""
    problems = [f"no check for {n}" for n in annotations if n not in spec]
    problems += [f"{n} is checked but not declared" for n in spec if n not in annotations]
    for i, (name, kind) in enumerate(spec.items()):
        if not isinstance(kind, Kind):
            problems.append(f"{name}: {kind!r} is not a kind such as Int(1)")
            continue
        declared = _type_name(annotations.get(name, None))
        if name in annotations and kind.annotation is not None and declared != kind.annotation.__name__:
            problems.append(f"{name} is declared {declared} but checked as {kind.annotation.__name__}")
        problems += [f"{name}'s bound names {ref}, which is not checked before it" for ref in kind.refs()
                     if ref not in list(spec)[:i]]
    problems += [f"a rule names {r.name}, which is not checked" for r in rules if r.name not in spec]
    if problems:
        raise TypeError(f"the checks of {where} do not fit its declarations (a bug of the code, not of the values): "
                        + "; ".join(problems))


def _check_values(values: dict[str, Any], spec: Mapping[str, Kind], rules: Sequence[Rule], prefix: str = "") -> None:
    """Check each value in spec order, then the rules; errors name `prefix + name`."""
    for name, kind in spec.items():
        kind.check(prefix + name, values[name], values)
    for r in rules:
        r.check(values, prefix + r.name)


def _module_annotations(namespace: Mapping[str, Any]) -> Mapping[str, Any]:
    """The annotations of a module namespace: `__annotations__` (Python <= 3.13), else its `__annotate__` (PEP 649)."""
    if "__annotations__" in namespace:
        return namespace["__annotations__"]
    annotate = namespace.get("__annotate__")
    return annotate(1) if callable(annotate) else {}  # 1: annotationlib.Format.VALUE


def check_params(namespace: Mapping[str, Any], spec: Mapping[str, Kind], rules: Sequence[Rule] = ()) -> None:
    """Check a notebook's parameters (its annotated UPPER_SNAKE_CASE globals) against `spec`, then `rules`.

    Raises a ValueError 'NAME must ..., got VALUE' for the first bad value, and a TypeError when `spec` misses
    a parameter, names one that is not declared, or disagrees with an annotation (int: Int, float: Float,
    str: Str/Model/Choice of strs, bool: Bool, list: ListOf).
    """
    annotations = {n: a for n, a in _module_annotations(namespace).items() if PARAMETER_NAME.fullmatch(n)}
    _check_spec(spec, annotations, rules, "the parameters cell")
    unset = [n for n in spec if n not in namespace]
    if unset:
        raise TypeError(f"parameters declared without a value: {unset}")
    _check_values({n: namespace[n] for n in spec}, spec, rules)


def check_fields(obj: Any, spec: Mapping[str, Kind], rules: Sequence[Rule] = ()) -> None:
    """Check every field of a dataclass instance against `spec` (as check_params does); errors name 'Class.field'.

    Meant for `__post_init__` of a frozen config: bounds such as `Int(0, at_most="steps")` name other fields.
    """
    owner = type(obj).__name__
    _check_spec(spec, {f.name: f.type for f in dataclasses.fields(obj)}, rules, owner)
    _check_values({n: getattr(obj, n) for n in spec}, spec, rules, prefix=f"{owner}.")


def check_int(name: str, value: Any, low: int = 1, high: int | None = None) -> int:
    """`value` if it is an int (not a bool) in [low, high], else 'NAME must be an int >= LOW, got VALUE'."""
    Int(low, high).check(name, value, {})
    return value


def check_positive(name: str, value: Any, allow_zero: bool = False) -> float:
    """`value` as a float if it is a finite number > 0 (>= 0 with `allow_zero`), else a ValueError naming it."""
    (Float(at_least=0) if allow_zero else Float(0)).check(name, value, {})
    return float(value)
