"""The simulator's constants: one frozen, validated `SimulatorConfig`; `DEFAULT_CONFIG` holds seed 000's values.

Field names are the seed's constant names (seeds/000, "Configuration Constants"), so a JSON config file reads like
the seed. `NE_CURVES` is ours: the seed writes the three NE curves' numbers into the formulas without naming them.
Override a field with `dataclasses.replace(DEFAULT_CONFIG, MAX_TRAINING_DAYS=30)` or a JSON file
(`load_config`); either way the whole config is validated again, reference networks included.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from complexity.inputs import is_int, is_real, require_int
from simulator import architecture, formulas

MODIFIER_KEYS = ("ne", "qps", "flops", "flax", "depth")
CURVE_NAMES = ("small", "medium", "large")
CURVE_KEYS = ("start", "drop", "steepness", "midpoint")

Architecture = tuple[tuple[int, ...], ...]  # sub-architectures, each a tuple of layer widths
# Largest width (FLAX_RANGE, INPUT_DIMENSIONS, OUTPUT_DIMENSIONS) and depth (DEPTH_RANGE) a config may set: the
# parameter count of MAX_DEPTH layers of MAX_WIDTH x MAX_WIDTH weights, 5 sub-architectures, stays within int64.
MAX_WIDTH = 2**20
MAX_DEPTH = 1000


@dataclass(frozen=True)
class Modifiers:
    """One row of NETWORK_MODIFIERS: the weights λ_ne, λ_qps, λ_flops, λ_flax, λ_depth of one sub-architecture."""

    ne: float
    qps: float
    flops: float
    flax: float
    depth: float


@dataclass(frozen=True)
class Curve:
    """A falling logistic NE curve: curve(t) = start − drop / (1 + exp(−steepness · (t − midpoint)))."""

    start: float
    drop: float
    steepness: float
    midpoint: float


@dataclass(frozen=True)
class References:
    """The ends of the simulator's scales, derived from a config once: the fewest and most parameters a
    sub-architecture can have (Δ_flops 0 and 1) and the raw complexities of the reference networks (SMALL → 0,
    LARGE → 1)."""

    params_min: int
    params_max: int
    small_ne: float
    medium_ne: float
    large_ne: float
    small_qps: float
    large_qps: float

    @property
    def medium_ne_scaled(self) -> float:
        """c_m: MEDIUM_NETWORK's scaled NE complexity, where the NE interpolation changes from small–medium to medium–large."""
        return (self.medium_ne - self.small_ne) / (self.large_ne - self.small_ne)


# ----------------------------------------------------------------------------------------------- validation
def _check_real(name: str, value: Any, lower: float | None = None, lower_open: bool = False,
                lower_name: str | None = None) -> None:
    """A finite number (bool is not one), optionally above `lower` (strictly when `lower_open`)."""
    if lower is None:
        bound = ""
    else:
        bound = f" {'>' if lower_open else '>='} " + (f"{lower_name}={lower:g}" if lower_name else f"{lower:g}")
    too_low = lower is not None and is_real(value) and (value <= lower if lower_open else value < lower)
    if not is_real(value) or too_low:
        raise ValueError(f"{name}={value!r} must be a finite number{bound}")


def _int_range(name: str, value: Any, most: int) -> tuple[int, int]:
    """[low, high] with 1 <= low < high <= most, both integers (a range of one value would make its Δ a 0/0)."""
    ok = (isinstance(value, (list, tuple)) and len(value) == 2
          and all(is_int(v) for v in value) and 1 <= value[0] < value[1] <= most)
    if not ok:
        raise ValueError(f"{name}={value!r} must be [low, high], integers with 1 <= low < high <= {most}")
    return (value[0], value[1])


def _modifiers(rows: Any) -> tuple[Modifiers, ...]:
    """NETWORK_MODIFIERS: a non-empty list of rows, each Modifiers or {ne, qps, flops, flax, depth}, every λ >= 0."""
    if not isinstance(rows, (list, tuple)) or not rows:
        raise ValueError(f"NETWORK_MODIFIERS must be a non-empty list of rows {{{', '.join(MODIFIER_KEYS)}}}, "
                         f"row i weighting sub-architecture i; got {rows!r}")
    return tuple(_row(f"NETWORK_MODIFIERS[{i}]", row, Modifiers, MODIFIER_KEYS, nonnegative=True)
                 for i, row in enumerate(rows))


def _curves(curves: Any) -> Mapping[str, Curve]:
    """NE_CURVES: {small, medium, large}, each a Curve or {start, drop, steepness, midpoint}; read-only."""
    if not isinstance(curves, Mapping) or set(curves) != set(CURVE_NAMES):
        raise ValueError(f"NE_CURVES must be an object with exactly the keys {', '.join(CURVE_NAMES)}; got {curves!r}")
    return MappingProxyType({name: _row(f"NE_CURVES.{name}", curves[name], Curve, CURVE_KEYS) for name in CURVE_NAMES})


def _row(name: str, row: Any, cls: type, keys: tuple[str, ...], nonnegative: bool = False) -> Any:
    if isinstance(row, cls):
        row = dataclasses.asdict(row)
    if not isinstance(row, Mapping) or set(row) != set(keys):
        raise ValueError(f"{name} must be an object with exactly the keys {', '.join(keys)}; got {row!r}")
    for key in keys:
        _check_real(f"{name}.{key}", row[key], lower=0.0 if nonnegative else None)
    return cls(**{key: float(row[key]) for key in keys})


def _references(config: SimulatorConfig) -> References:
    """The scales' ends; the NE scale needs SMALL < MEDIUM < LARGE, the QPS scale SMALL < LARGE (raw complexities)."""
    params_min, params_max = formulas.params_range(config)
    widths = architecture.pack([config.SMALL_NETWORK, config.MEDIUM_NETWORK, config.LARGE_NETWORK], config)
    params = formulas.tower_params(widths, config.INPUT_DIMENSIONS, config.OUTPUT_DIMENSIONS)
    ne, qps = formulas.raw_complexities(widths, params, params_min, params_max, config)
    refs = References(params_min=params_min, params_max=params_max, small_ne=float(ne[0]), medium_ne=float(ne[1]),
                      large_ne=float(ne[2]), small_qps=float(qps[0]), large_qps=float(qps[2]))
    if not refs.small_ne < refs.medium_ne < refs.large_ne:
        raise ValueError(f"raw complexity_ne of SMALL_NETWORK, MEDIUM_NETWORK, LARGE_NETWORK must increase strictly "
                         f"(the NE scale runs from SMALL = 0 through MEDIUM to LARGE = 1); got "
                         f"{refs.small_ne:.6g}, {refs.medium_ne:.6g}, {refs.large_ne:.6g}")
    if not refs.small_qps < refs.large_qps:
        raise ValueError(f"raw complexity_qps of SMALL_NETWORK must be below LARGE_NETWORK's (SMALL = 0, LARGE = 1); "
                         f"got {refs.small_qps:.6g} and {refs.large_qps:.6g}")
    return refs


@dataclass(frozen=True)
class SimulatorConfig:
    """Every constant of seed 000. Units: days, vector dimensions, operations per second, queries per second."""

    MAX_TRAINING_DAYS: float = 60.0           # training days at which training sufficiency t reaches 1
    INPUT_DIMENSIONS: int = 512               # width entering every sub-architecture
    OUTPUT_DIMENSIONS: int = 10               # width leaving every sub-architecture
    MACHINE_EFFICIENCY: float = 2.5e12        # operations per second
    MIN_QPS: float = 500.0                    # floor of the noisy QPS, queries per second
    QPS_MODEL_MIN_FLOPS: float = 5e7          # operations per query at scaled complexity_qps = 0
    QPS_MODEL_MAX_FLOPS: float = 5e9          # operations per query at scaled complexity_qps = 1
    DEPTH_RANGE: tuple[int, int] = (1, 5)     # layers per sub-architecture, inclusive
    FLAX_RANGE: tuple[int, int] = (64, 2048)  # width of every layer, inclusive
    MIN_SUBARCHES: int = 1                    # the maximum is len(NETWORK_MODIFIERS)
    SMALL_NETWORK: Architecture = ((64,),)
    MEDIUM_NETWORK: Architecture = ((64, 64), (512, 512), (1024, 1024), (1024, 1024), (1024, 1024))
    LARGE_NETWORK: Architecture = ((2048, 2048),) * 5
    GLOBAL_NOISE_SCALE: float = 0.02
    NOISE_TRAINING_FACTOR_MIN: float = 0.01
    NOISE_TRAINING_FACTOR_MAX: float = 0.7
    MIN_PERFORMANCE: float = 0.0              # NE bounds of the noisy NE
    MAX_PERFORMANCE: float = 1.0
    NETWORK_MODIFIERS: tuple[Modifiers, ...] = (
        Modifiers(ne=0.2, qps=0.2, flops=1.0, flax=0.1, depth=0.1),
        Modifiers(ne=0.4, qps=0.2, flops=0.7, flax=0.0, depth=0.05),
        Modifiers(ne=0.1, qps=0.1, flops=0.6, flax=0.4, depth=0.05),
        Modifiers(ne=0.2, qps=0.4, flops=0.7, flax=0.3, depth=0.05),
        Modifiers(ne=0.1, qps=0.1, flops=0.9, flax=0.1, depth=0.1),
    )
    NE_CURVES: Mapping[str, Curve] = field(default_factory=lambda: {
        "small": Curve(start=0.62, drop=0.04, steepness=10.0, midpoint=0.2),
        "medium": Curve(start=0.65, drop=0.16, steepness=8.0, midpoint=0.3),
        "large": Curve(start=0.68, drop=0.20, steepness=8.0, midpoint=0.3),
    })
    references: References = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("INPUT_DIMENSIONS", "OUTPUT_DIMENSIONS"):
            require_int(name, getattr(self, name), 1, MAX_WIDTH)
        for name in ("MAX_TRAINING_DAYS", "MACHINE_EFFICIENCY", "QPS_MODEL_MIN_FLOPS"):
            _check_real(name, getattr(self, name), lower=0.0, lower_open=True)
        _check_real("QPS_MODEL_MAX_FLOPS", self.QPS_MODEL_MAX_FLOPS, lower=self.QPS_MODEL_MIN_FLOPS,
                    lower_open=True, lower_name="QPS_MODEL_MIN_FLOPS")
        for name in ("MIN_QPS", "GLOBAL_NOISE_SCALE", "NOISE_TRAINING_FACTOR_MIN", "NOISE_TRAINING_FACTOR_MAX"):
            _check_real(name, getattr(self, name), lower=0.0)
        _check_real("MIN_PERFORMANCE", self.MIN_PERFORMANCE)
        _check_real("MAX_PERFORMANCE", self.MAX_PERFORMANCE, lower=self.MIN_PERFORMANCE, lower_open=True,
                    lower_name="MIN_PERFORMANCE")
        for name, most in (("DEPTH_RANGE", MAX_DEPTH), ("FLAX_RANGE", MAX_WIDTH)):
            object.__setattr__(self, name, _int_range(name, getattr(self, name), most))
        object.__setattr__(self, "NETWORK_MODIFIERS", _modifiers(self.NETWORK_MODIFIERS))
        rows = len(self.NETWORK_MODIFIERS)
        require_int("MIN_SUBARCHES", self.MIN_SUBARCHES, 1, rows, note=f"len(NETWORK_MODIFIERS) = {rows}")
        object.__setattr__(self, "NE_CURVES", _curves(self.NE_CURVES))
        for name in ("SMALL_NETWORK", "MEDIUM_NETWORK", "LARGE_NETWORK"):
            object.__setattr__(self, name, architecture.normalize(getattr(self, name), self, name))
        object.__setattr__(self, "references", _references(self))

    @property
    def MAX_SUBARCHES(self) -> int:  # noqa: N802 - named like the seed's constants it follows from
        """One sub-architecture per NETWORK_MODIFIERS row (5 by default); the seed implies it, never names it."""
        return len(self.NETWORK_MODIFIERS)

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready data, in the form `config_from_dict` reads back."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        data["NETWORK_MODIFIERS"] = [dataclasses.asdict(row) for row in self.NETWORK_MODIFIERS]
        data["NE_CURVES"] = {name: dataclasses.asdict(curve) for name, curve in self.NE_CURVES.items()}
        for name in ("DEPTH_RANGE", "FLAX_RANGE", "SMALL_NETWORK", "MEDIUM_NETWORK", "LARGE_NETWORK"):
            data[name] = json.loads(json.dumps(data[name]))  # tuples become lists
        return data


DEFAULT_CONFIG = SimulatorConfig()


def config_from_dict(data: Any, base: SimulatorConfig = DEFAULT_CONFIG) -> SimulatorConfig:
    """`base` with the fields named in `data` replaced (a partial override is fine); unknown keys are an error."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a simulator config must be a JSON object of constants, got {type(data).__name__}")
    known = [f.name for f in dataclasses.fields(SimulatorConfig) if f.init]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown simulator config key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return dataclasses.replace(base, **data)


def load_config(path: str | os.PathLike, base: SimulatorConfig = DEFAULT_CONFIG) -> SimulatorConfig:
    """Read a JSON object of constants from `path` and apply it over `base` (see `config_from_dict`)."""
    where = f"config file {os.fspath(path)!r}"
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f, parse_constant=_reject_constant)
    except OSError as err:
        raise ValueError(f"{where}: cannot be read ({err.strerror})") from err
    except UnicodeDecodeError as err:
        raise ValueError(f"{where}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    except (ValueError, RecursionError) as err:  # JSONDecodeError is a ValueError; RecursionError: nested too deep
        raise ValueError(f"{where}: malformed JSON ({err})") from err
    try:
        return config_from_dict(data, base)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from err


def _reject_constant(name: str) -> None:
    """json's hook for NaN, Infinity and -Infinity, which are not JSON: a constant must be a finite number."""
    raise ValueError(f"{name} is not a JSON number")
