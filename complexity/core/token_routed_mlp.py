"""Token-routed MLP: E SwiGLU experts, each token sent to exactly one, chosen from its token id.

Unlike a learned mixture of experts (Mixtral, DeepSeek) there is no router network and no load-balancing loss:
the expert is a fixed function of the token id, so routing is known before the first layer runs. The model computes
it once per forward (`route_tokens`) and every layer reuses it. Token ids are range-checked where they enter the
model, not here (a check reads the ids on the host, which a compiled graph cannot do).

Dispatch, with no host synchronisation and no data-dependent shapes (so `torch.compile(fullgraph=True)` traces it):
tokens are sorted by expert once, the end offset of each expert's run of rows is counted on the device
(a histogram), and each projection is one grouped matmul over the sorted rows (`torch._grouped_mm`, as
torchtitan's MoE layers use it); the outputs are put back in the original order. Cost per token is one expert's,
i.e. 1/E of a dense SwiGLU with the same total width. Where `torch._grouped_mm` has no kernel for the operands
(float64, rows not a multiple of 16 bytes, meta tensors, CUDA other than bfloat16 weights, e.g. fp32 weights under
bf16 autocast) eager code runs expert by expert over the sorted rows (one host read of the counts, the same FLOPs);
on the meta device and while compiling, every expert runs on every token as one batched matmul and each token keeps
its own expert's row: E times the FLOPs, the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from complexity.config import ComplexityConfig


@dataclass(frozen=True)
class TokenRouting:
    """Where each token goes, computed once per forward from the input ids; every field lives on the ids' device."""

    experts: torch.Tensor  # [tokens] the expert of each flat token
    order: torch.Tensor  # [tokens] flat token indices sorted by expert (stable)
    inverse: torch.Tensor  # [tokens] position of each token in `order`
    offsets: torch.Tensor  # [experts] int32: end of each expert's rows in the sorted order (cumulative counts)


def expert_ids(token_ids: torch.Tensor, config: ComplexityConfig) -> torch.Tensor:
    """The expert of every token: "range" = id * E // vocab_size (contiguous id blocks), "modulo" = id % E."""
    if config.routing == "range":
        return token_ids * config.num_experts // config.vocab_size
    return token_ids % config.num_experts


def route_tokens(token_ids: torch.Tensor, config: ComplexityConfig) -> TokenRouting:
    """Sort the flattened tokens by expert. The ids must lie in [0, vocab_size) (checked by the caller)."""
    experts = expert_ids(token_ids.reshape(-1), config)
    order = torch.argsort(experts, stable=True)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(order.numel(), device=order.device)
    # Tokens per expert as a histogram of unit-wide bins [e, e + 1): a fixed-size output, where bincount's size
    # depends on the largest id (a shape the compiler cannot know). Exact: the counts are integers below 2^24.
    counts = torch.histc(experts.float(), bins=config.num_experts, min=0, max=config.num_experts)
    offsets = counts.to(torch.int32).cumsum(0, dtype=torch.int32)
    return TokenRouting(experts=experts, order=order, inverse=inverse, offsets=offsets)


class _PermuteRows(torch.autograd.Function):
    """rows = x[index] where `index` is a permutation with inverse `inverse`. The gradient is the inverse
    permutation, a gather; autograd's generic index_select backward would zero-fill and scatter-add instead."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, index: torch.Tensor,
                inverse: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(inverse)
        return x.index_select(0, index)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (inverse,) = ctx.saved_tensors
        return grad.index_select(0, inverse), None, None


def permute_rows(x: torch.Tensor, index: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """x[index] for a permutation `index` whose inverse is `inverse` (rows of a 2-D tensor)."""
    return _PermuteRows.apply(x, index, inverse)


# ---------------------------------------------------------------------------------------------------- grouped matmul
# Under torch.compile aten._grouped_mm cannot be traced in float32: its meta function (the shape rule the compiler
# runs) insists on bfloat16, CUDA's one dtype, although the CPU kernel takes float32 and float16 too. The two custom
# ops below wrap the kernel for the compiler: opaque to it, with a shape rule of their own and their backward written
# as grouped matmuls again. Eager code calls aten._grouped_mm itself, whose autograd formula is torch's.

@torch.library.custom_op("complexity::grouped_mm", mutates_args=())
def _grouped_mm_op(x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Rows offsets[e-1]:offsets[e] of x [tokens, k] times weight[e] [k, n] -> [tokens, n]."""
    return torch._grouped_mm(x, weight, offs=offsets)


@_grouped_mm_op.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    return x.new_empty(x.shape[0], weight.shape[-1])


@torch.library.custom_op("complexity::grouped_mm_weight_grad", mutates_args=())
def _grouped_weight_grad_op(x: torch.Tensor, grad: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Per group e: x[rows of e].T @ grad[rows of e] -> [groups, k, n] (zero for an empty group)."""
    return torch._grouped_mm(x.t(), grad, offs=offsets)


@_grouped_weight_grad_op.register_fake
def _(x: torch.Tensor, grad: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    return x.new_empty(offsets.shape[0], x.shape[1], grad.shape[1])


def _grouped_mm_setup(ctx, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
    ctx.save_for_backward(*inputs)


def _grouped_mm_backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
    x, weight, offsets = ctx.saved_tensors
    grad = grad.contiguous()
    grad_x = _grouped_mm_op(grad, weight.transpose(-2, -1), offsets) if ctx.needs_input_grad[0] else None
    grad_weight = _grouped_weight_grad_op(x, grad, offsets) if ctx.needs_input_grad[1] else None
    return grad_x, grad_weight, None


_grouped_mm_op.register_autograd(_grouped_mm_backward, setup_context=_grouped_mm_setup)


def grouped_mm_supported(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether torch._grouped_mm has a kernel for x [tokens, k] @ weight [E, k, n]: the CPU kernel takes float32,
    bfloat16 and float16, CUDA's bfloat16 only; both want rows of k and n elements to be multiples of 16 bytes."""
    if x.device.type == "cpu":
        dtypes = (torch.float32, torch.bfloat16, torch.float16)
    elif x.device.type == "cuda":
        dtypes = (torch.bfloat16,)
    else:
        return False
    aligned = all(size * x.element_size() % 16 == 0 for size in (weight.shape[-2], weight.shape[-1]))
    return hasattr(torch, "_grouped_mm") and x.dtype in dtypes and weight.dtype == x.dtype and aligned


def grouped_mm(x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Rows of x [tokens, k] sorted by group times their group's weight [E, k, n]; group e owns rows
    offsets[e-1]:offsets[e]. Requires `grouped_mm_supported(x, weight)`."""
    if torch.compiler.is_compiling():
        return _grouped_mm_op(x, weight, offsets)
    return torch._grouped_mm(x, weight, offs=offsets)


class TokenRoutedMLP(nn.Module):
    """E SwiGLU experts stored as stacked weights: gate/up [E, hidden, width], down [E, width, hidden]."""

    def __init__(self, config: ComplexityConfig) -> None:
        super().__init__()
        self.config = config
        e, h, w = config.num_experts, config.hidden_size, config.expert_intermediate_size
        self.gate_proj = nn.Parameter(torch.empty(e, h, w))
        self.up_proj = nn.Parameter(torch.empty(e, h, w))
        self.down_proj = nn.Parameter(torch.empty(e, w, h))

    def forward(
        self,
        hidden_states: torch.Tensor,
        token_ids: torch.Tensor | None = None,
        routing: TokenRouting | None = None,
    ) -> torch.Tensor:
        """hidden_states [..., hidden]; token_ids of shape [...] in [0, vocab_size), or a precomputed `routing`
        (one is required)."""
        if routing is None:
            if token_ids is None:
                raise ValueError("TokenRoutedMLP needs token_ids (or a precomputed routing) to choose experts")
            if token_ids.shape != hidden_states.shape[:-1]:
                raise ValueError(
                    f"token_ids shape {tuple(token_ids.shape)} must match hidden_states' leading shape "
                    f"{tuple(hidden_states.shape[:-1])}"
                )
            routing = route_tokens(token_ids, self.config)
        x = hidden_states.reshape(-1, hidden_states.shape[-1])
        if grouped_mm_supported(x, self.gate_proj):
            rows = permute_rows(x, routing.order, routing.inverse)
            hidden = F.silu(grouped_mm(rows, self.gate_proj, routing.offsets)) * grouped_mm(rows, self.up_proj,
                                                                                           routing.offsets)
            y = permute_rows(grouped_mm(hidden, self.down_proj, routing.offsets), routing.inverse, routing.order)
        elif x.device.type == "meta" or torch.compiler.is_compiling():
            y = self._every_expert_on_every_token(x, routing.experts)
        else:
            y = self._expert_by_expert(x, routing)
        return y.view_as(hidden_states)

    def _expert_by_expert(self, x: torch.Tensor, routing: TokenRouting) -> torch.Tensor:
        """The eager fallback: one host read of the experts' row counts, then each expert's SwiGLU on its own
        sorted rows, 1/E of a dense MLP's FLOPs (under autocast each product runs in the autocast dtype, which
        is how fp32 weights train in bf16 on CUDA, where the grouped kernel wants bf16 weights)."""
        rows = permute_rows(x, routing.order, routing.inverse)
        outputs, start = [], 0
        for expert, end in enumerate(routing.offsets.tolist()):
            part = rows[start:end]
            hidden = F.silu(part @ self.gate_proj[expert]) * (part @ self.up_proj[expert])
            outputs.append(hidden @ self.down_proj[expert])
            start = end
        return permute_rows(torch.cat(outputs), routing.inverse, routing.order)

    def _every_expert_on_every_token(self, x: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
        """The fallback: all E experts on all tokens as batched matmuls [E, tokens, ...], then each token's own
        expert's row. Rows of other experts get zero gradient, so the gradients are the routed ones."""
        every = x.expand(self.config.num_experts, *x.shape)
        hidden = F.silu(torch.bmm(every, self.gate_proj)) * torch.bmm(every, self.up_proj)
        return torch.bmm(hidden, self.down_proj)[experts, torch.arange(x.shape[0], device=x.device)]
