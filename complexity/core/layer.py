"""Pre-norm decoder layer: x + attn(norm(x)), then x + mlp(norm(x)) (as in Llama)."""

from __future__ import annotations

import torch
from torch import nn

from complexity.config import ComplexityConfig
from complexity.core.attention import ComplexityAttention
from complexity.core.cache import KVCache, StaticKVCache
from complexity.core.mlp import SwiGLUMLP
from complexity.core.normalization import RMSNorm
from complexity.core.token_routed_mlp import TokenRoutedMLP, TokenRouting


class ComplexityDecoderLayer(nn.Module):
    def __init__(self, config: ComplexityConfig, layer_idx: int) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = ComplexityAttention(config, layer_idx)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        # Differs from Llama: the MLP may be token-routed, which needs the routing computed from the input ids.
        self.mlp = TokenRoutedMLP(config) if config.use_token_routed_mlp else SwiGLUMLP(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        attn_mask: torch.Tensor | None,
        cache: KVCache | StaticKVCache | None = None,
        routing: TokenRouting | None = None,
    ) -> torch.Tensor:
        hidden_states = hidden_states + self.self_attn(self.input_layernorm(hidden_states), cos, sin, attn_mask, cache)
        normed = self.post_attention_layernorm(hidden_states)
        mlp_out = self.mlp(normed, routing=routing) if isinstance(self.mlp, TokenRoutedMLP) else self.mlp(normed)
        return hidden_states + mlp_out
