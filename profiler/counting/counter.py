"""`FlopCounter`: counts the FLOPs of whatever runs inside it, op by op, at the aten dispatch level.

    with FlopCounter() as counter:
        loss = model(input_ids, labels=input_ids).loss
        loss.backward()
    counts = counter.counts
    counts.matmul("forward"), counts.matmul_causal("backward"), counts.other(), counts.by_module("forward")

Each op call is priced by `registry.classify` (conventions there), filed under its phase (backward when autograd's
engine is running it) and under the innermost module that was running (`torch.utils.module_tracker`), so the
per-module figures add up to the totals. Ops the registry does not know are listed in `counts.unknown`.

Device independence: on the meta device PyTorch has no fused attention kernel and decomposes
`F.scaled_dot_product_attention` into bmm + softmax, whose causal figure cannot be recovered and whose backward
differs from the kernels' (4 products instead of 5). Inside the counter, attention on meta tensors is therefore
routed to the CPU flash kernel's op, which has meta implementations for forward and backward: the meta count is the
CPU count. On a real device the kernel PyTorch picks is counted as is.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.module_tracker import ModuleTracker

from profiler.counting.registry import OpCost, classify

log = logging.getLogger(__name__)

PHASES = ("forward", "backward")
OUTSIDE_MODULES = "Global"  # ModuleTracker's name for code that runs outside every module
_SDPA_ARGUMENTS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")


@dataclass
class Tally:
    """Summed costs of the calls of one op, in one phase and module."""

    calls: int = 0
    matmul: int = 0
    matmul_causal: int = 0
    other: int = 0
    causal_unknown_calls: int = 0

    def add(self, cost: OpCost) -> None:
        self.calls += 1
        self.matmul += cost.matmul
        self.matmul_causal += cost.causal
        self.other += cost.other
        self.causal_unknown_calls += not cost.causal_known


class FlopCounts:
    """What a `FlopCounter` saw: tallies keyed by (phase, module path, op name), and the unknown ops."""

    def __init__(self) -> None:
        self.tallies: dict[tuple[str, str, str], Tally] = defaultdict(Tally)
        self.unknown: Counter[str] = Counter()  # op name -> calls; their cost is not in any total

    def _select(self, phase: str | None) -> list[tuple[tuple[str, str, str], Tally]]:
        if phase is not None and phase not in PHASES:
            raise ValueError(f"phase={phase!r} is not one of {PHASES} (or None for both)")
        return [(key, tally) for key, tally in self.tallies.items() if phase is None or key[0] == phase]

    def matmul(self, phase: str | None = None) -> int:
        """Matmul-family and attention FLOPs, dense convention (all Sq×Sk attention scores)."""
        return sum(t.matmul for _, t in self._select(phase))

    def matmul_causal(self, phase: str | None = None) -> int | None:
        """Matmul FLOPs with attention counted on unmasked pairs only; None when a mask could not be read (meta)."""
        selected = self._select(phase)
        if any(t.causal_unknown_calls for _, t in selected):
            return None
        return sum(t.matmul_causal for _, t in selected)

    def other(self, phase: str | None = None) -> int:
        """Non-matmul FLOPs (pointwise, reductions, softmax, ...), per-element convention of `registry`."""
        return sum(t.other for _, t in self._select(phase))

    def by_module(self, phase: str | None = None, bucket: str = "matmul") -> dict[str, int]:
        """Module path -> FLOPs of the ops that ran directly in it (innermost module); sums to the bucket's total."""
        if bucket not in ("matmul", "matmul_causal", "other"):
            raise ValueError(f"bucket={bucket!r} is not one of ('matmul', 'matmul_causal', 'other')")
        totals: Counter[str] = Counter()
        for (_, module, _), tally in self._select(phase):
            totals[module] += getattr(tally, bucket)
        return dict(totals)

    def by_op(self, phase: str | None = None) -> dict[str, Tally]:
        """Op name -> its tally summed over modules."""
        totals: dict[str, Tally] = defaultdict(Tally)
        for (_, _, op), tally in self._select(phase):
            total = totals[op]
            for field in ("calls", "matmul", "matmul_causal", "other", "causal_unknown_calls"):
                setattr(total, field, getattr(total, field) + getattr(tally, field))
        return dict(totals)


def inclusive_by_module(exclusive: dict[str, int]) -> dict[str, int]:
    """Roll innermost-module figures up to every ancestor path ("a.b.c" also counts for "a.b" and "a")."""
    totals: Counter[str] = Counter()
    for path, flops in exclusive.items():
        parts = path.split(".")
        for depth in range(1, len(parts) + 1):
            totals[".".join(parts[:depth])] += flops
    return dict(totals)


class _MetaAttentionRouting(TorchFunctionMode):
    """Send `F.scaled_dot_product_attention` on meta tensors to the CPU flash kernel's op (see module docstring).
    A boolean mask becomes the additive float mask that F.scaled_dot_product_attention itself builds on CPU."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.scaled_dot_product_attention:
            return func(*args, **kwargs)
        call = {**dict(zip(_SDPA_ARGUMENTS, args)), **kwargs}
        query, key, mask = call["query"], call["key"], call.get("attn_mask")
        heads_match = query.shape[-3] == key.shape[-3] or call.get("enable_gqa", False)
        if query.device.type != "meta" or call.get("dropout_p", 0.0) or not heads_match:
            return func(*args, **kwargs)
        if mask is not None and mask.dtype == torch.bool:
            mask = torch.zeros((), dtype=query.dtype, device=mask.device).masked_fill(~mask, float("-inf"))
        return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            query, key, call["value"], 0.0, bool(call.get("is_causal", False)), attn_mask=mask, scale=call.get("scale")
        )[0]


class FlopCounter(TorchDispatchMode):
    """Context manager counting FLOPs by phase, module and op; results in `.counts` (a fresh one per `with`)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts = FlopCounts()
        self._tracker = ModuleTracker()
        self._routing = _MetaAttentionRouting()

    def __enter__(self) -> FlopCounter:
        self.counts = FlopCounts()
        self._tracker.__enter__()
        self._routing.__enter__()
        super().__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        self._routing.__exit__(*exc)
        self._tracker.__exit__(*exc)
        if self.counts.unknown:
            log.warning("ops without a FLOP formula (not counted): %s", dict(self.counts.unknown))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        cost = classify(func, args, kwargs, out)
        if cost is None:
            self.counts.unknown[str(func.overloadpacket)] += 1
        else:
            phase = "backward" if torch._C._current_graph_task_id() != -1 else "forward"
            self.counts.tallies[(phase, self._innermost_module(), str(func.overloadpacket))].add(cost)
        return out

    def _innermost_module(self) -> str:
        active = [name for name in self._tracker.parents if name != OUTSIDE_MODULES]
        return max(active, key=lambda name: (name.count("."), len(name)), default=OUTSIDE_MODULES)
