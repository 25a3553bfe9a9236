"""Counted FLOPs of real modules: our dispatch-level counter (a registry of per-op formulas), fvcore and torch's
FlopCounterMode run over a training step (`counters`), and their figures filed under the formulas' components
(`attribution`).

Names are imported on first use (PEP 562): the counter imports torch, and `profiler.counting.attribution` must not.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FlopCounter": "profiler.counting.counter", "FlopCounts": "profiler.counting.counter",
    "count_training_step": "profiler.counting.counter", "exclusive_by_module": "profiler.counting.counter",
    "inclusive_by_module": "profiler.counting.counter", "OpCost": "profiler.counting.registry",
    "attention_flops": "profiler.counting.registry", "causal_pairs": "profiler.counting.registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'profiler.counting' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
