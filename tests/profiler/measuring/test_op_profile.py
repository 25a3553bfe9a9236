"""`profiler.measuring.op_profile`: self time per call path of a real tiny step under torch.profiler."""

from __future__ import annotations

import math

import pytest
import torch

from profiler.checks.ops import CATEGORIES, categorize_measured
from profiler.measuring import harness
from profiler.measuring.device import get_device
from profiler.measuring.op_profile import profile_step
from profiler.source import resolve


@pytest.fixture(scope="module")
def tiny_forward():
    source, device = resolve("tiny"), get_device("cpu")
    module = harness.load_model(source, device, "float32")
    input_ids = torch.randint(source.arch.vocab_size, (1, 16), generator=torch.Generator().manual_seed(0))
    step, _ = harness.make_step(module, "forward", input_ids)
    return profile_step(step, device, warmup=1, repeats=2)


def test_profile_of_a_tiny_forward_finds_the_products_and_adds_up(tiny_forward):
    events = tiny_forward["events"]
    assert tiny_forward["repeats"] == 2 and tiny_forward["timing"]["n"] == 2
    assert tiny_forward["profiled_step_s"] > 0
    assert all(e["path"] and e["calls"] > 0 and e["self_cpu_s"] >= 0 and e["self_device_s"] == 0 for e in events)
    paths = [tuple(e["path"]) for e in events]
    assert len(paths) == len(set(paths))  # one row per call path
    measured, top = categorize_measured(events, on_device=False)
    assert measured["matmul"] > 0 and measured["attention"] > 0 and measured["norm"] > 0
    assert any(name == "aten::mm" for name, _ in top["matmul"])
    assert set(measured) == set(CATEGORIES)
    assert math.isclose(sum(measured.values()), sum(e["self_cpu_s"] for e in events), rel_tol=1e-9)
    assert measured["optimizer"] == measured["loss"] == 0.0  # a forward pass has neither


def test_bad_repeats_are_refused():
    device = get_device("cpu")
    with pytest.raises(ValueError, match="repeats"):
        profile_step(lambda: None, device, warmup=0, repeats=0)
    with pytest.raises(ValueError, match="warmup"):
        profile_step(lambda: None, device, warmup=-1, repeats=1)
