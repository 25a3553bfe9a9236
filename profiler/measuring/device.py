"""One interface over the devices we time on — CPU, CUDA, Apple MPS: synchronise, time with events, track memory.

GPU work is asynchronous: a Python call returns once the kernels are queued. A timing is only sound if the device
has finished, so every timed region ends with `synchronize()` (CUDA: `torch.cuda.synchronize`; MPS:
`torch.mps.synchronize`; CPU: nothing to wait for, eager CPU ops return when done).

Peak memory, per device:

* **CUDA**: the caching allocator's `max_memory_allocated` after `reset_peak_memory_stats` — bytes of live tensors
  (rounded to the allocator's 512-byte blocks), not the larger reserved/cached pool.
* **MPS**: torch.mps has no peak counter. We report `current_allocated_memory` (live tensors) at the start and
  end, and `driver_allocated_memory` (what Metal holds, caches included) at the end as an upper bound of the peak.
* **CPU**: PyTorch keeps no statistics for CPU memory, and the process RSS (resident set size) is no good measure:
  glibc's malloc keeps freed blocks, RSS counts the interpreter and libraries and not pages allocated but never
  touched. We count tensor storages instead (`_CpuStorageTracker`): every CPU storage live when the region
  begins is registered with a weak reference, a TorchDispatchMode registers each new storage an aten op
  returns, and a storage's bytes are subtracted when its weak reference dies — so frees of storages older than
  the region count too. The peak is the highest live total at any op boundary. Like CUDA's figure it counts tensor
  bytes; unlike it, it misses scratch memory a kernel allocates and frees inside one op and rounds nothing.
  `profiler.measuring.memory_check` cross-checks it against the CPU allocator's own events. It slows every op,
  so measure memory in a separate pass from timing.
"""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

DEVICE_TYPES = ("cpu", "cuda", "mps")
TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class MemoryStats:
    """Bytes of live tensors on one device around a region: at the start, at the highest point, at the end.
    `upper_bound` is set where the peak is not observed directly (MPS: memory the driver holds); `method` says
    how the numbers were obtained."""

    start_bytes: int = 0
    peak_bytes: int = 0
    end_bytes: int = 0
    upper_bound_bytes: int | None = None
    method: str = ""
    phase_peak_bytes: dict[str, int] = field(default_factory=dict)  # CPU: the peak in each phase of a step

    @property
    def peak_delta_bytes(self) -> int:
        """The most the region added on top of what was live when it began (activations, gradients, state)."""
        return self.peak_bytes - self.start_bytes

    def to_dict(self) -> dict[str, Any]:
        return {"start_bytes": self.start_bytes, "peak_bytes": self.peak_bytes, "end_bytes": self.end_bytes,
                "peak_delta_bytes": self.peak_delta_bytes, "upper_bound_bytes": self.upper_bound_bytes,
                "method": self.method, "phase_peak_bytes": dict(self.phase_peak_bytes)}


def _cpu_storage(value: Any) -> torch.UntypedStorage | None:
    """The storage behind a CPU tensor holding real memory; None for anything else — other devices, sparse
    tensors, and tensor subclasses without real data (FakeTensor reports device cpu over a meta storage;
    FunctionalTensor's storage has no data allocated)."""
    if not isinstance(value, torch.Tensor) or value.device.type != "cpu" or value.is_sparse:
        return None
    try:
        storage = value.untyped_storage()
        if storage.device.type != "cpu":
            return None
        storage.data_ptr()  # raises for storage whose data was never allocated
    except (RuntimeError, NotImplementedError):
        return None
    return storage


def _live_cpu_storages() -> Iterator[torch.UntypedStorage]:
    """The storages of every CPU tensor the garbage collector tracks (weights, buffers, optimizer state, cached
    inputs), and of the gradients of those that are leaves: a gradient written by backward has no Python object
    until something reads `.grad`, so the collector cannot see it. A storage shared by several tensors (views)
    comes once per tensor; callers count it once."""
    for obj in gc.get_objects():
        # type(), not isinstance(): isinstance reads obj.__class__, which some lazy module proxies warn about.
        if not issubclass(type(obj), torch.Tensor):
            continue
        tensors = [obj, obj.grad] if obj.is_leaf else [obj]  # .grad of a non-leaf warns
        for tensor in tensors:
            storage = _cpu_storage(tensor)
            if storage is not None:
                yield storage


class _CpuStorageTracker(TorchDispatchMode):
    """Bytes of live CPU tensor storages, counted by storage identity, and their highest total at an op boundary.

    `start()` registers every storage live at that moment (`_live_cpu_storages`); then each aten op's outputs are
    looked at: a storage already registered (in-place ops, views, `out=`) adds nothing unless it grew (resize),
    a new one adds its nbytes. Each registered storage carries a weak reference whose callback subtracts its
    bytes when the storage is freed — also for storages that existed before the region, such as the gradients
    `zero_grad(set_to_none=True)` drops. PyTorch keeps one Python object per storage for as long as the storage
    lives, shared by all its views, so the callback fires exactly when the memory is released. Storages are
    keyed by the id of that object, which cannot be reused before the callback has removed it (an address
    reused by the allocator is a new storage object). Cost per op: a look-up per output, no scan of live storages.

    The peak is also kept per phase of a training step (`PHASES`): an op autograd's engine runs is `backward`,
    an op before the first backward op `forward` (zero_grad included), an op after it `optimizer`.
    """

    PHASES = ("forward", "backward", "optimizer")

    def __init__(self) -> None:
        super().__init__()
        self._storages: dict[int, tuple[weakref.ref[torch.UntypedStorage], int]] = {}
        self.live_bytes = 0
        self.peak_bytes = 0
        self.phase_peaks: dict[str, int] = {}
        self._after_backward = False

    def start(self) -> None:
        """Register the storages live now; the live total and the peak start from their bytes."""
        for storage in _live_cpu_storages():
            self._register(storage)
        self.peak_bytes = self.live_bytes

    def stop(self) -> None:
        """Forget every storage: later frees change nothing (and the callbacks no longer hold the tracker)."""
        self._storages.clear()

    def _register(self, storage: torch.UntypedStorage) -> None:
        """Count `storage` if it is new, or the change of its size if it was resized since it was counted."""
        key, nbytes = id(storage), storage.nbytes()
        if key in self._storages:
            ref, counted = self._storages[key]
        elif nbytes == 0:
            return  # holds nothing; counted if it grows and an op returns it again
        else:
            ref, counted = weakref.ref(storage, lambda _: self._release(key)), 0
        if nbytes != counted:
            self._storages[key] = (ref, nbytes)
            self.live_bytes += nbytes - counted

    def _release(self, key: int) -> None:
        """The weak-reference callback of a freed storage."""
        self.live_bytes -= self._storages.pop(key)[1]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        """Run the op, count the storages of its outputs, and raise the peak to the live total."""
        out = func(*args, **(kwargs or {}))
        for value in tree_flatten(out)[0]:
            storage = _cpu_storage(value)
            if storage is not None:
                self._register(storage)
        self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        if torch._C._current_graph_task_id() != -1:
            phase, self._after_backward = "backward", True
        else:
            phase = "optimizer" if self._after_backward else "forward"
        self.phase_peaks[phase] = max(self.phase_peaks.get(phase, 0), self.live_bytes)
        return out


@dataclass
class Device:
    """A torch device we can time on. Build with `get_device`; subclasses fill in synchronisation and memory."""

    torch_device: torch.device
    clock: Callable[[], float] = field(default=time.perf_counter, repr=False)

    @property
    def type(self) -> str:
        return self.torch_device.type

    def synchronize(self) -> None:
        """Wait until every queued kernel has finished."""

    def time_call(self, fn: Callable[[], Any]) -> float:
        """Seconds `fn()` took until the device finished: `clock` around the call and a synchronize here; CUDA
        and MPS time on the device with events instead."""
        start = self.clock()
        fn()
        self.synchronize()
        return self.clock() - start

    @contextmanager
    def track_memory(self) -> Iterator[MemoryStats]:
        """Memory of the region in the `with` block; the stats object is filled in when the block exits."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"type": self.type, "name": str(self.torch_device)}


class CpuDevice(Device):
    @contextmanager
    def track_memory(self) -> Iterator[MemoryStats]:
        """Bytes of live CPU tensor storages (see `_CpuStorageTracker`): those the garbage collector reaches at the
        start, then every storage aten ops create, less every storage freed."""
        stats = MemoryStats(method="cpu: live tensor storages by identity (gc at the start, then a TorchDispatchMode "
                                   "and weakref callbacks; tensor bytes only, kernel-internal scratch not seen)")
        tracker = _CpuStorageTracker()
        tracker.start()
        stats.start_bytes = tracker.live_bytes
        try:
            with tracker:
                yield stats
            stats.peak_bytes = tracker.peak_bytes
            stats.end_bytes = tracker.live_bytes
            stats.phase_peak_bytes = dict(tracker.phase_peaks)
        finally:
            tracker.stop()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "threads": torch.get_num_threads()}


def _time_with_events(event: Callable[..., Any], fn: Callable[[], Any]) -> float:
    """Seconds `fn` took on the device stream, between two timing events (torch.cuda.Event / torch.mps.Event)."""
    start, end = event(enable_timing=True), event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3  # elapsed_time is in milliseconds


class CudaDevice(Device):
    def synchronize(self) -> None:
        torch.cuda.synchronize(self.torch_device)

    def time_call(self, fn: Callable[[], Any]) -> float:
        return _time_with_events(torch.cuda.Event, fn)

    @contextmanager
    def track_memory(self) -> Iterator[MemoryStats]:
        stats = MemoryStats(method="cuda: torch.cuda.max_memory_allocated after reset_peak_memory_stats")
        self.synchronize()
        torch.cuda.reset_peak_memory_stats(self.torch_device)
        stats.start_bytes = torch.cuda.memory_allocated(self.torch_device)
        yield stats
        self.synchronize()
        stats.peak_bytes = torch.cuda.max_memory_allocated(self.torch_device)
        stats.end_bytes = torch.cuda.memory_allocated(self.torch_device)
        stats.upper_bound_bytes = torch.cuda.max_memory_reserved(self.torch_device)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "gpu": torch.cuda.get_device_name(self.torch_device),
                "cuda": torch.version.cuda}


class MpsDevice(Device):
    def synchronize(self) -> None:
        torch.mps.synchronize()

    def time_call(self, fn: Callable[[], Any]) -> float:
        return _time_with_events(torch.mps.Event, fn)

    @contextmanager
    def track_memory(self) -> Iterator[MemoryStats]:
        stats = MemoryStats(method="mps: current_allocated_memory at start/end (no peak counter in torch.mps); "
                                   "upper bound = driver_allocated_memory at the end (includes Metal's cache)")
        self.synchronize()
        stats.start_bytes = torch.mps.current_allocated_memory()
        yield stats
        self.synchronize()
        stats.end_bytes = torch.mps.current_allocated_memory()
        stats.peak_bytes = max(stats.start_bytes, stats.end_bytes)
        stats.upper_bound_bytes = torch.mps.driver_allocated_memory()


_DEVICE_CLASSES = {"cpu": CpuDevice, "cuda": CudaDevice, "mps": MpsDevice}


def default_device_name() -> str:
    """cuda if available, else mps if available, else cpu."""
    if torch.cuda.is_available():
        return "cuda"
    return "mps" if torch.backends.mps.is_available() else "cpu"


def get_device(name: str = "auto") -> Device:
    """The `Device` for "cpu", "cuda", "cuda:N", "mps" or "auto" (see `default_device_name`); ValueError when the
    device does not exist on this machine."""
    name = default_device_name() if name == "auto" else name
    try:
        torch_device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"device={name!r} must be one of auto, {', '.join(DEVICE_TYPES)} (or cuda:N)") from err
    if torch_device.type not in _DEVICE_CLASSES:
        raise ValueError(f"device={name!r} must be one of auto, {', '.join(DEVICE_TYPES)} (or cuda:N)")
    if torch_device.type == "mps" and not torch.backends.mps.is_available():
        reason = ("this torch build has no MPS support" if not torch.backends.mps.is_built()
                  else "MPS needs Apple silicon and macOS 12.3 or later")
        raise ValueError(f"device='mps' is not available here: {reason}; use --device cpu or cuda")
    if torch_device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={name!r} is not available: torch.cuda.is_available() is False; use --device cpu")
        if torch_device.index is not None and torch_device.index >= torch.cuda.device_count():
            raise ValueError(f"device={name!r}: index must be in [0, {torch.cuda.device_count() - 1}]")
        if torch_device.index is None:
            torch_device = torch.device("cuda", torch.cuda.current_device())
    return _DEVICE_CLASSES[torch_device.type](torch_device)


# Messages of allocation failures that are not raised as torch.OutOfMemoryError: MPS ("MPS backend out of
# memory"), the CPU allocator ("DefaultCPUAllocator: can't allocate memory", "not enough memory").
_OOM_MESSAGES = ("out of memory", "can't allocate memory", "not enough memory")


def is_out_of_memory(err: BaseException) -> bool:
    """True for an allocation failure on any device: torch.OutOfMemoryError (CUDA) or a RuntimeError whose
    message says memory ran out."""
    if isinstance(err, torch.OutOfMemoryError):
        return True
    return isinstance(err, RuntimeError) and any(m in str(err).lower() for m in _OOM_MESSAGES)


def release_cached_memory(device: Device) -> None:
    """Give the allocator's cached blocks back after an out-of-memory failure, so the next attempt starts clean."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def timing_device(name: str, clock: str) -> tuple[Device, str]:
    """The device `name` (`get_device`) timed by `clock`, and that clock resolved: "wall" (elapsed time), "cpu"
    (this process's CPU time, steadier on a shared machine; the CPU device only), or "auto" = cpu on the CPU device
    with one torch thread (where CPU time equals compute time), else wall."""
    device = get_device(name)
    if clock == "auto":
        clock = "cpu" if device.type == "cpu" and torch.get_num_threads() == 1 else "wall"
    if clock == "cpu":
        if device.type != "cpu":
            raise ValueError(f"clock='cpu' needs device='cpu', got device={name!r}")
        device = replace(device, clock=time.process_time)
    return device, clock
