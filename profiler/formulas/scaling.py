"""Compute-optimal model size for a training budget (Hoffmann et al. 2022, "Training Compute-Optimal Large
Language Models", arXiv:2203.15556), with training compute C = 6·N·D FLOPs."""

from __future__ import annotations

import math

# Hoffmann et al. 2022 §3.3, eq. 10 (Approach 3): L(N, D) = E + A/N^alpha + B/D^beta.
CHINCHILLA_FIT = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
# Approaches 1 and 2 (Table 3) give about 20 training tokens per parameter at the compute-optimal point.
TOKENS_PER_PARAM = 20


def budget_flops(budget_usd: float, usd_per_device_hour: float, peak_flops_per_s: float, mfu: float) -> float:
    """C = budget / price · 3600 s · peak FLOP/s · MFU (MFU: model FLOPs utilisation, Chowdhery et al. 2022 App. B)."""
    for name, value in (("training_budget", budget_usd), ("price_per_hour", usd_per_device_hour),
                        ("peak_tflops", peak_flops_per_s)):
        if not value > 0:
            raise ValueError(f"{name}={value!r} must be > 0")
    if not 0 < mfu <= 1:
        raise ValueError(f"mfu={mfu!r} must be in (0, 1]")
    return budget_usd / usd_per_device_hour * 3600 * peak_flops_per_s * mfu


def optimal_by_ratio(flops: float, tokens_per_param: float = TOKENS_PER_PARAM) -> tuple[float, float]:
    """N = sqrt(C / (6·r)), D = r·N for r tokens per parameter (C = 6ND)."""
    params = math.sqrt(flops / (6 * tokens_per_param))
    return params, tokens_per_param * params


def optimal_by_fit(flops: float) -> tuple[float, float]:
    """Minimise E + A/N^α + B/D^β subject to 6ND = C (Hoffmann et al. 2022 App. D.2):
    N = G·(C/6)^(β/(α+β)), D = (C/6)^(α/(α+β)) / G, G = (αA / (βB))^(1/(α+β))."""
    fit = CHINCHILLA_FIT
    alpha, beta = fit["alpha"], fit["beta"]
    g = (alpha * fit["A"] / (beta * fit["B"])) ** (1 / (alpha + beta))
    params = g * (flops / 6) ** (beta / (alpha + beta))
    return params, flops / (6 * params)
