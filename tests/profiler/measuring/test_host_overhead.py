"""Host overhead on a null workload: the null-width twin keeps the code's structure, the measurement lands in the
profile under the model's own name, and transformers' families are left to the per-launch overhead."""

from __future__ import annotations

import pytest
from profiler_testing import synthetic_profile

from profiler.formulas.params import count_params
from profiler.measuring import host_overhead
from profiler.measuring.device import get_device
from profiler.source import resolve
from profiler.workload import Workload


@pytest.mark.parametrize("size", ["tiny", "small"])
def test_null_widths_keep_the_structure_and_drop_the_work(size):
    source = resolve(size)
    null = source.null_widths()
    arch, small = source.arch, null.arch
    assert small.hidden_size == 16 and small.vocab_size == 256 and small.num_layers == arch.num_layers
    for group, null_group in zip(arch.layer_groups, small.layer_groups, strict=True):
        assert (null_group.count, null_group.mlp.kind, null_group.mlp.num_experts) == (
            group.count, group.mlp.kind, group.mlp.num_experts)
        same = ("num_heads", "num_kv_heads", "qk_norm", "sliding_window")
        assert {k: getattr(null_group.attention, k) for k in same} == {k: getattr(group.attention, k) for k in same}
    assert small.tie_word_embeddings == arch.tie_word_embeddings
    assert count_params(small).total < count_params(arch).total / 100
    null.build("cpu")  # a valid zoo config: it builds


def test_null_widths_is_for_zoo_models_only():
    with pytest.raises(ValueError, match="null_widths is for zoo models"):
        resolve("llama_7b").null_widths()


@pytest.mark.parametrize("mode", ["forward", "train", "prefill", "decode"])
def test_a_measured_host_overhead_lands_under_the_model_and_mode(mode):
    device, profile = get_device("cpu"), synthetic_profile()
    points = [(resolve("tiny"), Workload(mode, 2, 64)), (resolve("tiny"), Workload(mode, 2, 128)),
              (resolve("llama_7b"), Workload(mode, 2, 64))]
    calibrated = host_overhead.calibrate_host_overheads(profile, points, device, warmup=0, repeats=1, new_tokens=2)
    (point,) = calibrated.efficiency.host_overhead  # one per (model, mode, batch); none for transformers' llama
    assert (point.model, point.mode, point.batch) == ("tiny", mode, 2)
    assert 0 < point.seconds.min <= point.seconds.median <= point.seconds.max
    assert calibrated.host_overhead_s("tiny", mode, 2) == point.seconds.median
    again = host_overhead.calibrate_host_overheads(calibrated, points[:1], device, warmup=0, repeats=1, new_tokens=2)
    assert len(again.efficiency.host_overhead) == 1  # a new measurement replaces the old one


def test_kernel_seconds_leave_the_overheads_out():
    result = {"ops": [{"compute_s": 2.0, "memory_s": 1.0, "overhead_s": 5.0},
                      {"compute_s": 0.0, "memory_s": 3.0, "overhead_s": 5.0}]}
    assert host_overhead.kernel_seconds(result) == 5.0
