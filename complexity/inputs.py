"""Checks of user-given values, torch-free, shared by the zoo, the profiler and the simulator.

Each raises `ValueError` naming the field, the value given and the allowed range, the message every command turns
into one line on stderr.
"""

from __future__ import annotations

import math
import sys
from typing import Any

_LARGEST_FLOAT = int(sys.float_info.max)


def is_int(value: Any) -> bool:
    """A true integer: `bool` is excluded although Python makes it an `int` subclass (`True` is no batch size)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A finite real number (int or float, `bool` excluded): no NaN, no infinity."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) if isinstance(value, float) else abs(value) <= _LARGEST_FLOAT  # 10**400 overflows


def require_int(name: str, value: Any, minimum: int | None = 1, maximum: int | None = None, note: str = "") -> int:
    """`value` when it is an integer in [minimum, maximum] (either end None: unbounded), else a ValueError
    "name=value must be an integer >= minimum" (or "in [minimum, maximum]"), followed by `note` in parentheses."""
    low_ok = minimum is None or (is_int(value) and value >= minimum)
    high_ok = maximum is None or (is_int(value) and value <= maximum)
    if not (is_int(value) and low_ok and high_ok):
        if minimum is not None and maximum is not None:
            allowed = f"an integer in [{minimum}, {maximum}]"
        elif maximum is not None:
            allowed = f"an integer <= {maximum}"
        else:
            allowed = "an integer" + (f" >= {minimum}" if minimum is not None else "")
        raise ValueError(f"{name}={value!r} must be {allowed}" + (f" ({note})" if note else ""))
    return value


def number_range(low: float = -math.inf, high: float = math.inf, low_inclusive: bool = True,
                 high_inclusive: bool = True) -> str:
    """The words for a range of finite reals, with brackets where both ends are finite ("a number in [0, 1)")."""
    if math.isinf(low) and math.isinf(high):
        return "a finite number"
    if math.isinf(high):
        return f"a finite number {'>=' if low_inclusive else '>'} {low:g}"
    if math.isinf(low):
        return f"a finite number {'<=' if high_inclusive else '<'} {high:g}"
    return f"a number in {'[' if low_inclusive else '('}{low:g}, {high:g}{']' if high_inclusive else ')'}"


def require_number(name: str, value: Any, low: float = -math.inf, high: float = math.inf,
                   low_inclusive: bool = True, high_inclusive: bool = True) -> float:
    """`value` as a float when it is a finite real number within the bounds, else a ValueError naming the range
    (`number_range`)."""
    finite = is_real(value)
    above = finite and (value >= low if low_inclusive else value > low)
    below = finite and (value <= high if high_inclusive else value < high)
    if not (above and below):
        raise ValueError(f"{name}={value!r} must be {number_range(low, high, low_inclusive, high_inclusive)}")
    return float(value)
