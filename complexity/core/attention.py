"""Grouped-query attention (Ainslie et al. 2023) on `F.scaled_dot_product_attention`.

Differences from Llama: optional QK-norm (RMSNorm over head_dim on queries and keys, before RoPE, as in Qwen3 and
Gemma 3) and an optional sliding window (Mistral). The attention mask is built once per forward by
`build_attention_mask` and shared by every layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from complexity.config import ComplexityConfig
from complexity.core.cache import KVCache, StaticKVCache
from complexity.core.normalization import RMSNorm
from complexity.core.rotary import apply_rotary


class ComplexityAttention(nn.Module):
    def __init__(self, config: ComplexityConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        h, q_dim, kv_dim = config.hidden_size, self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim
        self.q_proj = nn.Linear(h, q_dim, bias=False)
        self.k_proj = nn.Linear(h, kv_dim, bias=False)
        self.v_proj = nn.Linear(h, kv_dim, bias=False)
        self.o_proj = nn.Linear(q_dim, h, bias=False)
        if config.use_qk_norm:
            self.q_norm = RMSNorm(self.head_dim, config.rms_norm_eps)
            self.k_norm = RMSNorm(self.head_dim, config.rms_norm_eps)
        else:
            self.q_norm = self.k_norm = None

    def forward(
        self,
        hidden_states: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        attn_mask: torch.Tensor | None,
        cache: KVCache | StaticKVCache | None = None,
    ) -> torch.Tensor:
        """attn_mask: boolean [batch or 1, 1, queries, keys], True = may attend; None = plain causal."""
        batch, seq, _ = hidden_states.shape
        q = self.q_proj(hidden_states).view(batch, seq, self.num_heads, self.head_dim)
        k = self.k_proj(hidden_states).view(batch, seq, self.num_kv_heads, self.head_dim)
        v = self.v_proj(hidden_states).view(batch, seq, self.num_kv_heads, self.head_dim).transpose(1, 2)
        if self.q_norm is not None:  # on the contiguous [batch, seq, heads, head_dim] layout: cheaper than after
            q, k = self.q_norm(q), self.k_norm(k)  # the transpose, same values
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)
        # is_causal=True aligns the triangle top-left, which is wrong as soon as keys outnumber queries (cached
        # decoding): it is used only when queries and keys are the same positions; otherwise the explicit mask.
        is_causal = bool(attn_mask is None and q.shape[-2] == k.shape[-2] and q.shape[-2] > 1)  # bool: traceable
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, is_causal=is_causal, enable_gqa=self.num_kv_heads != self.num_heads
        )
        return self.o_proj(out.transpose(1, 2).reshape(batch, seq, self.num_heads * self.head_dim))


def build_attention_mask(
    past: int,
    num_queries: int,
    num_keys: int,
    padding_mask: torch.Tensor | None,
    sliding_window: int | None,
    device: torch.device,
) -> torch.Tensor | None:
    """Boolean mask [batch or 1, 1, queries, keys] (True = attend), or None when plain causal attention is exact.

    Queries occupy sequence slots [past, past + num_queries); keys are the last `num_keys` slots up to the last
    query (a windowed cache drops older ones); padding_mask [batch, >= num_keys] is 1 at tokens, 0 at pads.
    """
    if padding_mask is None and sliding_window is None and (num_queries == num_keys or num_queries == 1):
        return None
    query_slots = torch.arange(past, past + num_queries, device=device)
    key_slots = torch.arange(past + num_queries - num_keys, past + num_queries, device=device)
    key_is_token = None if padding_mask is None else padding_mask[:, -num_keys:].bool()
    return slot_attention_mask(query_slots, key_slots, key_is_token, sliding_window)


def slot_attention_mask(
    query_slots: torch.Tensor,
    key_slots: torch.Tensor,
    key_is_token: torch.Tensor | None,
    sliding_window: int | None,
) -> torch.Tensor:
    """Boolean mask [batch or 1, 1, queries, keys] from the sequence slots of queries [q] and keys [k].

    A query sees a key when the key is not later than itself, within the window (query - key < W) and not padding
    (key_is_token [batch, k], None = no padding). Every query also sees itself, so a padding query never has an
    empty row (an all-masked row would make SDPA return NaN, and NaN times a zero weight is still NaN).
    """
    q_slot, k_slot = query_slots[:, None], key_slots[None, :]
    allowed = k_slot <= q_slot
    if sliding_window is not None:
        allowed = allowed & (q_slot - k_slot < sliding_window)
    allowed = allowed[None, None]
    if key_is_token is not None:
        allowed = (allowed & key_is_token[:, None, None, :]) | (k_slot == q_slot)[None, None]
    return allowed
