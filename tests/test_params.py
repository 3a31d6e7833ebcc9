"""Notebook parameter checks: accepted values pass through, bad ones raise naming the parameter."""

import pytest

from hubhelpers.params import check_choice, check_float, check_int, check_list, check_model


def test_good_values_pass_through():
    assert check_int("STEPS", 5) == 5 and check_int("SEED", 0, low=0) == 0
    assert check_float("LR", 3e-3, high=1.0) == 3e-3 and check_float("T", 2) == 2.0
    assert check_model("MODEL", "tinyworld") == "tinyworld"
    assert check_choice("BITS", 4, (8, 4)) == 4
    assert check_list("SHOTS", [0, 1], lambda k: isinstance(k, int), "ints") == [0, 1]


@pytest.mark.parametrize("call, message", [
    (lambda: check_int("STEPS", 0), "STEPS must be an int >= 1, got 0"),
    (lambda: check_int("STEPS", True), "got True"),
    (lambda: check_int("K", 9, low=0, high=8), "K must be an int in [0, 8], got 9"),
    (lambda: check_float("LR", 0.0, high=1.0), "LR must be a number in (0.0, 1.0], got 0.0"),
    (lambda: check_float("LR", "0.1"), "got '0.1'"),
    (lambda: check_model("MODEL", " "), "MODEL must be 'tinyworld'"),
    (lambda: check_choice("BITS", 5, (8, 4)), "BITS must be one of [8, 4], got 5"),
    (lambda: check_list("SHOTS", [], lambda k: True, "ints"), "SHOTS must be a list of at least 1 ints, got []"),
    (lambda: check_list("SHOTS", "0,1", lambda k: True, "ints"), "got '0,1'"),
])
def test_bad_values_are_named(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)
