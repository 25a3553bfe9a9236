"""The op-category registries of `profiler ops` (`profiler.checks.ops`): every op the predictor emits has a
category, the aten call paths land where the docstring says, and the comparison's rows add up."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from profiler_testing import SHIPPED

from profiler.checks.ops import (
    CATEGORIES,
    categorize_measured,
    categorize_predicted,
    compare_categories,
    difference_events,
    measured_category,
    predicted_category,
)
from profiler.hardware import HostOverheadPoint, Spread, load_profile
from profiler.predict.ops import ATTENTION_KERNELS
from profiler.predict.roofline import predict
from profiler.source import resolve
from profiler.workload import PREDICTED_MODES, Workload

PROFILE = load_profile("cpu_generic")


@pytest.mark.parametrize("name", ("tiny", "gpt2", "mixtral_8x7b", *SHIPPED))
def test_every_predicted_op_has_a_category_and_none_is_dropped(name):
    arch = resolve(name).arch
    for mode in PREDICTED_MODES:
        for kernel in ATTENTION_KERNELS:
            result = predict(arch, PROFILE, Workload(mode, 2, 32), attention_kernel=kernel)
            seconds, top = categorize_predicted([result])
            assert set(seconds) == set(CATEGORIES)
            assert math.isclose(sum(seconds.values()), result["seconds"], rel_tol=1e-12)
            assert all(predicted_category(row["name"], row["kind"]) in CATEGORIES for row in result["ops"])
    # A module in training mode (dropout) and CUDA's multi-tensor optimizers have categories too.
    cuda = load_profile("nvidia_a100")
    for workload, profile in ((Workload("train", 2, 32, dropout=True), PROFILE),
                              (Workload("train", 2, 32, "bfloat16", device="cuda", dropout=True), cuda),
                              (Workload("train", 2, 32, "bfloat16", device="cuda", optimizer="fused"), cuda)):
        for kernel in ATTENTION_KERNELS:
            result = predict(arch, profile, workload, attention_kernel=kernel)
            assert math.isclose(sum(categorize_predicted([result])[0].values()), result["seconds"], rel_tol=1e-12)


def test_train_ops_land_in_their_categories():
    result = predict(resolve("gpt2").arch, PROFILE, Workload("train", 1, 32))
    seconds, top = categorize_predicted([result], top=50)
    names = {category: {name for name, _ in rows} for category, rows in top.items()}
    assert "lm_head.grad_weight" in names["matmul"] and "attention.sdpa.backward" in names["attention"]
    assert {"loss.log_softmax", "loss.nll_grad_table"} <= names["loss"]
    assert any(n.startswith("optimizer.adamw[") for n in names["optimizer"]) and "norm.final" in names["norm"]
    assert seconds["copy"] == seconds["framework"] == 0.0  # the predictor has no such ops


def test_a_measured_host_overhead_is_spread_over_the_categories_by_their_launches():
    """The host overhead rows go to the ops that incur them (a category's share of its phase's launches), not to
    "framework"; the categories still add up to the prediction."""
    point = HostOverheadPoint("tiny", "train", 2, Spread(0.02, 0.02, 0.02))
    profile = replace(PROFILE, efficiency=replace(PROFILE.efficiency, host_overhead=(point,)))
    result = predict(resolve("tiny").arch, profile, Workload("train", 2, 32))
    seconds, top = categorize_predicted([result], top=50)
    assert math.isclose(sum(seconds.values()), result["seconds"], rel_tol=1e-12) and seconds["framework"] == 0.0
    host = {row["phase"]: row["seconds"] for row in result["ops"] if row["name"] == "host_overhead"}
    for category in CATEGORIES:
        expected = 0.0
        for phase, host_s in host.items():
            rows = [r for r in result["ops"] if r["phase"] == phase and r["name"] != "host_overhead"]
            mine = sum(r["launches"] for r in rows if predicted_category(r["name"], r["kind"]) == category)
            expected += host_s * mine / sum(r["launches"] for r in rows)
        assert math.isclose(dict(top[category]).get("host_overhead", 0.0), expected, rel_tol=1e-9, abs_tol=1e-15)
    assert dict(top["norm"])["host_overhead"] > 0 and dict(top["matmul"])["host_overhead"] > 0


def test_an_unknown_predicted_op_is_an_error_not_dropped():
    with pytest.raises(ValueError, match="'mlp.new_thing'.*PREDICTED_RULES"):
        predicted_category("mlp.new_thing", "memory")


@pytest.mark.parametrize("path, category", [
    (["Optimizer.step#AdamW.step", "aten::sqrt"], "optimizer"),
    (["_RMSNormFunction", "aten::pow"], "norm"),
    (["autograd::engine::evaluate_function: _RMSNormFunctionBackward", "_RMSNormFunctionBackward", "aten::mul"],
     "norm"),
    (["aten::linear", "aten::t"], "matmul"),
    (["autograd::engine::evaluate_function: MmBackward0", "MmBackward0", "aten::mm"], "matmul"),
    (["aten::scaled_dot_product_attention", "aten::_scaled_dot_product_flash_attention_for_cpu"], "attention"),
    (["aten::cross_entropy_loss", "aten::log_softmax", "aten::_log_softmax"], "loss"),
    (["aten::to", "aten::_to_copy", "aten::copy_"], "copy"),
    (["aten::reshape", "aten::clone"], "copy"),
    (["_PermuteRows", "aten::index_select"], "dispatch"),
    (["aten::embedding", "aten::index_select"], "embedding"),
    (["aten::mul"], "elementwise"),
    (["aten::view"], "framework"),
    (["autograd::engine::evaluate_function: ViewBackward0", "ViewBackward0", "aten::reshape", "aten::view"],
     "framework"),
])
def test_measured_paths_take_the_outermost_category(path, category):
    assert measured_category(path) == category


def test_measured_categories_add_up_and_rows_compare():
    events = [{"path": ["aten::mm"], "self_cpu_s": 3.0, "self_device_s": 0.5},
              {"path": ["aten::linear", "aten::t"], "self_cpu_s": 1.0, "self_device_s": 0.0},
              {"path": ["aten::view"], "self_cpu_s": 1.0, "self_device_s": 0.0}]
    measured, top = categorize_measured(events, on_device=False)
    assert measured["matmul"] == 4.0 and measured["framework"] == 1.0 and sum(measured.values()) == 5.0
    assert top["matmul"] == [("aten::mm", 3.0), ("aten::t", 1.0)]
    assert categorize_measured(events, on_device=True)[0]["matmul"] == 0.5
    rows = compare_categories({"matmul": 2.0, "norm": 1.0}, measured)
    by = {row["category"]: row for row in rows}
    assert set(by) == {"matmul", "norm", "framework"}  # categories with no time on either side are left out
    assert by["matmul"]["error"] == -0.5 and by["norm"]["error"] is None
    assert math.isclose(sum(r["measured_share"] for r in rows), 1.0)
    assert math.isclose(sum(r["predicted_share"] for r in rows), 1.0)


def test_difference_events_isolate_the_steps_a_longer_call_adds():
    longer = [{"path": ["aten::mm"], "calls": 10.0, "self_cpu_s": 7.0, "self_device_s": 1.0},
              {"path": ["aten::cat"], "calls": 4.0, "self_cpu_s": 2.0, "self_device_s": 0.0}]
    shorter = [{"path": ["aten::mm"], "calls": 2.0, "self_cpu_s": 3.0, "self_device_s": 0.2},
               {"path": ["aten::argmax"], "calls": 1.0, "self_cpu_s": 0.5, "self_device_s": 0.0}]
    rows = {tuple(row["path"]): row for row in difference_events(longer, shorter, 2)}
    assert rows[("aten::mm",)] == {"path": ["aten::mm"], "calls": 4.0, "self_cpu_s": 2.0, "self_device_s": 0.4}
    assert rows[("aten::cat",)]["calls"] == 2.0 and rows[("aten::argmax",)]["self_cpu_s"] == -0.25
    with pytest.raises(ValueError, match="steps"):
        difference_events(longer, shorter, 0)
