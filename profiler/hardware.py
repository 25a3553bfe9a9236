"""Hardware profiles: what a device can do, as data (`profiler/data/hardware/*.json`), validated on load.

A `HardwareProfile` holds a device's published (or estimated) peaks — FLOP/s per dtype, memory bandwidth, memory
capacity, power — and an `Efficiency` block with what is actually *achieved*: matmul FLOP/s at a few shapes and
elementwise (copy/add) bandwidth, each as a min/median/max spread. `python -m profiler calibrate` measures the
efficiency block on the current device; the shipped profiles of devices we cannot run carry assumed efficiencies,
marked `"calibrated": false` with the reasoning in `source`. The schema is documented in docs/measuring.md.

Profiles built from published measurements give each matmul point and the element-wise bandwidth its own
`source` (a `Source`: URL, what was measured, with which software, and whether the number is `assumed` — derived
rather than measured); profiler/data/hardware/SOURCES.md lists them. Calibrated points need none.

Units: FLOP/s with 2 FLOPs per multiply-add; bytes and bytes/s as plain numbers (1 GB/s = 1e9 bytes/s);
seconds; watts. Nothing here imports torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from complexity.atomic import write_atomically
from complexity.inputs import is_int, require_int, require_number

HARDWARE_DIR = Path(__file__).resolve().parent / "data" / "hardware"  # package data: found from a wheel too
DEVICE_TYPES = ("cpu", "cuda", "mps")
# Data types a profile may give a peak or an achieved rate for (torch's names; tfloat32 = NVIDIA TF32 Tensor Core
# matmul of float32 tensors, float8 = E4M3/E5M2, int8 = integer multiply-accumulate, counted as 2 ops like FLOPs).
DTYPES = ("float64", "float32", "tfloat32", "bfloat16", "float16", "float8", "int8")
# Which end of a rate spread each estimate takes: optimistic = fastest observed, conservative = slowest.
ESTIMATES = {"optimistic": "max", "likely": "median", "conservative": "min"}

# Plausibility bounds (inclusive upper): a value outside is a typo or a unit slip (GB/s written as bytes/s).
MAX_FLOPS = 1e18  # FLOP/s; an H100's densest FP8 peak is ~2e15
MAX_BANDWIDTH = 1e14  # bytes/s; HBM3e is ~5e12
MAX_MEMORY = 2**50  # bytes (1 PiB)
MAX_POWER = 1e5  # watts
MAX_OVERHEAD = 1.0  # seconds per op
MAX_DIM = 2**20  # matmul dimension


def _check_number(where: str, value: Any, low: float, high: float, low_inclusive: bool = False) -> float:
    """`value` as a float if low < value <= high (low <= value when low_inclusive), else ValueError naming `where`."""
    return require_number(where, value, low, high, low_inclusive=low_inclusive)


def _check_keys(where: str, data: Any, required: set[str], optional: set[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a JSON object, got {type(data).__name__}")
    missing, unknown = required - data.keys(), data.keys() - required - optional
    if missing:
        raise ValueError(f"{where} is missing field(s) {sorted(missing)}")
    if unknown:
        raise ValueError(f"{where} has unknown field(s) {sorted(unknown)}; allowed: {sorted(required | optional)}")
    return data


def _check_dtype(where: str, dtype: Any) -> str:
    if dtype not in DTYPES:
        raise ValueError(f"{where}={dtype!r} must be one of {list(DTYPES)}")
    return dtype


@dataclass(frozen=True)
class Source:
    """Where one number comes from: `url` of the publication, what was `measured` (the benchmark, size and
    device), the `software` it ran (torch version, backend), and `assumed` = true when the number is derived (a
    scaled sibling, a fraction of a datasheet peak) rather than read off a measurement; `measured` then says how."""

    url: str
    measured: str
    software: str = ""
    assumed: bool = False

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Source:
        _check_keys(where, data, {"url", "measured"}, {"software", "assumed"})
        for key in ("url", "measured"):
            if not isinstance(data[key], str) or not data[key]:
                raise ValueError(f"{where}.{key}={data[key]!r} must be a non-empty string")
        if not data["url"].startswith(("https://", "http://")):
            raise ValueError(f"{where}.url={data['url']!r} must be an http(s) address")
        software = data.get("software", "")
        if not isinstance(software, str):
            raise ValueError(f"{where}.software={software!r} must be a string")
        assumed = data.get("assumed", False)
        if not isinstance(assumed, bool):
            raise ValueError(f"{where}.assumed={assumed!r} must be true or false")
        return cls(data["url"], data["measured"], software, assumed)


def _optional_source(data: Any, where: str) -> Source | None:
    return None if data.get("source") is None else Source.from_dict(data["source"], f"{where}.source")


def _without_empty_sources(data: Any) -> Any:
    """`asdict` output with every `"source": None` left out, so calibrated profiles are written as before."""
    if isinstance(data, dict):
        return {k: _without_empty_sources(v) for k, v in data.items() if not (k.endswith("source") and v is None)}
    if isinstance(data, list):
        return [_without_empty_sources(v) for v in data]
    return data


@dataclass(frozen=True)
class Spread:
    """A rate observed several times: min <= median <= max, all > 0 (FLOP/s or bytes/s)."""

    min: float
    median: float
    max: float

    @classmethod
    def from_dict(cls, data: Any, where: str, high: float) -> Spread:
        _check_keys(where, data, {"min", "median", "max"})
        values = [_check_number(f"{where}.{key}", data[key], 0, high) for key in ("min", "median", "max")]
        if not values[0] <= values[1] <= values[2]:
            raise ValueError(f"{where} must satisfy min <= median <= max, got {values}")
        return cls(*values)

    def pick(self, estimate: str) -> float:
        """The rate for an estimate: optimistic -> max, likely -> median, conservative -> min."""
        if estimate not in ESTIMATES:
            raise ValueError(f"estimate={estimate!r} must be one of {list(ESTIMATES)}")
        return getattr(self, ESTIMATES[estimate])


@dataclass(frozen=True)
class MatmulPoint:
    """Achieved FLOP/s of one [m, k] @ [k, n] product (2·m·n·k FLOPs) in one dtype; `shape` is a free label
    ("square", "skinny", ...) saying which transformer matmul it stands for."""

    dtype: str
    shape: str
    m: int
    n: int
    k: int
    flops_per_s: Spread
    source: Source | None = None  # where a published (uncalibrated) rate comes from

    @classmethod
    def from_dict(cls, data: Any, where: str) -> MatmulPoint:
        _check_keys(where, data, {"dtype", "shape", "m", "n", "k", "flops_per_s"}, {"source"})
        dims = {}
        for key in ("m", "n", "k"):
            dims[key] = require_int(f"{where}.{key}", data[key], 1, MAX_DIM)
        if not isinstance(data["shape"], str) or not data["shape"]:
            raise ValueError(f"{where}.shape={data['shape']!r} must be a non-empty string")
        return cls(dtype=_check_dtype(f"{where}.dtype", data["dtype"]), shape=data["shape"], **dims,
                   flops_per_s=Spread.from_dict(data["flops_per_s"], f"{where}.flops_per_s", MAX_FLOPS),
                   source=_optional_source(data, where))


@dataclass(frozen=True)
class BandwidthPoint:
    """Achieved element-wise bandwidth when one kernel moves `bytes` bytes (reads + writes): small working sets
    run from cache, large ones from DRAM."""

    bytes: int
    bytes_per_s: Spread
    source: Source | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str) -> BandwidthPoint:
        _check_keys(where, data, {"bytes", "bytes_per_s"}, {"source"})
        size = require_int(f"{where}.bytes", data["bytes"], 1, MAX_MEMORY)
        return cls(size, Spread.from_dict(data["bytes_per_s"], f"{where}.bytes_per_s", MAX_BANDWIDTH),
                   _optional_source(data, where))


# Which end of a spread of *times* each estimate takes (the opposite ends of a rate's).
TIME_ESTIMATES = {"optimistic": "min", "likely": "median", "conservative": "max"}
MAX_HOST_SECONDS = 3600.0  # a step's host time above an hour is a unit slip


@dataclass(frozen=True)
class HostOverheadPoint:
    """The host time of one step of a model that the roofline's kernels do not cover — Python, module calls,
    views, the dispatcher, each kernel's fixed launch cost — measured on this device (`profiler.measuring.
    host_overhead`) for `model` in `mode` at `batch` sequences, as a spread of seconds (min <= median <= max)."""

    model: str
    mode: str
    batch: int
    seconds: Spread

    @classmethod
    def from_dict(cls, data: Any, where: str) -> HostOverheadPoint:
        _check_keys(where, data, {"model", "mode", "batch", "seconds"})
        for key in ("model", "mode"):
            if not isinstance(data[key], str) or not data[key]:
                raise ValueError(f"{where}.{key}={data[key]!r} must be a non-empty string")
        return cls(data["model"], data["mode"], require_int(f"{where}.batch", data["batch"], 1, MAX_DIM),
                   Spread.from_dict(data["seconds"], f"{where}.seconds", MAX_HOST_SECONDS))

    def pick(self, estimate: str) -> float:
        """Seconds for an estimate: optimistic -> the fastest repeat, likely -> median, conservative -> slowest."""
        if estimate not in TIME_ESTIMATES:
            raise ValueError(f"estimate={estimate!r} must be one of {list(TIME_ESTIMATES)}")
        return getattr(self.seconds, TIME_ESTIMATES[estimate])


@dataclass(frozen=True)
class Efficiency:
    """What the device achieves, not what it promises: matmul FLOP/s at some shapes and elementwise bandwidth
    (bytes read + written per second by a large out-of-place add). `calibrated` is true when measured by
    `profiler calibrate`, false when assumed; `source` says how."""

    calibrated: bool
    source: str
    matmul: tuple[MatmulPoint, ...]
    elementwise_bytes_per_s: Spread
    elementwise_by_size: tuple[BandwidthPoint, ...] = ()  # optional; ascending in bytes
    exp_per_s: Spread | None = None  # optional; elements per second through an exponential (torch.exp)
    zero_fill_by_size: tuple[BandwidthPoint, ...] = ()  # optional; torch.zeros of a new tensor, by its bytes
    elementwise_source: Source | None = None  # where a published elementwise_bytes_per_s comes from
    host_overhead: tuple[HostOverheadPoint, ...] = ()  # optional; measured per model, mode and batch

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Efficiency:
        _check_keys(where, data, {"calibrated", "source", "matmul", "elementwise_bytes_per_s"},
                    {"elementwise_by_size", "exp_per_s", "zero_fill_by_size", "elementwise_source",
                     "host_overhead"})
        if not isinstance(data["calibrated"], bool):
            raise ValueError(f"{where}.calibrated={data['calibrated']!r} must be true or false")
        if not isinstance(data["source"], str) or not data["source"]:
            raise ValueError(f"{where}.source must be a non-empty string saying how the numbers were obtained")
        if not isinstance(data["matmul"], list) or not data["matmul"]:
            raise ValueError(f"{where}.matmul must be a non-empty list of matmul points")
        points = tuple(MatmulPoint.from_dict(p, f"{where}.matmul[{i}]") for i, p in enumerate(data["matmul"]))
        return cls(calibrated=data["calibrated"], source=data["source"], matmul=points,
                   elementwise_bytes_per_s=Spread.from_dict(data["elementwise_bytes_per_s"],
                                                            f"{where}.elementwise_bytes_per_s", MAX_BANDWIDTH),
                   elementwise_by_size=_bandwidth_points(data.get("elementwise_by_size", []),
                                                         f"{where}.elementwise_by_size"),
                   exp_per_s=None if data.get("exp_per_s") is None else
                   Spread.from_dict(data["exp_per_s"], f"{where}.exp_per_s", MAX_FLOPS),
                   zero_fill_by_size=_bandwidth_points(data.get("zero_fill_by_size", []),
                                                       f"{where}.zero_fill_by_size"),
                   elementwise_source=None if data.get("elementwise_source") is None else
                   Source.from_dict(data["elementwise_source"], f"{where}.elementwise_source"),
                   host_overhead=_host_overhead_points(data.get("host_overhead", []), f"{where}.host_overhead"))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form `from_dict` reads back (absent sources are left out)."""
        return _without_empty_sources({**asdict(self), "matmul": [asdict(p) for p in self.matmul],
                                       "elementwise_by_size": [asdict(p) for p in self.elementwise_by_size],
                                       "zero_fill_by_size": [asdict(p) for p in self.zero_fill_by_size],
                                       "host_overhead": [asdict(p) for p in self.host_overhead]})

    def sources(self) -> list[tuple[str, Source | None]]:
        """Each achieved rate with its source (None where it has none): matmul points, then bandwidths."""
        rates = [(f"matmul {p.dtype} {p.shape} {p.m}x{p.n}x{p.k}", p.source) for p in self.matmul]
        rates += [("elementwise_bytes_per_s", self.elementwise_source)]
        rates += [(f"elementwise_by_size[{p.bytes}]", p.source) for p in self.elementwise_by_size]
        return rates


def _interpolate(table: tuple[BandwidthPoint, ...], size: int, estimate: str) -> float:
    """The rate at `size`, linear in (log size, log rate) between neighbouring points, clamped at the ends."""
    if size <= table[0].bytes:
        return table[0].bytes_per_s.pick(estimate)
    for low, high in zip(table, table[1:]):
        if size <= high.bytes:
            t = (math.log(size) - math.log(low.bytes)) / (math.log(high.bytes) - math.log(low.bytes))
            return math.exp((1 - t) * math.log(low.bytes_per_s.pick(estimate))
                            + t * math.log(high.bytes_per_s.pick(estimate)))
    return table[-1].bytes_per_s.pick(estimate)


def _host_overhead_points(data: Any, where: str) -> tuple[HostOverheadPoint, ...]:
    if not isinstance(data, list):
        raise ValueError(f"{where} must be a list of {{model, mode, batch, seconds}} points")
    points = tuple(HostOverheadPoint.from_dict(p, f"{where}[{i}]") for i, p in enumerate(data))
    keys = [(p.model, p.mode, p.batch) for p in points]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{where} lists a (model, mode, batch) more than once: {keys}")
    return points


def _bandwidth_points(data: Any, where: str) -> tuple[BandwidthPoint, ...]:
    if not isinstance(data, list):
        raise ValueError(f"{where} must be a list of {{bytes, bytes_per_s}} points")
    points = tuple(BandwidthPoint.from_dict(p, f"{where}[{i}]") for i, p in enumerate(data))
    sizes = [p.bytes for p in points]
    if sizes != sorted(set(sizes)):
        raise ValueError(f"{where} must be strictly ascending in bytes, got {sizes}")
    return points


@dataclass(frozen=True)
class HardwareProfile:
    """One device. Peaks are per device (one GPU, one whole CPU package); `memory_bytes` lists the capacities it is
    sold with, ascending; `power_watts` is the sustained power under load used for energy estimates (an
    assumption each file's `sources` explains); `op_overhead_s` is the fixed cost of launching one op."""

    name: str
    device_type: str
    description: str
    peak_flops_per_s: dict[str, float]
    memory_bandwidth_bytes_per_s: float
    memory_bytes: tuple[int, ...]
    power_watts: float
    op_overhead_s: float
    efficiency: Efficiency
    sources: dict[str, str]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def max_memory_bytes(self) -> int:
        return self.memory_bytes[-1]

    def peak(self, dtype: str) -> float:
        """Peak FLOP/s in `dtype`; ValueError listing the dtypes the profile knows."""
        if dtype not in self.peak_flops_per_s:
            raise ValueError(f"dtype={dtype!r} has no peak in profile {self.name!r}; known: "
                             f"{sorted(self.peak_flops_per_s)}")
        return self.peak_flops_per_s[dtype]

    def matmul_flops_per_s(self, dtype: str, m: int, n: int, k: int, estimate: str = "likely",
                           label: str | None = None) -> float:
        """Achievable FLOP/s of an [m, k] @ [k, n] product: the calibrated point of `dtype` nearest in
        (log m, log n, log k) — Euclidean distance, so a 2x change in any dimension counts alike — then the
        `estimate` end of its spread. Never extrapolated: a shape far from every point gets its nearest one.
        `label` restricts the search to points of that `shape` label (e.g. "attention" for the fused attention
        kernel) when the profile has any, else all points of the dtype are searched."""
        points = [p for p in self.efficiency.matmul if p.dtype == dtype]
        if label is not None and any(p.shape == label for p in points):
            points = [p for p in points if p.shape == label]
        if not points:
            raise ValueError(f"dtype={dtype!r} has no matmul efficiency in profile {self.name!r}; known: "
                             f"{sorted({p.dtype for p in self.efficiency.matmul})}")
        target = [math.log2(max(d, 1)) for d in (m, n, k)]
        nearest = min(points, key=lambda p: math.dist(target, [math.log2(d) for d in (p.m, p.n, p.k)]))
        return nearest.flops_per_s.pick(estimate)

    def elementwise_bytes_per_s(self, estimate: str = "likely", bytes_moved: int | None = None) -> float:
        """Achieved element-wise bandwidth; with `bytes_moved` (by one kernel) and an `elementwise_by_size`
        table, interpolated linearly in log(bytes) between the two nearest points (clamped at the ends)."""
        table = self.efficiency.elementwise_by_size
        if bytes_moved is None or not table:
            return self.efficiency.elementwise_bytes_per_s.pick(estimate)
        return _interpolate(table, bytes_moved, estimate)

    def host_overhead_s(self, model: str, mode: str, batch: int, estimate: str = "likely") -> float | None:
        """The measured host time of a step of `model` in `mode` at `batch` (`HostOverheadPoint`), or None when
        the profile has no such point (the predictor then prices every launch at `op_overhead_s`)."""
        for point in self.efficiency.host_overhead:
            if (point.model, point.mode, point.batch) == (model, mode, batch):
                return point.pick(estimate)
        return None

    def zero_fill_bytes_per_s(self, estimate: str = "likely", size: int = 1) -> float:
        """Bytes/s of filling a newly allocated tensor of `size` bytes with zeros (fresh pages from the operating
        system cost more than a write), from `zero_fill_by_size`; without one, the element-wise bandwidth."""
        table = self.efficiency.zero_fill_by_size
        return _interpolate(table, size, estimate) if table else self.elementwise_bytes_per_s(estimate, size)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document `profile_from_dict` reads back (tuples become lists)."""
        data = asdict(self)
        data["memory_bytes"] = list(self.memory_bytes)
        data["efficiency"] = self.efficiency.to_dict()
        return data


_REQUIRED = {"name", "device_type", "description", "peak_flops_per_s", "memory_bandwidth_bytes_per_s",
             "memory_bytes", "power_watts", "op_overhead_s", "efficiency", "sources"}


def profile_from_dict(data: Any, where: str = "profile") -> HardwareProfile:
    """A validated `HardwareProfile` from its JSON dict; ValueError naming the bad field and its allowed range."""
    _check_keys(where, data, _REQUIRED, {"details"})
    for key in ("name", "description"):
        if not isinstance(data[key], str) or not data[key]:
            raise ValueError(f"{where}.{key}={data[key]!r} must be a non-empty string")
    if data["device_type"] not in DEVICE_TYPES:
        raise ValueError(f"{where}.device_type={data['device_type']!r} must be one of {list(DEVICE_TYPES)}")
    peaks = data["peak_flops_per_s"]
    if not isinstance(peaks, dict) or not peaks:
        raise ValueError(f"{where}.peak_flops_per_s must be a non-empty object of dtype -> FLOP/s")
    peaks = {_check_dtype(f"{where}.peak_flops_per_s key", dtype): _check_number(
        f"{where}.peak_flops_per_s.{dtype}", value, 0, MAX_FLOPS) for dtype, value in peaks.items()}
    memory = data["memory_bytes"]
    if (not isinstance(memory, list) or not memory or memory != sorted(memory)
            or any(not is_int(b) or not 0 < b <= MAX_MEMORY for b in memory)):
        raise ValueError(f"{where}.memory_bytes={memory!r} must be a non-empty ascending list of integers in "
                         f"(0, {MAX_MEMORY}] (bytes)")
    sources = data["sources"]
    if not isinstance(sources, dict) or not all(isinstance(v, str) and v for v in sources.values()):
        raise ValueError(f"{where}.sources must be an object of field -> non-empty source text")
    details = data.get("details", {})
    if not isinstance(details, dict):
        raise ValueError(f"{where}.details must be a JSON object")
    return HardwareProfile(
        name=data["name"], device_type=data["device_type"], description=data["description"],
        peak_flops_per_s=peaks,
        memory_bandwidth_bytes_per_s=_check_number(f"{where}.memory_bandwidth_bytes_per_s",
                                                   data["memory_bandwidth_bytes_per_s"], 0, MAX_BANDWIDTH),
        memory_bytes=tuple(memory),
        power_watts=_check_number(f"{where}.power_watts", data["power_watts"], 0, MAX_POWER),
        op_overhead_s=_check_number(f"{where}.op_overhead_s", data["op_overhead_s"], 0, MAX_OVERHEAD,
                                    low_inclusive=True),
        efficiency=Efficiency.from_dict(data["efficiency"], f"{where}.efficiency"),
        sources=dict(sources), details=dict(details),
    )


def available_profiles(directory: Path = HARDWARE_DIR) -> list[str]:
    """Names of the shipped profiles (file stems in profiler/data/hardware)."""
    return sorted(p.stem for p in directory.glob("*.json"))


def load_profile(name_or_path: str | Path) -> HardwareProfile:
    """A shipped profile by name (`apple_m4_pro`) or any profile JSON file by path, validated."""
    path = Path(name_or_path)
    if not path.is_file():
        path = HARDWARE_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise ValueError(f"hardware profile {str(name_or_path)!r} is neither a file nor one of "
                         f"{available_profiles()}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    except OSError as err:
        raise ValueError(f"{path}: cannot be read ({err.strerror})") from err
    return profile_from_dict(data, where=path.name)


def save_profile(profile: HardwareProfile, path: str | Path) -> None:
    """Write `profile` as indented JSON, atomically (a reader never sees half a file). It is validated first,
    so what is written always loads."""
    data = profile.to_dict()
    profile_from_dict(data)
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    write_atomically(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
