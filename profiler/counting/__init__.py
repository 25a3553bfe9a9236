"""Counted FLOPs of real modules: our dispatch-level counter (registry of per-op formulas) and an fvcore adapter."""

from profiler.counting.counter import FlopCounter, FlopCounts, exclusive_by_module, inclusive_by_module
from profiler.counting.registry import OpCost, attention_flops, causal_pairs

__all__ = ["FlopCounter", "FlopCounts", "OpCost", "attention_flops", "causal_pairs", "exclusive_by_module",
           "inclusive_by_module"]
