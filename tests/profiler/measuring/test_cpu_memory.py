"""The CPU peak-memory tracker (`CpuDevice.track_memory`) against allocations of known size.

Each tensor here is float32 of a round byte size, so every expectation is an exact number of bytes above (or
below) what was live when the region began.
"""

from __future__ import annotations

import json
import subprocess
import sys

import torch
from torch import nn

from profiler.measuring.device import get_device

MB = 1_000_000


def mb_tensor(megabytes: float = 1) -> torch.Tensor:
    """A float32 tensor of `megabytes` × 1e6 bytes."""
    return torch.ones(int(megabytes * MB) // 4)


def track():
    return get_device("cpu").track_memory()


def test_allocations_and_frees_inside_the_region_are_counted_exactly():
    with track() as stats:
        a = mb_tensor(1)
        b = mb_tensor(2)
        c = mb_tensor(0.5)  # 3.5 MB allocated: the peak
        del a, c  # 1.5 MB freed
    assert stats.peak_delta_bytes == 3_500_000
    assert stats.end_bytes - stats.start_bytes == 2_000_000
    del b


def test_the_peak_is_the_highest_total_not_the_sum_of_allocations():
    with track() as stats:
        y = mb_tensor(1) * 2  # the ones() temporary is freed by the end of the line: 1 MB live
        z = y + 1  # 2 MB live
        del y
        w = z * 3  # 2 MB live again
        del z, w
    assert stats.peak_delta_bytes == 2_000_000
    assert stats.end_bytes == stats.start_bytes


def test_freeing_a_tensor_older_than_the_region_lowers_the_count():
    old = mb_tensor(1)
    with track() as stats:
        del old  # -1 MB
        new = mb_tensor(1)  # +1 MB: back to the start, never above it
    assert stats.start_bytes >= MB
    assert stats.peak_delta_bytes == 0
    assert stats.end_bytes == stats.start_bytes
    del new


def test_in_place_ops_and_out_arguments_add_nothing():
    x, y = mb_tensor(1), mb_tensor(1)
    with track() as stats:
        x.add_(y)
        x.mul_(y)
        torch.add(x, y, out=x)
        x.copy_(y)
        x.zero_()
    assert stats.peak_delta_bytes == 0
    assert stats.end_bytes == stats.start_bytes


def test_views_add_nothing_and_count_their_storage_once():
    old = mb_tensor(1).reshape(1000, 250)
    with track() as stats:
        views = [old[0], old.t(), old.view(-1), old.detach(), old[::2]]
        y = mb_tensor(1).reshape(1000, 250)
        views += [y[i] for i in range(10)] + [y.t(), y.view(-1)]
        del views, y
    assert stats.peak_delta_bytes == MB
    assert stats.end_bytes == stats.start_bytes


def test_a_storage_that_grows_counts_its_growth():
    empty, small = torch.empty(0), torch.empty(10)
    with track() as stats:
        empty.resize_(250_000)  # from 0 to 1 MB
        small.resize_(250_000)  # from 40 bytes to 1 MB
    assert stats.end_bytes - stats.start_bytes == 2 * MB - 40
    assert stats.peak_delta_bytes == 2 * MB - 40


_ADDRESS_REUSE = """
import json, torch
from profiler.measuring.device import get_device
with get_device("cpu").track_memory() as stats:
    for _ in range(100):
        x = torch.ones(1000)  # 4,000 bytes
        address = x.data_ptr()
        del x
        y = torch.ones(1000)
        if y.data_ptr() == address:
            break
        del y
    else:
        raise SystemExit("the allocator never reused a freed address in 100 tries")
print(json.dumps(stats.to_dict()))
"""


def test_a_freed_storage_whose_address_is_reused_is_a_new_storage():
    """The allocator usually hands a freed block straight to the next request of its size; the new tensor must be
    counted as new, and the old one's release must not be lost. In a fresh process: after many other tests the
    allocator's free lists no longer hand the block straight back."""
    done = subprocess.run([sys.executable, "-c", _ADDRESS_REUSE], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    assert stats["peak_delta_bytes"] == 4000
    assert stats["end_bytes"] - stats["start_bytes"] == 4000


def test_zero_grad_set_to_none_shows_the_previous_gradients_freed():
    """Gradients written by backward have no Python object until something reads `.grad`; they are live at the
    start, and freeing them inside the region lowers the count."""
    model = nn.Linear(500, 500)  # weight 1,000,000 bytes, bias 2,000
    model(torch.ones(1, 500)).sum().backward()
    with track() as stats:
        model.zero_grad(set_to_none=True)
    assert stats.start_bytes - stats.end_bytes == 1_002_000
    assert stats.peak_bytes == stats.start_bytes


def test_tensors_without_real_data_are_ignored():
    """FakeTensors (left alive by tracing elsewhere) report device cpu but hold no memory: not counted, no error."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        fake = torch.empty(10**6)
    with track() as stats:
        y = torch.ones(250)  # 1,000 bytes
        del y
    assert stats.peak_delta_bytes == 1000
    del fake


def test_phase_peaks_split_a_training_step():
    """Ops before the backward are the forward phase (zero_grad included), autograd's ops the backward, what
    follows the optimizer: the step's peak is the largest phase peak."""
    model = nn.Linear(200, 200)
    optimizer = torch.optim.AdamW(model.parameters())
    x = torch.ones(64, 200)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model(x).square().sum().backward()
        optimizer.step()

    step()
    with track() as stats:
        step()
    assert set(stats.phase_peak_bytes) == {"forward", "backward", "optimizer"}
    assert max(stats.phase_peak_bytes.values()) == stats.peak_bytes
    assert stats.phase_peak_bytes["forward"] < stats.phase_peak_bytes["backward"]  # gradients appear in backward
    with track() as stats, torch.no_grad():
        model(x)
    assert set(stats.phase_peak_bytes) == {"forward"}
