"""`simulate` and `simulate_many`: NE and QPS of architectures after some days of training (seed 000).

`simulate_many` runs the formulas once on a packed array of any number of architectures; `simulate` is
`simulate_many` on one, so the two agree bit for bit. Noise: `simulate_many` draws a standard normal array z of
shape (N, 2) from `numpy.random.default_rng(seed)`; z[n, 0] perturbs architecture n's NE and z[n, 1] its QPS.
Generator draws fill arrays in order, so with `rng = default_rng(s)`, `simulate_many(archs, d, True, s)[n]` equals
the n-th of `[simulate(a, d, True, rng) for a in archs]`, and `simulate(a, d, True, s)` equals
`simulate_many([a], d, True, s)[0]`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator import formulas
from simulator.architecture import check_packed, pack, unpack
from simulator.config import DEFAULT_CONFIG, Architecture, SimulatorConfig

Seed = int | np.random.SeedSequence | np.random.Generator | None


@dataclass(frozen=True)
class SimulationResult:
    """One architecture's simulated NE (normalized entropy, lower is better) and QPS (queries per second)."""

    architecture: Architecture
    training_days: float
    training_sufficiency: float       # t = min(days / MAX_TRAINING_DAYS, 1)
    params: tuple[int, ...]           # per sub-architecture: the seed's "flops", which is a parameter count
    complexity_ne_raw: float
    complexity_qps_raw: float
    complexity_ne: float              # scaled with SMALL_NETWORK = 0 and LARGE_NETWORK = 1, clipped to [0, 1]
    complexity_qps: float
    complexity_ne_clipped: bool       # the scaled value fell outside [0, 1] and was clipped
    complexity_qps_clipped: bool
    ne_without_noise: float
    qps_without_noise: float
    noise_scale: float                # σ of the NE noise; the QPS noise has σ · qps_without_noise
    noise: bool                       # whether ne and qps carry noise
    ne: float
    qps: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data with these field names (a stable interface; tests pin the keys)."""
        data = dataclasses.asdict(self)
        data["architecture"] = [list(sub) for sub in self.architecture]
        data["params"] = list(self.params)
        return data


@dataclass(frozen=True)
class SimulationBatch:
    """`simulate_many`'s results: one array per `SimulationResult` field, first axis = architecture.

    `widths` is the packed architectures (N, MAX_SUBARCHES, DEPTH_RANGE[1]) and `params` (N, MAX_SUBARCHES), both
    0-padded; `batch[n]` is architecture n's `SimulationResult`.
    """

    widths: np.ndarray
    training_days: np.ndarray
    training_sufficiency: np.ndarray
    params: np.ndarray
    complexity_ne_raw: np.ndarray
    complexity_qps_raw: np.ndarray
    complexity_ne: np.ndarray
    complexity_qps: np.ndarray
    complexity_ne_clipped: np.ndarray
    complexity_qps_clipped: np.ndarray
    ne_without_noise: np.ndarray
    qps_without_noise: np.ndarray
    noise_scale: np.ndarray
    noise: bool
    ne: np.ndarray
    qps: np.ndarray

    def __len__(self) -> int:
        return self.widths.shape[0]

    def __getitem__(self, n: int) -> SimulationResult:
        values = {f.name: getattr(self, f.name)[n] for f in dataclasses.fields(self)
                  if f.name not in ("widths", "params", "noise")}
        scalars = {k: (bool(v) if v.dtype == bool else float(v)) for k, v in values.items()}
        arch = unpack(self.widths[n])
        return SimulationResult(architecture=arch, params=tuple(int(p) for p in self.params[n, :len(arch)]),
                                noise=self.noise, **scalars)

    def __iter__(self) -> Iterator[SimulationResult]:
        return (self[n] for n in range(len(self)))


def simulate(architecture: Any, training_days: float, noise: bool = False, seed: Seed = None,
             config: SimulatorConfig = DEFAULT_CONFIG) -> SimulationResult:
    """NE and QPS of one architecture (a list of sub-architectures, each a list of layer widths).

    `seed` seeds `numpy.random.default_rng` (an int, a SeedSequence, or a Generator to draw from); only used with
    `noise`. Same seed, same result. Raises ValueError for an invalid architecture or training_days.
    """
    _check_config(config)
    _check_days(training_days, "training_days")
    widths = pack([architecture], config, name="architecture", single=True)
    return _simulate_packed(widths, np.array([float(training_days)]), noise, seed, config)[0]


def simulate_many(architectures: list | tuple | np.ndarray, training_days: float | Sequence[float] | np.ndarray,
                  noise: bool = False, seed: Seed = None, config: SimulatorConfig = DEFAULT_CONFIG) -> SimulationBatch:
    """NE and QPS of many architectures at once: `simulate` on each, vectorised with numpy.

    `architectures`: a list of architectures, or an already packed integer array (see `architecture.pack`),
    which skips the per-architecture Python checks. `training_days`: one number for all, or one per architecture.
    Noise draws are laid out as the module docstring says.
    """
    _check_config(config)
    if isinstance(architectures, np.ndarray):
        widths = check_packed(architectures, config, name="architectures")
    else:
        widths = pack(architectures, config)
    days = np.asarray(training_days)
    if days.ndim == 0:
        _check_days(training_days, "training_days")
        days = np.full(len(widths), float(days))
    elif days.shape != (len(widths),) or days.dtype.kind not in "iuf":  # integers or floats, not bools
        raise ValueError(f"training_days must be one number or a list of {len(widths)} numbers (one per "
                         f"architecture); got an array of shape {days.shape} and dtype {days.dtype}")
    else:
        days = days.astype(np.float64)
        bad = ~np.isfinite(days) | (days < 0)
        if bad.any():
            n = int(np.argmax(bad))
            _check_days(float(days[n]), f"training_days[{n}]")
    return _simulate_packed(widths, days, noise, seed, config)


def _check_config(config: Any) -> None:
    if not isinstance(config, SimulatorConfig):
        raise ValueError(f"config must be a SimulatorConfig (DEFAULT_CONFIG, dataclasses.replace of it, or "
                         f"load_config(path)), got {type(config).__name__}")


def _check_days(days: Any, name: str) -> None:
    ok = isinstance(days, (int, float, np.integer, np.floating)) and not isinstance(days, (bool, np.bool_))
    if not ok or not math.isfinite(days) or days < 0:
        raise ValueError(f"{name}={days!r} must be a finite number of days >= 0 (t = min(days / MAX_TRAINING_DAYS, 1))")


def _simulate_packed(widths: np.ndarray, days: np.ndarray, noise: bool, seed: Seed,
                     config: SimulatorConfig) -> SimulationBatch:
    """The formulas on packed, checked architectures; a ValueError rather than a NaN or an infinity in any result
    (constants a config may hold, each finite, can still overflow the formulas)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # checked below: no non-finite result
        batch = _formulas(widths, days, noise, seed, config)
    for name in ("training_sufficiency", "complexity_ne_raw", "complexity_qps_raw", "complexity_ne", "complexity_qps",
                 "ne_without_noise", "qps_without_noise", "noise_scale", "ne", "qps"):
        values = getattr(batch, name)
        bad = ~np.isfinite(values)
        if bad.any():
            n = int(np.argmax(bad))
            raise ValueError(f"{name}={values[n]} for architecture {n}: the config's constants drive the formulas "
                             f"out of floating-point range")
    return batch


def _formulas(widths: np.ndarray, days: np.ndarray, noise: bool, seed: Seed, config: SimulatorConfig) -> SimulationBatch:
    refs = config.references
    params = formulas.tower_params(widths, config.INPUT_DIMENSIONS, config.OUTPUT_DIMENSIONS)
    raw_ne, raw_qps = formulas.raw_complexities(widths, params, refs.params_min, refs.params_max, config)
    c_ne, ne_clipped = formulas.scale(raw_ne, refs.small_ne, refs.large_ne)
    c_qps, qps_clipped = formulas.scale(raw_qps, refs.small_qps, refs.large_qps)
    t = formulas.training_sufficiency(days, config)
    ne = formulas.ne(c_ne, t, refs.medium_ne_scaled, config)
    qps = formulas.qps(c_qps, config)
    sigma = formulas.noise_scale(t, config)
    noisy_ne, noisy_qps = ne, qps
    if noise:
        z = np.random.default_rng(seed).standard_normal((len(widths), 2))
        noisy_ne = formulas.noisy_ne(ne, sigma, z[:, 0], config)
        noisy_qps = formulas.noisy_qps(qps, sigma, z[:, 1], config)
    return SimulationBatch(widths=widths, training_days=days, training_sufficiency=t, params=params,
                           complexity_ne_raw=raw_ne, complexity_qps_raw=raw_qps, complexity_ne=c_ne,
                           complexity_qps=c_qps, complexity_ne_clipped=ne_clipped, complexity_qps_clipped=qps_clipped,
                           ne_without_noise=ne, qps_without_noise=qps, noise_scale=sigma, noise=bool(noise),
                           ne=noisy_ne, qps=noisy_qps)
