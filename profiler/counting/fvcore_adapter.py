"""fvcore's `FlopCountAnalysis` with our handles, its MACs converted to FLOPs at this boundary.

fvcore traces the forward pass with `torch.jit.trace` and prices each traced op with a handle. Its own handles
(linear, matmul, mm, bmm, addmm, einsum, convolution) return multiply-accumulates (MACs) — fvcore calls them
"flops" — and it skips `aten::scaled_dot_product_attention` as unsupported. This adapter registers:

* an SDPA handle (dense convention: 2 products of Sq·Sk·d MACs per query head, GQA-aware) and a `_grouped_mm`
  handle, both in MACs like fvcore's matmul handles;
* handles for the non-matmul ops the zoo and HF decoders trace to, in FLOPs with `registry`'s per-element
  convention (1 per output element for pointwise ops, 1 per input element for reductions, 4 per element for
  softmax);
* the ops that do no arithmetic as ignored.

`fvcore_counts` then splits fvcore's per-operator totals into the matmul bucket (MACs × FLOPS_PER_MAC) and the
other bucket, and reports every op fvcore still could not price. fvcore sees the forward pass only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape

from profiler.counting.counter import exclusive_by_module

FLOPS_PER_MAC = 2  # one multiply-accumulate = one multiply + one add

# Traced op names (fvcore strips "aten::" in by_operator) whose handles count MACs.
MAC_OPERATORS = frozenset({"linear", "matmul", "mm", "bmm", "addmm", "einsum", "_convolution",
                           "scaled_dot_product_attention", "_grouped_mm"})

_POINTWISE = ("add", "sub", "mul", "div", "neg", "pow", "rsqrt", "sqrt", "exp", "silu", "gelu", "tanh", "sigmoid",
              "relu", "cos", "sin", "reciprocal", "outer", "add_", "mul_", "div_", "square", "abs",
              "polar")  # polar: DeepSeek-V2's complex RoPE table
_REDUCTIONS = ("mean", "sum", "amax", "norm")
_ZERO_COST = ("embedding", "index_select", "argsort", "sort", "empty_like", "numel", "view_as", "bincount",
              "split_with_sizes", "split", "unbind", "index_add", "repeat_interleave", "zeros_like", "ones_like",
              "new_zeros", "new_ones", "tril", "triu", "where", "lt", "le", "ne", "logical_and", "logical_or",
              "all", "any", "unsqueeze", "squeeze", "reshape", "view", "transpose", "permute", "slice", "select",
              "to", "type_as", "stack", "cumsum", "sub_", "ones", "zeros", "fill_", "scalar_tensor", "min", "item",
              "clone", "_to_copy", "bitwise_and", "bitwise_or", "__or__", "is_floating_point", "masked_fill_",
              "lift_fresh", "topk", "histc", "scatter_", "scatter", "view_as_complex", "view_as_real", "numpy_T",
              "broadcast_to")


def sdpa_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """aten::scaled_dot_product_attention(q, k, v, mask, dropout, is_causal, scale, enable_gqa): Q·Kᵀ and P·V,
    B·Hq·Sq·Sk·(d_qk + d_v) MACs. Dense: the mask (a traced value) and is_causal are not applied."""
    query, key, value = (get_shape(v) for v in inputs[:3])
    batch, heads, num_queries, d_qk = query[-4:] if len(query) >= 4 else (1, *query)
    return math.prod(query[:-2]) * num_queries * key[-2] * (d_qk + value[-1])


def grouped_mm_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """aten::_grouped_mm(a, b, offs, ...): (out numel)·k MACs, k = a's last dim; 2-D × 2-D splits k: m·n·k."""
    a, b, out = get_shape(inputs[0]), get_shape(inputs[1]), get_shape(outputs[0])
    if len(a) == 2 and len(b) == 2:
        return a[0] * b[-1] * a[-1]
    return math.prod(out) * a[-1]


def _output_elements(inputs: list[Any], outputs: list[Any]) -> int:
    return math.prod(get_shape(outputs[0]) or [0])


def _input_elements(inputs: list[Any], outputs: list[Any]) -> int:
    return math.prod(get_shape(inputs[0]) or [0])


def _free(inputs: list[Any], outputs: list[Any]) -> int:
    return 0


def _rms_norm(inputs: list[Any], outputs: list[Any]) -> int:
    """The zoo's RMSNorm function, priced as the ops it runs: x², the mean and x·r·w per element (4n), + eps and
    the reciprocal square root per row."""
    shape = get_shape(inputs[0]) or [0]
    elements = math.prod(shape)
    return 4 * elements + 2 * (elements // shape[-1] if shape[-1] else 0)


def _softmax(inputs: list[Any], outputs: list[Any]) -> int:
    return 4 * math.prod(get_shape(inputs[0]) or [0])


def our_handles() -> dict[str, Any]:
    """Op name -> handle (None = ignored, costs nothing) for `FlopCountAnalysis.set_op_handle`."""
    handles: dict[str, Any] = {
        "aten::scaled_dot_product_attention": sdpa_macs,
        "aten::_grouped_mm": grouped_mm_macs,
        "aten::softmax": _softmax,
        "aten::log_softmax": _softmax,
    }
    handles.update({f"aten::{name}": _output_elements for name in _POINTWISE})
    handles.update({f"aten::{name}": _input_elements for name in _REDUCTIONS})
    handles.update({f"aten::{name}": None for name in _ZERO_COST})
    # The zoo's autograd.Functions, which the tracer records as Python ops (fvcore never ignores those): the
    # token-routed MLP's row permutation (a gather, free) and RMSNorm.
    handles["prim::PythonOp._PermuteRows"] = _free
    handles["prim::PythonOp._RMSNormFunction"] = _rms_norm
    return handles


@dataclass
class FvcoreCounts:
    """Forward-pass FLOPs as fvcore counted them: matmul (from MACs, × FLOPS_PER_MAC) and other, plus what fvcore
    could not price (op name -> calls), the raw per-operator figures (MACs for MAC_OPERATORS, else FLOPs) and the
    matmul FLOPs of the ops that ran directly in each module (paths as in `model.named_modules()`, under "model.")."""

    matmul: int
    other: int
    unsupported: dict[str, int]
    raw_by_operator: dict[str, int] = field(default_factory=dict)
    matmul_by_module: dict[str, dict[str, int]] = field(default_factory=dict)  # path -> op -> FLOPs, exclusive


class _TensorOutput(torch.nn.Module):
    """jit.trace needs tensor outputs: keep the logits of models that return an output object."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        out = self.model(*inputs)
        return out if isinstance(out, torch.Tensor) else out.logits


def fvcore_counts(model: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> FvcoreCounts:
    """Trace `model(*inputs)` with fvcore, our handles registered, and split its totals by bucket."""
    analysis = FlopCountAnalysis(_TensorOutput(model), tuple(inputs))
    analysis.set_op_handle(**our_handles())
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    by_operator = {name: int(value) for name, value in analysis.by_operator().items()}
    matmul = sum(FLOPS_PER_MAC * v for name, v in by_operator.items() if name in MAC_OPERATORS)
    other = sum(v for name, v in by_operator.items() if name not in MAC_OPERATORS)
    inclusive = {path: {op: FLOPS_PER_MAC * int(v) for op, v in ops.items() if op in MAC_OPERATORS}
                 for path, ops in analysis.by_module_and_operator().items()}
    return FvcoreCounts(matmul=matmul, other=other, unsupported=dict(analysis.unsupported_ops()),
                        raw_by_operator=by_operator, matmul_by_module=exclusive_by_module(inclusive, root=""))
