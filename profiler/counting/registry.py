"""Per-op FLOP formulas for the dispatch counter: a registry keyed by aten overload packet.

Conventions (the design's): a FLOP is one floating-point add or multiply, so a multiply-add is 2 FLOPs and an
[m, k] @ [k, n] product costs 2·m·n·k. Every op's cost lands in one of two buckets that are never mixed:

* `matmul` — the matrix-multiply family (mm, addmm, bmm, baddbmm, mv, dot, `_grouped_mm`, convolution) and every
  scaled-dot-product-attention kernel. Attention carries two figures: `matmul` is the dense one (all Sq×Sk
  scores, what the kernels compute unless they skip masked blocks) and `matmul_causal` counts unmasked
  (query, key) pairs only. For every other op both figures are equal.
* `other` — non-matmul floating-point work, per element: a pointwise op (add, mul, silu, rsqrt, exp, ...) costs 1
  per output element whatever its arithmetic; a reduction (sum, mean, amax) 1 per input element; softmax and
  log-softmax 4 per element (max, subtract, exp, sum + divide or log) forward and 3 backward; LayerNorm 5 per
  element (mean, subtract, variance, normalise, affine) forward and backward; a matmul bias 1 per
  output element; scatter-adds (embedding backward, index_add) 1 per added element; negative log-likelihood 1
  per target. RMSNorm, written in PyTorch, is counted through its pointwise ops and reduction.

Ops with no floating-point output (routing, sorting, index arithmetic) are not FLOPs and cost nothing; so do
views, copies, concatenation, gathers, selection (top-k, histograms) and tensor creation (`ZERO_COST`).
Everything else is unknown to the counter and reported as such, never counted as zero silently.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils import flop_counter as torch_flop_counter

aten = torch.ops.aten


@dataclass(frozen=True)
class OpCost:
    """FLOPs of one op call. `matmul_causal` None means "equal to matmul"; `causal_known` False means the causal
    figure could not be read (an attention mask on the meta device has no values)."""

    matmul: int = 0
    other: int = 0
    matmul_causal: int | None = None
    causal_known: bool = True

    @property
    def causal(self) -> int:
        return self.matmul if self.matmul_causal is None else self.matmul_causal


# A formula maps the op's arguments (bound to their schema names) and its output to an OpCost.
Formula = Callable[[dict[str, Any], Any], OpCost]

BUCKETS = ("matmul", "other")
FORMULAS: dict[str, dict[Any, Formula]] = {bucket: {} for bucket in BUCKETS}


def register(bucket: str, *packets: Any) -> Callable[[Formula], Formula]:
    """Decorator: `formula` prices every op in `packets` (aten overload packets), filed under `bucket`. An op has
    one formula: registering a packet twice, in either bucket, is a ValueError (a second formula would silently
    replace the first)."""
    if bucket not in BUCKETS:
        raise ValueError(f"bucket={bucket!r} is not one of {BUCKETS}")

    def wrap(formula: Formula) -> Formula:
        for packet in packets:
            if any(packet in formulas for formulas in FORMULAS.values()):
                raise ValueError(f"{packet} already has a FLOP formula; an op has exactly one")
            FORMULAS[bucket][packet] = formula
        return formula

    return wrap


def bind_arguments(func: torch._ops.OpOverload, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The op's arguments by schema name, defaults filled in (so formulas never depend on positional order)."""
    bound: dict[str, Any] = {}
    for index, argument in enumerate(func._schema.arguments):
        if index < len(args) and not argument.kwarg_only:
            bound[argument.name] = args[index]
        elif argument.name in kwargs:
            bound[argument.name] = kwargs[argument.name]
        elif argument.has_default_value():
            bound[argument.name] = argument.default_value
    return bound


# ---------------------------------------------------------------------------------------------------- matmul family
def _torch_formula(packet: Any, *names: str) -> Formula:
    """Reuse torch.utils.flop_counter's formula for `packet` (already 2 FLOPs per multiply-add), given the schema
    names of the arguments it reads positionally."""
    torch_formula = torch_flop_counter.flop_registry[packet]

    def formula(bound: dict[str, Any], out: Any) -> OpCost:
        return OpCost(matmul=int(torch_formula(*(bound[name] for name in names), out_val=out)))

    return formula


register("matmul", aten.mm)(_torch_formula(aten.mm, "self", "mat2"))
register("matmul", aten.bmm)(_torch_formula(aten.bmm, "self", "mat2"))
register("matmul", aten.convolution)(_torch_formula(
    aten.convolution, "input", "weight", "bias", "stride", "padding", "dilation", "transposed"
))


@register("matmul", aten.addmm, aten.baddbmm)
def biased_matmul(bound: dict[str, Any], out: torch.Tensor) -> OpCost:
    """beta·self + alpha·(mat1 @ mat2): the product 2·(out numel)·k in the matmul bucket, the bias add (1 per output
    element) in the other bucket. Scaling by alpha/beta (1 in every Linear) is not counted."""
    k = bound["mat1" if "mat1" in bound else "batch1"].shape[-1]
    return OpCost(matmul=2 * out.numel() * k, other=out.numel())


@register("matmul", aten.mv, aten.dot)
def vector_product(bound: dict[str, Any], out: torch.Tensor) -> OpCost:
    """[m, k] @ [k] or [k]·[k]: 2·(out numel)·k."""
    return OpCost(matmul=2 * max(out.numel(), 1) * bound["self"].shape[-1])


@register("matmul", aten._grouped_mm)
def grouped_matmul(bound: dict[str, Any], out: torch.Tensor) -> OpCost:
    """torch._grouped_mm (one matmul per group, as MoE layers use it): every output element is a k-long dot
    product, 2·(out numel)·k, with k = self.shape[-1]. When both operands are 2-D the groups split k instead
    (out is [G, m, n] and group g contracts its own k_g), so the cost is 2·m·n·Σk_g = 2·m·n·self.shape[-1].
    Rows of a 2-D `self` beyond offs[-1] are counted too (their output is unspecified but computed)."""
    a, b = bound["self"], bound["mat2"]
    if a.dim() == 2 and b.dim() == 2:
        return OpCost(matmul=2 * a.shape[0] * b.shape[-1] * a.shape[-1])
    return OpCost(matmul=2 * out.numel() * a.shape[-1])


# ---------------------------------------------------------------------------------------------------- attention
def causal_pairs(num_queries: int, num_keys: int) -> int:
    """Unmasked (query, key) pairs of `is_causal=True` attention, whose triangle torch aligns top-left: query i
    sees keys 0..i, so Σ_i min(i + 1, Sk). For Sq = Sk = S that is S(S+1)/2 — half the square plus the diagonal."""
    full_rows = min(num_queries, num_keys)
    return full_rows * (full_rows + 1) // 2 + (num_queries - full_rows) * num_keys


def mask_pairs(mask: torch.Tensor, full_shape: tuple[int, ...]) -> int | None:
    """Unmasked pairs of a mask broadcast to `full_shape` = (B, H, Sq, Sk): True entries of a boolean mask, finite
    entries of an additive float mask. None on the meta device, where a mask has no values."""
    if mask.device.type == "meta":
        return None
    allowed = mask if mask.dtype == torch.bool else torch.isfinite(mask)
    return int(allowed.sum()) * (math.prod(full_shape) // mask.numel())


def attention_flops(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    is_causal: bool,
    mask: torch.Tensor | None,
    matmuls: int,
) -> OpCost:
    """FLOPs of a fused attention kernel on [B, H, S, d] tensors, dense and causal: `matmuls` = 2 forward, 5 backward.

    Forward = 2 products, S = Q·Kᵀ and O = P·V: 2·B·Hq·Sq·Sk·(d_qk + d_v) = 4·B·H·Sq·Sk·hd when d_qk = d_v
    (Vaswani et al. 2017, section 3.2; FLOPs as in Kaplan et al. 2020, table 1). Backward of a fused kernel = 5
    products: it recomputes S from Q and K (FlashAttention, Dao et al. 2022, algorithm 4), then dV = Pᵀ·dO,
    dP = dO·Vᵀ, dQ = dS·K, dK = dSᵀ·Q, i.e. 2.5× the forward. GQA: key/value have Hkv heads shared by Hq/Hkv
    query heads each; the products still run per query head, so Hq counts. The causal figure replaces Sq·Sk by the
    number of unmasked pairs (`causal_pairs` or the mask's count)."""
    batch, heads, num_queries, d_qk = query.shape
    num_keys, d_v = key.shape[-2], value.shape[-1]
    if key.shape[1] == 0 or heads % key.shape[1]:
        raise ValueError(f"attention: query heads {heads} must be a multiple of key/value heads {key.shape[1]}")
    # FLOPs per (query, key) pair and head: QKᵀ-shaped products cost 2·d_qk, PV-shaped ones 2·d_v; the backward
    # has three of the first kind (S, dQ, dK) and two of the second (dV, dP).
    if matmuls not in (2, 5):
        raise ValueError(f"matmuls={matmuls} must be 2 (forward) or 5 (fused backward)")
    per_pair = 2 * d_qk + 2 * d_v if matmuls == 2 else 3 * 2 * d_qk + 2 * 2 * d_v
    dense = batch * heads * num_queries * num_keys * per_pair
    if mask is not None:
        pairs = mask_pairs(mask, (batch, heads, num_queries, num_keys))
        if pairs is None:
            return OpCost(matmul=dense, causal_known=False)
        return OpCost(matmul=dense, matmul_causal=pairs * per_pair)
    if is_causal:
        return OpCost(matmul=dense, matmul_causal=batch * heads * causal_pairs(num_queries, num_keys) * per_pair)
    return OpCost(matmul=dense)


def _attention(matmuls: int, mask_name: str = "attn_mask") -> Formula:
    def formula(bound: dict[str, Any], out: Any) -> OpCost:
        return attention_flops(
            bound["query"], bound["key"], bound["value"], bool(bound.get("is_causal", False)),
            bound.get(mask_name), matmuls,
        )

    formula.__doc__ = f"{'Forward' if matmuls == 2 else 'Backward'} of a fused SDPA kernel: see attention_flops."
    return formula


_ATTENTION_KERNELS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _attention(2),
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _attention(5),
    aten._scaled_dot_product_flash_attention: _attention(2),
    aten._scaled_dot_product_flash_attention_backward: _attention(5),
    aten._scaled_dot_product_efficient_attention: _attention(2, mask_name="attn_bias"),
    aten._scaled_dot_product_efficient_attention_backward: _attention(5, mask_name="attn_bias"),
    aten._scaled_dot_product_cudnn_attention: _attention(2, mask_name="attn_bias"),
    aten._scaled_dot_product_cudnn_attention_backward: _attention(5, mask_name="attn_bias"),
    aten._scaled_dot_product_fused_attention_overrideable: _attention(2, mask_name="attn_bias"),
    aten._scaled_dot_product_fused_attention_overrideable_backward: _attention(5, mask_name="attn_bias"),
    aten._scaled_dot_product_attention_math_for_mps: _attention(2),
}
for _packet, _formula in _ATTENTION_KERNELS.items():
    register("matmul", _packet)(_formula)


# ---------------------------------------------------------------------------------------------------- other bucket
def _per_element(per_element: int, name: str) -> Formula:
    def formula(bound: dict[str, Any], out: Any) -> OpCost:
        return OpCost(other=per_element * bound[name].numel())

    formula.__doc__ = f"{per_element} FLOP(s) per element of `{name}`."
    return formula


_PER_ELEMENT = {
    aten._softmax: _per_element(4, "self"),
    aten._safe_softmax: _per_element(4, "self"),
    aten._log_softmax: _per_element(4, "self"),
    aten._softmax_backward_data: _per_element(3, "grad_output"),
    aten._log_softmax_backward_data: _per_element(3, "grad_output"),
    aten.embedding_dense_backward: _per_element(1, "grad_output"),
    aten.index_add: _per_element(1, "source"),
    aten.scatter_add: _per_element(1, "src"),
    aten.nll_loss_forward: _per_element(1, "target"),
    aten.nll_loss_backward: _per_element(1, "target"),
    aten.native_layer_norm: _per_element(5, "input"),
    aten.native_layer_norm_backward: _per_element(5, "grad_out"),
}
for _packet, _formula in _PER_ELEMENT.items():
    register("other", _packet)(_formula)

# Ops that move, view, create or convert data without arithmetic (0 FLOPs by convention, listed so they are known).
ZERO_COST: frozenset[Any] = frozenset({
    aten.clone, aten.copy_, aten._to_copy, aten.cat, aten.stack, aten.index_select, aten.index, aten.gather,
    aten.embedding, aten._unsafe_view, aten.slice_backward, aten.select_backward, aten.index_put_, aten.scatter,
    aten.empty_like, aten.zeros_like, aten.ones_like, aten.full_like, aten.new_zeros, aten.new_empty, aten.new_ones,
    aten.new_full, aten.empty, aten.zeros, aten.ones, aten.full, aten.scalar_tensor, aten.fill_, aten.zero_,
    aten.lift_fresh, aten.detach, aten.alias, aten.constant_pad_nd, aten.repeat, aten.where, aten.masked_fill,
    aten.tril, aten.triu, aten.empty_strided, aten._local_scalar_dense, aten.arange, aten.linspace,
    aten.topk, aten.histc, aten.index_put, aten.sort, aten.scatter_, aten.new_empty_strided,
})


def classify(func: torch._ops.OpOverload, args: tuple, kwargs: dict, out: Any) -> OpCost | None:
    """The cost of one call, or None when the op is unknown (no formula and no rule covers it)."""
    packet = func.overloadpacket
    for formulas in FORMULAS.values():
        if packet in formulas:
            return formulas[packet](bind_arguments(func, args, kwargs), out)
    outputs = [t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
    if packet in ZERO_COST or not any(t.is_floating_point() for t in outputs) or _is_view(func):
        return OpCost()
    if torch.Tag.pointwise in func.tags:
        return OpCost(other=sum(t.numel() for t in outputs))
    if torch.Tag.reduction in func.tags:
        inputs = [t for t in torch.utils._pytree.tree_leaves(args) if isinstance(t, torch.Tensor)]
        return OpCost(other=max((t.numel() for t in inputs), default=0))
    return None


def _is_view(func: torch._ops.OpOverload) -> bool:
    """Views return an alias of an input without writing it (transpose, view, expand, select, split, ...)."""
    returns = func._schema.returns
    return bool(returns) and all(r.alias_info is not None and not r.alias_info.is_write for r in returns)
