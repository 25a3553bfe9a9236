import math

import pytest

from complexity.inputs import is_int, require_int, require_number


def test_is_int_excludes_bool_and_float():
    assert is_int(3) and not is_int(True) and not is_int(3.0) and not is_int("3")


@pytest.mark.parametrize("value", [0, -1, True, 2.0, "2", None])
def test_require_int_rejects_with_field_and_range(value):
    with pytest.raises(ValueError, match=r"batch=.* must be an integer >= 1"):
        require_int("batch", value)


def test_require_int_bounds_and_note():
    assert require_int("k", 5, 1, 5) == 5
    with pytest.raises(ValueError, match=r"k=6 must be an integer in \[1, 5\] \(experts\)"):
        require_int("k", 6, 1, 5, note="experts")
    assert require_int("context", 0, minimum=0) == 0
    with pytest.raises(ValueError, match=r"x=1.5 must be an integer$"):
        require_int("x", 1.5, minimum=None)


def test_require_number_brackets():
    assert require_number("mfu", 1, 0, 1, low_inclusive=False) == 1.0
    for bad in (0, 1.5, math.nan, math.inf, True):
        with pytest.raises(ValueError, match=r"mfu=.* must be a number in \(0, 1\]"):
            require_number("mfu", bad, 0, 1, low_inclusive=False)
    with pytest.raises(ValueError, match=r"rate=-1 must be a finite number > 0"):
        require_number("rate", -1, 0, low_inclusive=False)
