"""`allocator_peak`, the second measure of CPU memory, on known allocations and against the tracker."""

from __future__ import annotations

import torch

from profiler.measuring.device import get_device
from profiler.measuring.harness import make_step
from profiler.measuring.memory_check import allocator_peak
from profiler.source import from_config_dict

MB = 1_000_000


def mb_tensor(megabytes: float = 1) -> torch.Tensor:
    """A float32 tensor of `megabytes` × 1e6 bytes."""
    return torch.ones(int(megabytes * MB) // 4)


def test_allocator_peak_reads_known_allocations():
    state = {}

    def setup() -> None:
        state["old"] = mb_tensor(1)

    def step() -> None:
        del state["old"]  # -1 MB: allocated inside the profile, so its free is reported
        a = mb_tensor(4)
        b = mb_tensor(2)  # 6 MB: the peak
        del a
        state["kept"] = mb_tensor(0.5)
        del b

    stats = allocator_peak(step, setup)
    assert (stats.start_bytes, stats.peak_bytes, stats.end_bytes) == (MB, 6 * MB, MB // 2)


def test_tracker_agrees_with_the_allocator_on_a_training_step():
    """The zoo's train step (zero_grad to None, forward, backward, AdamW) on a small model, warmed up once so the
    previous step's gradients and AdamW's state exist: the two methods see the same peak."""
    source = from_config_dict({"model_type": "complexity", "vocab_size": 512, "hidden_size": 64,
                               "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
                               "num_key_value_heads": 1, "num_experts": 2}, "micro")
    state = {}

    def setup() -> None:
        torch.manual_seed(0)
        state["step"], _ = make_step(source.build("cpu"), "train", torch.randint(512, (2, 32)))
        state["step"]()

    allocator = allocator_peak(lambda: state["step"](), setup)
    with get_device("cpu").track_memory() as tracked:
        state["step"]()
    assert tracked.peak_delta_bytes > 0
    assert abs(tracked.peak_delta_bytes - allocator.peak_delta_bytes) <= 0.01 * allocator.peak_delta_bytes
    assert tracked.end_bytes - tracked.start_bytes == allocator.end_bytes - allocator.start_bytes == 0
