"""`FlopCounter`: counts the FLOPs of whatever runs inside it, op by op, at the aten dispatch level.

    with FlopCounter() as counter:
        loss = model(input_ids, labels=input_ids).loss
        loss.backward()
    counts = counter.counts
    counts.matmul("forward"), counts.matmul_causal("backward"), counts.other(), counts.by_module("forward")

(`count_training_step` does exactly this for any zoo or HF causal LM.)

Each op call is priced by `registry.classify` (conventions there), filed under its phase (backward when autograd's
engine is running it) and under a module, so the per-module figures add up to the totals. A forward op goes to the
innermost module that was running (`torch.utils.module_tracker`). A backward op goes to the module that was
innermost when the forward created the autograd node now being run: every node a forward call creates is tagged
with that module in its `metadata`. (The module tracker's own backward hooks misplace the backward of some modules,
e.g. GPT-2's Conv1D projections and MoE routers.) Ops the registry does not know are listed in `counts.unknown`.

Device independence: on the meta device PyTorch has no fused attention kernel and decomposes
`F.scaled_dot_product_attention` into bmm + softmax, whose causal figure cannot be recovered and whose backward
differs from the kernels' (4 products instead of 5). Inside the counter, attention on meta tensors is therefore
routed to the CPU flash kernel's op, which has meta implementations for forward and backward: the meta count is the
CPU count. On a real device the kernel PyTorch picks is counted as is.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.module_tracker import ModuleTracker

from profiler.counting.registry import OpCost, classify
from profiler.workload import PHASES as STEP_PHASES

log = logging.getLogger(__name__)

PHASES = STEP_PHASES[:2]  # forward and backward; the optimizer step is not counted
OUTSIDE_MODULES = "Global"  # ModuleTracker's name for code that runs outside every module
MODULE_KEY = "profiler.module"  # key of the forward module in an autograd node's metadata
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


def exclusive_by_module(inclusive: dict[str, dict[str, int]], root: str) -> dict[str, dict[str, int]]:
    """Undo `inclusive_by_module` for counters that report every module with its descendants' ops included
    (torch's FlopCounterMode, fvcore): module path -> op -> FLOPs of the ops that ran directly in it. A path's
    parent is its longest listed prefix (containers such as a ModuleList are never called, so not listed);
    top-level paths belong to `root` ("Global" for FlopCounterMode, "" for fvcore)."""
    exclusive = {path: Counter(ops) for path, ops in inclusive.items()}
    for path, ops in inclusive.items():
        if path != root:
            exclusive[_listed_parent(path, inclusive, root)].subtract(ops)
    return {path: {op: value for op, value in ops.items() if value} for path, ops in exclusive.items()}


def _listed_parent(path: str, listed: dict[str, Any], root: str) -> str:
    while "." in path:
        path = path.rsplit(".", 1)[0]
        if path in listed:
            return path
    return root


class _ForwardCalls(TorchFunctionMode):
    """Sees every torch call of the forward pass: routes attention on meta tensors, and tags new autograd nodes
    with the module running them (see module docstring)."""

    def __init__(self, innermost_module: Callable[[], str]) -> None:
        super().__init__()
        self._innermost_module = innermost_module

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = _meta_attention(args, kwargs) if func is F.scaled_dot_product_attention else None
        if out is None:
            out = func(*args, **kwargs)
        if torch.is_grad_enabled():
            _tag_new_nodes(out, self._innermost_module())
        return out


def _meta_attention(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """`F.scaled_dot_product_attention` on meta tensors through the CPU flash kernel's op (see module docstring), or
    None when the call is not on meta or the kernel cannot take it (dropout, unequal head counts without GQA). A
    boolean mask becomes the additive float mask that F.scaled_dot_product_attention itself builds on CPU."""
    call = {**dict(zip(_SDPA_ARGUMENTS, args)), **kwargs}
    query, key, mask = call["query"], call["key"], call.get("attn_mask")
    heads_match = query.shape[-3] == key.shape[-3] or call.get("enable_gqa", False)
    if query.device.type != "meta" or call.get("dropout_p", 0.0) or not heads_match:
        return None
    if mask is not None and mask.dtype == torch.bool:
        mask = torch.zeros((), dtype=query.dtype, device=mask.device).masked_fill(~mask, float("-inf"))
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        query, key, call["value"], 0.0, bool(call.get("is_causal", False)), attn_mask=mask, scale=call.get("scale")
    )[0]


def _tag_new_nodes(out: Any, module: str) -> None:
    """Tag the autograd nodes behind `out` that no earlier call tagged (the ones this call created) with `module`."""
    pending = [t.grad_fn for t in torch.utils._pytree.tree_leaves(out)
               if isinstance(t, torch.Tensor) and t.grad_fn is not None]
    while pending:
        node = pending.pop()
        if node is None or MODULE_KEY in node.metadata:
            continue
        node.metadata[MODULE_KEY] = module
        pending.extend(parent for parent, _ in node.next_functions)


class FlopCounter(TorchDispatchMode):
    """Context manager counting FLOPs by phase, module and op; results in `.counts` (a fresh one per `with`)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts = FlopCounts()
        self._tracker = ModuleTracker()
        self._forward_calls = _ForwardCalls(self._innermost_module)

    def __enter__(self) -> FlopCounter:
        self.counts = FlopCounts()
        self._tracker.__enter__()
        self._forward_calls.__enter__()
        super().__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        self._forward_calls.__exit__(*exc)
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
            backward = torch._C._current_graph_task_id() != -1
            module = self._backward_module() if backward else self._innermost_module()
            self.counts.tallies[("backward" if backward else "forward", module, str(func.overloadpacket))].add(cost)
        return out

    def _backward_module(self) -> str:
        """The forward module of the autograd node being run (OUTSIDE_MODULES for nodes made outside the counter)."""
        node = torch._C._current_autograd_node()
        return OUTSIDE_MODULES if node is None else node.metadata.get(MODULE_KEY, OUTSIDE_MODULES)

    def _innermost_module(self) -> str:
        active = [name for name in self._tracker.parents if name != OUTSIDE_MODULES]
        return max(active, key=lambda name: (name.count("."), len(name)), default=OUTSIDE_MODULES)


def count_training_step(model: torch.nn.Module, input_ids: torch.Tensor) -> FlopCounts:
    """Count forward (with the next-token loss, labels = input_ids) and backward of one step of `model`.

    Works for zoo models and HF causal LMs: both accept `labels` and return an object with `.loss`."""
    with FlopCounter() as counter:
        loss = model(input_ids, labels=input_ids).loss
        loss.backward()
    return counter.counts
