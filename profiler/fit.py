"""Does it fit? The largest training micro-batch, the longest generation context and the largest decoding batch
whose predicted peak (`profiler.formulas.memory`'s timelines) stays within a memory budget.

Every answer is found by bisection on a peak that grows with the searched size (batch or context), so it is the
exact largest integer under the budget for the formulas; the margin is the budget minus that peak. The formulas
count live tensors: an allocator's own slack (CUDA's cached blocks, fragmentation) and what else shares the device
(the operating system and other programs on unified memory) come out of the margin.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from complexity.inputs import require_int
from profiler.arch import ArchSpec
from profiler.formulas import memory as M
from profiler.formulas.flops import RECOMPUTE

MAX_SEARCH = 2**24  # tokens or sequences: beyond any real workload
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_bytes(text: str) -> int:
    """A memory size such as "48GiB", "80 GB" or "1073741824": decimal units (GB = 10⁹ bytes) or binary ones
    (GiB = 2³⁰ bytes); ValueError naming the value and the units allowed."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", text or "")
    unit = match.group(2).upper() if match else ""
    if not match or unit not in _UNITS or float(match.group(1)) <= 0:
        raise ValueError(f"memory={text!r} must be a positive size such as 48GiB or 80GB (units: B, KB, MB, GB, TB, "
                         "KiB, MiB, GiB, TiB)")
    return int(float(match.group(1)) * _UNITS[unit])


def largest(peak: Callable[[int], int], budget: int, upper: int) -> int:
    """The largest n in [1, upper] with peak(n) <= budget, for a peak that never falls as n grows; 0 when even
    n = 1 does not fit."""
    if peak(1) > budget:
        return 0
    low, high = 1, upper
    while low < high:
        mid = (low + high + 1) // 2
        if peak(mid) <= budget:
            low = mid
        else:
            high = mid - 1
    return low


def _answer(size: int, timeline: Callable[[int], dict[str, int]], budget: int) -> dict[str, Any]:
    """The size found, its peak, the phase that sets it and the margin left; for a size of 0 (nothing fits) the
    peak and the (negative) margin of the smallest size, 1: how far it is from fitting."""
    phases = timeline(max(size, 1))
    peak = max(phases.values())
    return {"value": size, "peak_bytes": peak, "phase": max(phases, key=phases.get), "margin_bytes": budget - peak}


def fit(arch: ArchSpec, budget: int, seq_len: int = 2048, dtype: str = "bfloat16", optimizer: str = "adamw",
        device: str = "cuda", new_tokens: int = 256, decode_context: int | None = None,
        autocast: str | None = None) -> dict[str, Any]:
    """What fits in `budget` bytes (the `python -m profiler fit` document):

    * training: for each recompute option, the largest micro-batch of `seq_len` tokens (`training_timeline`,
      under `autocast` when given);
    * longest_context: the longest prompt that one sequence can take and still generate `new_tokens` tokens
      (`generate_timeline`), at most the model's max_position_embeddings − new_tokens;
    * decode_batch: the largest batch generating `new_tokens` tokens after prompts of `decode_context` tokens
      (default seq_len).
    """
    require_int("budget", budget, 1)
    require_int("seq_len", seq_len, 1)
    require_int("new_tokens", new_tokens, 1)
    decode_context = seq_len if decode_context is None else require_int("decode_context", decode_context, 1)
    training = {}
    for recompute in RECOMPUTE:
        def phases(batch: int, recompute: str = recompute) -> dict[str, int]:
            return M.training_timeline(arch, batch, seq_len, dtype, optimizer, recompute, device=device,
                                       autocast=autocast)

        training[recompute] = _answer(largest(lambda b: max(phases(b).values()), budget, MAX_SEARCH), phases, budget)

    context_limit = max(arch.max_position_embeddings - new_tokens, 0)

    def prompt(context: int) -> dict[str, int]:
        return M.generate_timeline(arch, 1, context, new_tokens, dtype)

    def decode(batch: int) -> dict[str, int]:
        return M.generate_timeline(arch, batch, decode_context, new_tokens, dtype)

    longest = largest(lambda c: max(prompt(c).values()), budget, context_limit) if context_limit else 0
    return {
        "model": arch.name, "budget_bytes": budget,
        "workload": {"seq_len": seq_len, "dtype": dtype, "optimizer": optimizer, "device": device,
                     "new_tokens": new_tokens, "decode_context": decode_context, "autocast": autocast},
        "training": training,
        "longest_context": {**_answer(longest, prompt, budget), "limit": context_limit,
                            "limited_by": "max_position_embeddings" if longest == context_limit else "memory"},
        "decode_batch": _answer(largest(lambda b: max(decode(b).values()), budget, MAX_SEARCH), decode, budget),
        "assumptions": [
            "Peaks are live tensor bytes from profiler.formulas.memory (training: the largest phase of one "
            "optimizer step with --device's default optimizer; generation: prefill or the last decoding step, "
            "logits of the last position only).",
            "The budget is all the device's memory the model may use: allocator slack, the framework's own "
            "workspace and, on unified memory, the operating system come out of the margin.",
        ],
    }


def peaks_by_batch(arch: ArchSpec, seq_len: int, dtype: str, optimizer: str, device: str,
                   batches: list[int], autocast: str | None = None) -> dict[str, list[int]]:
    """Each training phase's bytes (recompute none) at each micro-batch: the curves `fit`'s plot draws, under the
    same `autocast` as the fit itself."""
    timelines = [M.training_timeline(arch, b, seq_len, dtype, optimizer, device=device, autocast=autocast)
                 for b in batches]
    return {phase: [t[phase] for t in timelines] for phase in M.TRAINING_PHASES}
