"""Parameter checks declared once: every kind, the one message format, relations, rules and spec bugs."""

from __future__ import annotations

import dataclasses

import pytest

from hubhelpers.params import Bool, Choice, Float, Int, ListOf, Model, Rule, Str, check_fields, check_int, check_params


def _namespace(source: str) -> dict:
    """The globals a notebook has after running a parameters cell `source`."""
    scope: dict = {}
    exec(source, scope)
    return scope


def _error(kind, value, params=None) -> str:
    """The message of the ValueError `kind` raises for parameter 'P' = `value`."""
    with pytest.raises(ValueError) as err:
        kind.check("P", value, params or {})
    return str(err.value)


@pytest.mark.parametrize("kind, value", [
    (Int(0), 0), (Int(), 1), (Int(2, 16), 16), (Int(above=-1), 0), (Int(0, below=5), 4),
    (Float(0, 1), 0.5), (Float(0, 1), 1e-9), (Float(), -3.5), (Float(at_least=0), 0), (Float(0, at_most=60), 60.0),
    (Bool(), False), (Str(), "x"), (Str(r"[A-Z]{3}", "a code"), "FRA"), (Model(), "org/m"), (Model("minilm"), "./p"),
    (Choice(["a", "b"]), "b"), (Choice((8, 4)), 4), (Choice({"attn": 1, "blocks": 2}), "attn"),
    (ListOf(Int(0, 100), contains=(0, 8)), [0, 1, 8]), (ListOf(Float(0, 1), 3, increasing=True), [1e-5, 1e-3, 0.3]),
    (ListOf(Choice(["x", "y"]), 2), ["y", "x"]),
])
def test_good_values_pass(kind, value):
    kind.check("P", value, {})


def test_ints_are_accepted_for_floats():
    """papermill -p LR 1 gives an int."""
    Float(0, 2).check("LR", 1, {})
    ListOf(Float(at_least=0)).check("BETAS", [0, 1.5, 3], {})


@pytest.mark.parametrize("kind", [Int(0), Float(), Float(0, 2), ListOf(Int(0)), ListOf(Float(0, 2)), Choice((1, 0))])
def test_bools_are_rejected_where_numbers_are_expected(kind):
    value = [0, True] if isinstance(kind, ListOf) else True
    assert _error(kind, value).endswith(f"got {value!r}")


@pytest.mark.parametrize("kind, value, message", [
    (Int(10), -5, "P must be an int >= 10, got -5"),
    (Int(10), 10.0, "P must be an int >= 10, got 10.0"),
    (Int(), "3", "P must be an int >= 1, got '3'"),
    (Int(0, 8), 9, "P must be an int in [0, 8], got 9"),
    (Int(0, below=8), 8, "P must be an int in [0, 8), got 8"),
    (Int(above=0, at_most=3), 0, "P must be an int in (0, 3], got 0"),
    (Float(0, 1), "0.5", "P must be a number in (0, 1), got '0.5'"),
    (Float(0, 1), 1, "P must be a number in (0, 1), got 1"),
    (Float(0), 0.0, "P must be a number > 0, got 0.0"),
    (Float(at_least=0), -0.1, "P must be a number >= 0, got -0.1"),
    (Float(below=1), 1.0, "P must be a number < 1, got 1.0"),
    (Float(), float("nan"), "P must be a number, got nan"),
    (Float(at_least=0), float("inf"), "P must be a number >= 0, got inf"),
    (Float(at_least=0, below=1), 1, "P must be a number in [0, 1), got 1"),
    (Bool(), 1, "P must be True or False, got 1"),
    (Str(), " ", "P must be a non-empty str, got ' '"),
    (Str(r"[A-Z]{3}", "a 3-letter code"), "FRAN", "P must be a 3-letter code, got 'FRAN'"),
    (Model(), "", "P must be 'tinyworld', a hub id or a local path (a non-empty str), got ''"),
    (Model("minilm"), None, "P must be 'minilm', a hub id or a local path (a non-empty str), got None"),
    (Choice(["a", "b"]), "c", "P must be one of ['a', 'b'], got 'c'"),
    (Choice([8, 4]), 8.0, "P must be one of [8, 4], got 8.0"),
    (ListOf(Int(0, 100)), [], "P must be a non-empty list of ints in [0, 100], got []"),
    (ListOf(Int(0, 100)), (0, 1), "P must be a non-empty list of ints in [0, 100], got (0, 1)"),
    (ListOf(Int(0, 100)), [0, 101], "got [0, 101]"),
    (ListOf(Int(0, 100), contains=(0, 8)), [0, 1], "P must be a non-empty list of ints in [0, 100] including 0 and 8"),
    (ListOf(Float(0, 1), 3, increasing=True), [0.1, 0.1, 0.2], "P must be a list of at least 3 increasing numbers"),
    (ListOf(Choice(["x", "y"]), 2), ["x"], "P must be a list of at least 2 values from ['x', 'y'], got ['x']"),
    (ListOf(Bool()), [0], "P must be a non-empty list of bools, got [0]"),
])
def test_one_message_format(kind, value, message):
    assert message in _error(kind, value)


def test_bounds_may_name_other_parameters():
    params = {"N_TEST": 200, "CHUNK_SIZE": 100}
    Int(1, at_most="N_TEST").check("N_SHOW", 200, params)
    assert _error(Int(1, at_most="N_TEST"), 201, params) == "P must be an int in [1, N_TEST=200], got 201"
    assert _error(Int(0, below="CHUNK_SIZE"), 100, params) == "P must be an int in [0, CHUNK_SIZE=100), got 100"
    assert _error(ListOf(Int(above="CHUNK_SIZE")), [101, 100], params) == \
        "P must be a non-empty list of ints > CHUNK_SIZE=100, got [101, 100]"


def test_one_bound_per_side():
    with pytest.raises(TypeError, match="one lower bound"):
        Int(1, at_least=2)
    with pytest.raises(TypeError, match="one upper bound"):
        Float(0, 1, below=2)


def test_check_int_is_the_int_kind():
    assert check_int("STEPS", 5) == 5 and check_int("SEED", 0, low=0) == 0 and check_int("L", -3, -4, 4) == -3
    for value, message in [(0, "STEPS must be an int >= 1, got 0"), (True, "STEPS must be an int >= 1, got True"),
                           (2.0, "got 2.0")]:
        with pytest.raises(ValueError) as err:
            check_int("STEPS", value)
        assert message in str(err.value)
    with pytest.raises(ValueError, match=r"K must be an int in \[0, 8\], got 9"):
        check_int("K", 9, low=0, high=8)


PARAMETERS = '''
SEED: int = 0
MODEL: str = "tinyworld"
N_TEST: int = 200
N_SHOW: int = 6
LR: float = 1e-3
BETA: float = 1.5
SWEEP_BETAS: list = [0.0, 1.5, 3.0]
DEVICE: str = "cpu"
RUN: bool = True
'''
SPEC = {"SEED": Int(0), "MODEL": Model(), "N_TEST": Int(1), "N_SHOW": Int(1, at_most="N_TEST"), "LR": Float(0, 1),
        "BETA": Float(at_least=0), "SWEEP_BETAS": ListOf(Float(at_least=0), 3, increasing=True, contains=(0.0,)),
        "DEVICE": Choice(["cpu", "cuda"]), "RUN": Bool()}
RULES = [Rule("SWEEP_BETAS", lambda p: p["BETA"] in p["SWEEP_BETAS"], "include BETA={BETA}")]


def test_check_params_passes_the_defaults_and_returns_nothing():
    assert check_params(_namespace(PARAMETERS), SPEC, RULES) is None


def test_check_params_ignores_names_that_are_not_parameters():
    """A later `failures: dict = {}` in the notebook does not break a re-run of the validation cell."""
    check_params(_namespace(PARAMETERS + "failures: dict = {}\n"), SPEC, RULES)


@pytest.mark.parametrize("name, value, message", [
    ("SEED", True, "SEED must be an int >= 0, got True"),
    ("N_SHOW", 201, "N_SHOW must be an int in [1, N_TEST=200], got 201"),
    ("LR", "0.5", "LR must be a number in (0, 1), got '0.5'"),
    ("SWEEP_BETAS", [0.0, True, 3.0], "SWEEP_BETAS must be a list of at least 3 increasing numbers >= 0 including 0.0"),
    ("SWEEP_BETAS", [0.0, 1.0, 3.0], "SWEEP_BETAS must include BETA=1.5, got [0.0, 1.0, 3.0]"),
    ("DEVICE", "tpu", "DEVICE must be one of ['cpu', 'cuda'], got 'tpu'"),
    ("RUN", "yes", "RUN must be True or False, got 'yes'"),
])
def test_check_params_names_the_bad_parameter(name, value, message):
    namespace = _namespace(PARAMETERS)
    namespace[name] = value  # what papermill's injected cell does
    with pytest.raises(ValueError) as err:
        check_params(namespace, SPEC, RULES)
    assert str(err.value).startswith(message)


def test_a_bad_bound_is_reported_as_itself():
    """N_TEST is checked before N_SHOW, whose bound it is, so the error names N_TEST."""
    namespace = _namespace(PARAMETERS)
    namespace["N_TEST"] = "200"
    with pytest.raises(ValueError, match="^N_TEST must be an int >= 1, got '200'"):
        check_params(namespace, SPEC, RULES)


@pytest.mark.parametrize("spec, rules, message", [
    ({k: v for k, v in SPEC.items() if k != "LR"}, RULES, "no check for LR"),
    ({**SPEC, "STEPS": Int(1)}, RULES, "STEPS is checked but not declared"),
    ({**SPEC, "LR": Int(1)}, RULES, "LR is declared float but checked as int"),
    ({**SPEC, "SEED": Float(0)}, RULES, "SEED is declared int but checked as float"),
    ({**SPEC, "MODEL": Bool()}, RULES, "MODEL is declared str but checked as bool"),
    ({**SPEC, "SWEEP_BETAS": Float(0)}, RULES, "SWEEP_BETAS is declared list but checked as float"),
    ({**SPEC, "DEVICE": Choice([1, 2])}, RULES, "DEVICE is declared str but checked as int"),
    ({**SPEC, "RUN": Str()}, RULES, "RUN is declared bool but checked as str"),
    ({**SPEC, "SEED": 0}, RULES, "SEED: 0 is not a kind"),
    ({"N_SHOW": Int(1, at_most="N_TEST"), **SPEC}, RULES, "N_SHOW's bound names N_TEST, which is not checked before"),
    (SPEC, [Rule("STEPS", lambda p: True, "be fine")], "a rule names STEPS"),
])
def test_a_spec_that_does_not_fit_the_parameters_is_a_bug(spec, rules, message):
    with pytest.raises(TypeError, match="a bug of the code") as err:
        check_params(_namespace(PARAMETERS), spec, rules)
    assert message in str(err.value)


def test_a_parameter_without_a_value_is_a_bug():
    with pytest.raises(TypeError, match=r"without a value: \['STEPS'\]"):
        check_params(_namespace("STEPS: int\n"), {"STEPS": Int(1)})


def test_string_annotations_are_understood():
    check_params({"__annotations__": {"N": "int", "XS": "list[int]"}, "N": 2, "XS": [1]},
                 {"N": Int(1), "XS": ListOf(Int(1))})


@dataclasses.dataclass(frozen=True)
class TinyConfig:
    steps: int = 10
    warmup_steps: int = 2
    lr: float = 3e-3

    def __post_init__(self):
        check_fields(self, {"steps": Int(1), "warmup_steps": Int(0, at_most="steps"), "lr": Float(0, 1)})


def test_check_fields_validates_a_frozen_config():
    TinyConfig()
    TinyConfig(lr=1e-3, warmup_steps=10)  # warm-up may last the whole run


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 0}, "TinyConfig.steps must be an int >= 1, got 0"),
    ({"steps": True}, "TinyConfig.steps must be an int >= 1, got True"),
    ({"warmup_steps": 11}, "TinyConfig.warmup_steps must be an int in [0, steps=10], got 11"),
    ({"lr": 2}, "TinyConfig.lr must be a number in (0, 1), got 2"),
])
def test_check_fields_names_class_and_field(kwargs, message):
    with pytest.raises(ValueError) as err:
        TinyConfig(**kwargs)
    assert str(err.value) == message


def test_check_fields_refuses_a_spec_that_misses_a_field():
    @dataclasses.dataclass(frozen=True)
    class Partial:
        steps: int = 1
        seed: int = 0

    with pytest.raises(TypeError, match="the checks of Partial .*no check for seed"):
        check_fields(Partial(), {"steps": Int(1)})


def test_annotations_are_read_from_annotate_where_python_has_no_annotations_dict():
    """Python 3.14 (PEP 649) gives exec'd module code an `__annotate__` function instead of `__annotations__`."""
    namespace = {"STEPS": 5, "__annotate__": lambda fmt: {"STEPS": int} if fmt == 1 else NotImplemented}
    check_params(namespace, {"STEPS": Int(1)})
    with pytest.raises(TypeError, match="STEPS"):
        check_params(namespace, {"STEPS": Float(0)})
