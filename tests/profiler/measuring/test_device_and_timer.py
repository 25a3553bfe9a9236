"""The timing loop with an injected clock, synchronisation on the right device, OOM detection (CPU memory:
test_cpu_memory.py)."""

from __future__ import annotations

import time
from unittest import mock

import pytest
import torch

from profiler.measuring.device import CpuDevice, CudaDevice, MpsDevice, get_device, is_out_of_memory, timing_device
from profiler.measuring.timer import time_callable


class FakeClock:
    """A clock that the timed function advances by known durations: no sleeping."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_time_callable_measures_known_durations_and_skips_warmup():
    clock = FakeClock()
    durations = iter([50.0, 60.0, 1.0, 2.0, 3.0, 4.0])  # two warm-up calls (slow: first-call costs), then 4 timed

    def fn():
        clock.now += next(durations)

    stats = time_callable(fn, CpuDevice(torch.device("cpu"), clock=clock), warmup=2, repeats=4)
    assert stats.samples_s == (1.0, 2.0, 3.0, 4.0)
    assert stats.mean == 2.5 and stats.p50 == 2.5


class RecordingDevice(CpuDevice):
    """Logs the order of calls and synchronisations."""

    def __init__(self, log: list[str]) -> None:
        super().__init__(torch.device("cpu"), clock=lambda: 0.0)
        self.log = log

    def synchronize(self) -> None:
        self.log.append("sync")


def test_every_timed_call_ends_with_a_synchronize():
    log: list[str] = []
    time_callable(lambda: log.append("call"), RecordingDevice(log), warmup=1, repeats=2)
    assert log == ["call", "sync", "call", "sync", "call", "sync"]


def test_cuda_device_synchronizes_its_own_index():
    with mock.patch("torch.cuda.synchronize") as sync:
        CudaDevice(torch.device("cuda", 1)).synchronize()
    sync.assert_called_once_with(torch.device("cuda", 1))


def test_mps_device_synchronizes_mps_not_cuda():
    with mock.patch("torch.mps.synchronize") as mps_sync, mock.patch("torch.cuda.synchronize") as cuda_sync:
        MpsDevice(torch.device("mps")).synchronize()
    mps_sync.assert_called_once_with()
    cuda_sync.assert_not_called()


@pytest.mark.parametrize("warmup, repeats, message",
                         [(-1, 1, "warmup=-1"), (0, 0, "repeats=0"), (0, 2.5, "repeats=2.5")])
def test_bad_loop_arguments(warmup, repeats, message):
    with pytest.raises(ValueError, match=message):
        time_callable(lambda: None, get_device("cpu"), warmup=warmup, repeats=repeats)


def test_mps_absent_is_a_clear_error():
    with mock.patch("torch.backends.mps.is_available", return_value=False):
        with pytest.raises(ValueError, match="device='mps' is not available here"):
            get_device("mps")


def test_cuda_absent_and_unknown_device_are_clear_errors():
    with mock.patch("torch.cuda.is_available", return_value=False):
        with pytest.raises(ValueError, match="device='cuda' is not available"):
            get_device("cuda")
    with pytest.raises(ValueError, match="device='tpu' must be one of auto, cpu, cuda, mps"):
        get_device("tpu")


@pytest.mark.parametrize("err, expected", [
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
    (RuntimeError("MPS backend out of memory (MPS allocated: 17 GB)"), True),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"), True),
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
    (ValueError("out of memory"), False),
])
def test_out_of_memory_detection(err, expected):
    assert is_out_of_memory(err) is expected


def test_timing_device_resolves_the_clock():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        device, clock = timing_device("cpu", "auto")
        assert clock == "cpu" and device.clock is time.process_time
        torch.set_num_threads(2)
        device, clock = timing_device("cpu", "auto")
        assert clock == "wall" and device.clock is not time.process_time
    finally:
        torch.set_num_threads(threads)
    device, clock = timing_device("cpu", "wall")
    assert clock == "wall" and device.clock is not time.process_time
    with mock.patch("profiler.measuring.device.get_device", return_value=CudaDevice(torch.device("cuda", 0))):
        with pytest.raises(ValueError, match="clock='cpu' needs device='cpu'"):
            timing_device("cuda", "cpu")
