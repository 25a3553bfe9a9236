import pytest

from profiler.checks.errors import abs_error_summary


def test_median_max_and_within_tolerance_of_hand_made_errors():
    errors = [0.1, -0.3, 0.25, -0.05]  # |error| sorted: 0.05, 0.1, 0.25, 0.3
    assert abs_error_summary(errors, tolerance=0.25) == {
        "median_abs_error": pytest.approx(0.175), "max_abs_error": 0.3, "within_tolerance": 3}  # 0.25 counts
    assert abs_error_summary([-0.5]) == {"median_abs_error": 0.5, "max_abs_error": 0.5}  # no tolerance, no count


def test_a_prefix_names_every_key():
    assert abs_error_summary([0.2, -0.4, 0.1], 0.15, prefix="memory_") == {
        "memory_median_abs_error": 0.2, "memory_max_abs_error": 0.4, "memory_within_tolerance": 1}


def test_no_errors_give_none_and_zero_within():
    assert abs_error_summary([], tolerance=0.25) == {"median_abs_error": None, "max_abs_error": None,
                                                     "within_tolerance": 0}
    assert abs_error_summary([]) == {"median_abs_error": None, "max_abs_error": None}
