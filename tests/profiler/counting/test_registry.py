"""The counter's formula registry: one register() for both buckets, and one formula per op."""

import pytest
import torch

from profiler.counting.registry import BUCKETS, FORMULAS, OpCost, classify, register

aten = torch.ops.aten


def test_an_op_has_exactly_one_formula():
    with pytest.raises(ValueError, match="already has a FLOP formula"):
        register("other", aten.mm)(lambda bound, out: OpCost())
    with pytest.raises(ValueError, match="already has a FLOP formula"):
        register("matmul", aten._softmax)(lambda bound, out: OpCost())
    assert not set(FORMULAS["matmul"]) & set(FORMULAS["other"])


def test_an_unknown_bucket_is_refused():
    with pytest.raises(ValueError, match=r"bucket='flops' is not one of \('matmul', 'other'\)"):
        register("flops", aten.mm)
    assert BUCKETS == tuple(FORMULAS)


def test_a_registered_formula_prices_its_op(monkeypatch):
    monkeypatch.setitem(FORMULAS, "other", dict(FORMULAS["other"]))  # undone after the test
    x = torch.ones(3, 4)
    assert classify(aten.cumsum.default, (x, 0), {}, torch.cumsum(x, 0)) is None  # unknown until registered
    register("other", aten.cumsum)(lambda bound, out: OpCost(other=7 * bound["self"].numel()))
    assert classify(aten.cumsum.default, (x, 0), {}, torch.cumsum(x, 0)) == OpCost(other=84)
