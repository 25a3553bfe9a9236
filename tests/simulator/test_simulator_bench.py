"""`bench.benchmark` refuses anything but a positive integer count, naming the argument and the range."""

import pytest

from simulator.bench import benchmark


@pytest.mark.parametrize("n", [0, -3, 2.0, True, "10"])
def test_benchmark_needs_an_integer_count(n):
    with pytest.raises(ValueError) as err:
        benchmark(n)
    assert str(err.value) == f"n={n!r} must be an integer >= 1 (architectures per simulate_many call)"
