"""The three FLOP counters run over one training step of a real module, each reduced to a `CounterResult`: matmul
FLOPs by the formulas' components (`attribution.FLOP_COMPONENTS`), what the counter could not see, and which
attention kernel its figures imply.

* `count_ours`: our dispatch-level `FlopCounter`, both phases by component, causal figures where masks can be read;
* `count_flop_counter_mode`: torch.utils.flop_counter.FlopCounterMode (forward by module, backward in total);
* `count_fvcore`: fvcore with our handles, forward only (`fvcore_adapter`, an optional dependency).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from profiler.counting.attribution import by_component, components_of
from profiler.counting.counter import count_training_step, exclusive_by_module


@dataclass
class RealModel:
    """A module to count, its inputs, and the architecture the formulas should describe for it."""

    arch: Any  # profiler.arch.ArchSpec
    module: Any  # torch.nn.Module that runs the training step
    param_module: Any  # torch.nn.Module whose parameters are counted (the zoo's routed model; else `module`)
    input_ids: Any  # torch.Tensor [batch, seq_len]
    device: str
    notes: list[str] = field(default_factory=list)



@dataclass
class CounterResult:
    """One counter's matmul FLOPs by `FLOP_COMPONENTS`; backward None when only its total is known."""

    forward: dict[str, int]
    backward: dict[str, int] | None
    backward_total: int | None
    attention_kernel: str | None  # the kernel whose backward formula applies; None: no attention backward compared
    gaps: dict[str, str] = field(default_factory=dict)  # component -> why the counter misses it
    unknown_ops: dict[str, int] = field(default_factory=dict)
    forward_ops: frozenset[str] = frozenset()  # op names seen in the forward
    causal_attention: dict[str, int | None] = field(default_factory=dict)  # phase -> attention core, causal


def count_ours(real: RealModel) -> CounterResult:
    """Our FlopCounter over one training step: both phases by component, the causal attention core where the
    masks could be read, and the attention kernel that ran (fused when an SDPA kernel op was seen, else math)."""
    counts = count_training_step(real.module, real.input_ids)
    fused = any("scaled_dot_product" in op for op in counts.by_op("forward"))
    backward = by_component(counts, "backward")
    causal = {phase: None if counts.matmul_causal(phase) is None
              else by_component(counts, phase, "matmul_causal")["attention_core"] for phase in ("forward", "backward")}
    return CounterResult(by_component(counts, "forward"), backward, sum(backward.values()),
                         "fused" if fused else "math", unknown_ops=dict(counts.unknown),
                         forward_ops=frozenset(counts.by_op("forward")), causal_attention=causal)


def count_flop_counter_mode(real: RealModel, grouped_mm: bool) -> CounterResult:
    """torch.utils.flop_counter.FlopCounterMode, forward and backward in separate modes (it has no phases).
    `grouped_mm`: the experts run through torch._grouped_mm (as our counter saw), which this counter misses."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as forward_mode:
        loss = real.module(real.input_ids, labels=real.input_ids).loss
    with FlopCounterMode(display=False) as backward_mode:
        loss.backward()
    exclusive = exclusive_by_module(forward_mode.get_flop_counts(), root="Global")
    forward = components_of((path, str(op), value) for path, ops in exclusive.items() for op, value in ops.items())
    seen = {str(op) for ops in exclusive.values() for op in ops}
    gaps = {}
    if not forward["attention_core"]:
        gaps["attention_core"] = ("FlopCounterMode has no formula for the CPU flash attention kernel "
                                  "(aten._scaled_dot_product_flash_attention_for_cpu) and counts it as 0")
    if grouped_mm:
        gaps["mlp"] = "FlopCounterMode has no formula for torch._grouped_mm (the MoE experts) and counts it as 0"
    kernel = None if "attention_core" in gaps else ("fused" if any("scaled_dot_product" in op for op in seen)
                                                    else "math")
    return CounterResult(forward, None, int(backward_mode.get_total_flops()), kernel, gaps)


def count_fvcore(real: RealModel) -> CounterResult:
    """fvcore with our handles over the forward pass (jit.trace), by component; its unsupported ops listed."""
    from profiler.counting.fvcore_adapter import fvcore_counts  # fvcore is optional (the dev extra)

    counts = fvcore_counts(real.module, (real.input_ids,))
    forward = components_of((path, op, value) for path, ops in counts.matmul_by_module.items()
                            for op, value in ops.items())
    return CounterResult(forward, None, None, None, unknown_ops=dict(counts.unsupported))
