"""Token-routed MLP: E SwiGLU experts, each token sent to exactly one, chosen from its token id.

Unlike a learned mixture of experts (Mixtral, DeepSeek) there is no router network and no load-balancing loss:
the expert is a fixed function of the token id, so routing is known before the first layer runs. The model computes
it once per forward (`route_tokens`) and every layer reuses it.

Dispatch: tokens are sorted by expert once; each expert then runs three dense matmuls on its contiguous slice of
the sorted tokens, and the outputs are put back in the original order. Cost per token is one expert's, i.e.
1/E of a dense SwiGLU with the same total width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from complexity.config import ComplexityConfig


@dataclass(frozen=True)
class TokenRouting:
    """Where each token goes, computed once per forward from the input ids."""

    order: torch.Tensor  # [tokens] flat token indices sorted by expert (stable)
    inverse: torch.Tensor  # [tokens] position of each token in `order`
    counts: tuple[int, ...]  # tokens per expert, in expert order


def expert_ids(token_ids: torch.Tensor, config: ComplexityConfig) -> torch.Tensor:
    """The expert of every token: "range" = id * E // vocab_size (contiguous id blocks), "modulo" = id % E."""
    if config.routing == "range":
        return token_ids * config.num_experts // config.vocab_size
    return token_ids % config.num_experts


def route_tokens(token_ids: torch.Tensor, config: ComplexityConfig) -> TokenRouting:
    """Sort the flattened tokens by expert. Raises ValueError for ids outside [0, vocab_size)."""
    flat = token_ids.reshape(-1)
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= config.vocab_size):
        raise ValueError(
            f"token_ids must lie in [0, vocab_size={config.vocab_size}); got range "
            f"[{int(flat.min())}, {int(flat.max())}]"
        )
    experts = expert_ids(flat, config)
    order = torch.argsort(experts, stable=True)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(order.numel(), device=order.device)
    counts = torch.bincount(experts, minlength=config.num_experts)
    return TokenRouting(order=order, inverse=inverse, counts=tuple(counts.tolist()))


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
        """hidden_states [..., hidden]; token_ids of shape [...] or a precomputed `routing` (one is required)."""
        if routing is None:
            if token_ids is None:
                raise ValueError("TokenRoutedMLP needs token_ids (or a precomputed routing) to choose experts")
            if token_ids.shape != hidden_states.shape[:-1]:
                raise ValueError(
                    f"token_ids shape {tuple(token_ids.shape)} must match hidden_states' leading shape "
                    f"{tuple(hidden_states.shape[:-1])}"
                )
            routing = route_tokens(token_ids, self.config)
        x = permute_rows(hidden_states.reshape(-1, hidden_states.shape[-1]), routing.order, routing.inverse)
        outputs = []
        # unbind, not self.gate_proj[expert]: its backward stacks the E gradients once, where E indexing ops
        # would each write a zero-filled [E, hidden, width] gradient and sum them.
        experts = zip(x.split(routing.counts), self.gate_proj.unbind(0), self.up_proj.unbind(0),
                      self.down_proj.unbind(0))
        for chunk, gate, up, down in experts:
            if chunk.shape[0] == 0:
                continue
            outputs.append((F.silu(chunk @ gate) * (chunk @ up)) @ down)
        y = torch.cat(outputs) if outputs else x.new_zeros(0, hidden_states.shape[-1])
        return permute_rows(y, routing.inverse, routing.order).view_as(hidden_states)
