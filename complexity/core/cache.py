"""Key/value cache for incremental decoding.

One `KVCache` serves a whole model: it holds each layer's keys and values [batch, kv_heads, keys, head_dim] and
counts the sequence slots seen so far (pads included). With a sliding window W a query sees itself and the W-1
keys before it, so a layer keeps only its last W-1 keys: the cache never grows past the window.
"""

from __future__ import annotations

import torch


class KVCache:
    def __init__(self, num_layers: int, sliding_window: int | None = None) -> None:
        self.sliding_window = sliding_window
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers
        self.seen_tokens = 0  # sequence slots already processed; the next token's slot index

    @property
    def num_cached(self) -> int:
        """Keys held per layer (the same for every layer)."""
        k = self.keys[0]
        return 0 if k is None else k.shape[-2]

    def update(self, layer_idx: int, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this step's keys/values; return all keys/values the step's queries attend to."""
        if self.keys[layer_idx] is not None:
            key = torch.cat([self.keys[layer_idx], key], dim=-2)
            value = torch.cat([self.values[layer_idx], value], dim=-2)
        keep = key.shape[-2] if self.sliding_window is None else min(key.shape[-2], self.sliding_window - 1)
        self.keys[layer_idx] = key[..., key.shape[-2] - keep:, :]
        self.values[layer_idx] = value[..., value.shape[-2] - keep:, :]
        return key, value

    def advance(self, num_tokens: int) -> None:
        """Called once per forward, after every layer has been updated."""
        self.seen_tokens += num_tokens
