"""Seed 000's formulas as small numpy functions over packed architectures (see `architecture`).

Every function works on whole arrays, one row per architecture, so that `simulate_many` runs them once for any
number of architectures and `simulate` is the same computation on one row (hence bit-identical results).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from simulator.config import Curve, SimulatorConfig


def tower_params(widths: np.ndarray, input_dim: int, output_dim: int) -> np.ndarray:
    """Parameters of each sub-architecture as a dense tower input_dim → w_1 → … → w_d → output_dim (seed's "flops").

    params = Σ over the chain's layers of (prev · cur + cur): weights plus biases (seed 000, "Architecture to
    Parameters"). `widths` has shape (..., depth) with trailing zeros for missing layers; the result has shape
    (...), 0 for a sub-architecture with no layers. Exact int64.
    """
    present = widths != 0
    prev = np.concatenate([np.full(widths.shape[:-1] + (1,), input_dim, dtype=np.int64), widths[..., :-1]], axis=-1)
    last = present & ~np.concatenate([present[..., 1:], np.zeros_like(present[..., :1])], axis=-1)
    # a missing layer has cur = 0 and adds nothing; `last` marks the layer that feeds the output layer
    return (prev * widths + widths + last * (widths * output_dim + output_dim)).sum(axis=-1)


def params_range(config: SimulatorConfig) -> tuple[int, int]:
    """The fewest and most parameters a sub-architecture can have: [FLAX_MIN] * DEPTH_MIN and [FLAX_MAX] * DEPTH_MAX.

    Parameters grow with every width and with depth (each extra layer adds w·w + w > 0 at equal widths), so these
    are the extremes; by default flops([64]) = 33,482 and flops([2048] * 5) = 17,856,522.
    """
    (d_lo, d_hi), (w_lo, w_hi) = config.DEPTH_RANGE, config.FLAX_RANGE
    ends = np.zeros((2, d_hi), dtype=np.int64)
    ends[0, :d_lo], ends[1, :] = w_lo, w_hi
    low, high = tower_params(ends, config.INPUT_DIMENSIONS, config.OUTPUT_DIMENSIONS)
    return int(low), int(high)


def raw_complexities(widths: np.ndarray, params: np.ndarray, params_min: int, params_max: int,
                     config: SimulatorConfig) -> tuple[np.ndarray, np.ndarray]:
    """Raw complexity_ne and complexity_qps of packed architectures with `params` = tower_params(widths), shape (N,).

    complexity_ne  = Σ_i λ_ne_i · (Δ_flops_i · λ_flops_i + Δ_flax_i · λ_flax_i + Δ_depth_i · λ_depth_i)
    complexity_qps = Σ_i λ_qps_i · Δ_flops_i
    with Δ_flops = (params − params_min) / (params_max − params_min) (see `params_range`), Δ_flax = (min width −
    FLAX_MIN) / (FLAX_MAX − FLAX_MIN), Δ_depth = (depth − DEPTH_MIN) / (DEPTH_MAX − DEPTH_MIN), summed over the
    present sub-architectures i, λ from NETWORK_MODIFIERS row i (seed 000, "Function Definitions"; issue 6's
    reading).
    """
    (d_lo, d_hi), (w_lo, w_hi) = config.DEPTH_RANGE, config.FLAX_RANGE
    present = widths != 0
    depth = present.sum(axis=-1)
    delta_flops = (params - params_min) / (params_max - params_min)
    delta_flax = (np.where(present, widths, w_hi).min(axis=-1) - w_lo) / (w_hi - w_lo)
    delta_depth = (depth - d_lo) / (d_hi - d_lo)
    lam = np.array([[row.ne, row.qps, row.flops, row.flax, row.depth] for row in config.NETWORK_MODIFIERS])
    ne_terms = np.where(depth > 0, lam[:, 0] * (delta_flops * lam[:, 2] + delta_flax * lam[:, 3]
                                                + delta_depth * lam[:, 4]), 0.0)
    qps_terms = np.where(depth > 0, lam[:, 1] * delta_flops, 0.0)
    ne, qps = ne_terms[:, 0], qps_terms[:, 0]
    for i in range(1, lam.shape[0]):  # left to right, as written: the same bits for any N
        ne, qps = ne + ne_terms[:, i], qps + qps_terms[:, i]
    return ne, qps


def scale(raw: np.ndarray, small: float, large: float) -> tuple[np.ndarray, np.ndarray]:
    """(raw − raw(SMALL)) / (raw(LARGE) − raw(SMALL)) clipped to [0, 1], and whether it was clipped."""
    scaled = (raw - small) / (large - small)
    return np.clip(scaled, 0.0, 1.0), (scaled < 0.0) | (scaled > 1.0)


def qps(scaled_qps: np.ndarray, config: SimulatorConfig) -> np.ndarray:
    """QPS = MACHINE_EFFICIENCY / (QPS_MODEL_MIN_FLOPS + c · (QPS_MODEL_MAX_FLOPS − QPS_MODEL_MIN_FLOPS)).

    Operations per second over operations per query; defaults give 50,000 at c = 0 and 500 at c = 1.
    """
    lo, hi = config.QPS_MODEL_MIN_FLOPS, config.QPS_MODEL_MAX_FLOPS
    return config.MACHINE_EFFICIENCY / (lo + scaled_qps * (hi - lo))


def training_sufficiency(days: np.ndarray, config: SimulatorConfig) -> np.ndarray:
    """t = min(training_days / MAX_TRAINING_DAYS, 1)."""
    return np.minimum(days / config.MAX_TRAINING_DAYS, 1.0)


def curve(t: np.ndarray, c: Curve) -> np.ndarray:
    """c.start − c.drop / (1 + exp(−c.steepness · (t − c.midpoint))): NE falling from about start to start − drop."""
    with np.errstate(over="ignore"):  # exp overflowing to inf gives the right limit, start
        return c.start - c.drop / (1.0 + np.exp(-c.steepness * (t - c.midpoint)))


def lerp(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """a + w · (b − a): a at w = 0, b at w = 1."""
    return a + w * (b - a)


def ne(scaled_ne: np.ndarray, t: np.ndarray, medium: float, config: SimulatorConfig) -> np.ndarray:
    """NE: between the small and medium curves for c <= c_m, between medium and large above (c_m = `medium`).

    NE = lerp(small(t), medium(t), c / c_m) if c <= c_m else lerp(medium(t), large(t), (c − c_m) / (1 − c_m)).
    """
    small, mid, large = (curve(t, config.NE_CURVES[k]) for k in ("small", "medium", "large"))
    lower = scaled_ne <= medium
    return np.where(lower, lerp(small, mid, scaled_ne / medium), lerp(mid, large, (scaled_ne - medium) / (1 - medium)))


def noise_scale(t: np.ndarray, config: SimulatorConfig) -> np.ndarray:
    """current_noise_scale = GLOBAL_NOISE_SCALE · (NOISE_TRAINING_FACTOR_MIN + NOISE_TRAINING_FACTOR_MAX · (1 − t))."""
    factor = config.NOISE_TRAINING_FACTOR_MIN + config.NOISE_TRAINING_FACTOR_MAX * (1.0 - t)
    return config.GLOBAL_NOISE_SCALE * factor


def noisy_ne(ne_value: np.ndarray, sigma: np.ndarray, z: np.ndarray, config: SimulatorConfig) -> np.ndarray:
    """clip(NE + N(0, σ), MIN_PERFORMANCE, MAX_PERFORMANCE) with N(0, σ) = σ · z, z standard normal (σ a std)."""
    return np.clip(ne_value + sigma * z, config.MIN_PERFORMANCE, config.MAX_PERFORMANCE)


def noisy_qps(qps_value: np.ndarray, sigma: np.ndarray, z: np.ndarray, config: SimulatorConfig) -> np.ndarray:
    """max(QPS + N(0, QPS · σ), MIN_QPS) with N(0, QPS · σ) = (QPS · σ) · z."""
    return np.maximum(qps_value + (qps_value * sigma) * z, config.MIN_QPS)
