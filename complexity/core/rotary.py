"""Rotary position embedding (Su et al. 2021, RoFormer) in Llama's "rotate half" layout.

Channel i of the first half of a head is paired with channel i of the second half and the pair is rotated by
angle position * theta^(-2i/head_dim). The float32 cos/sin table for positions [0, max_position_embeddings) is
built on first use on the device of the positions and kept; callers pass absolute positions, so cached decoding
and left-padded rows look up their own offsets. The table is not a buffer: `model.to(torch.bfloat16)` must not
round it, and it never appears in checkpoints.
"""

from __future__ import annotations

import torch
from torch import nn

from complexity.config import ComplexityConfig


class RotaryEmbedding(nn.Module):
    def __init__(self, config: ComplexityConfig) -> None:
        super().__init__()
        self.head_dim = config.head_dim
        self.theta = config.rope_theta
        self.max_positions = config.max_position_embeddings
        self._table: tuple[torch.Tensor, torch.Tensor] | None = None

    def _cos_sin_table(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if self._table is None or self._table[0].device != device:
            exponent = torch.arange(0, self.head_dim, 2, dtype=torch.float64) / self.head_dim
            angles = torch.outer(torch.arange(self.max_positions, dtype=torch.float64), self.theta ** -exponent)
            angles = torch.cat([angles, angles], dim=-1)
            self._table = (angles.cos().float().to(device), angles.sin().float().to(device))
        return self._table

    def forward(self, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin, float32 [batch, seq, head_dim], for integer positions [batch, seq]."""
        cos, sin = self._cos_sin_table(position_ids.device)
        return cos[position_ids], sin[position_ids]


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x [batch, heads, seq, head_dim] by the angles whose cos/sin are [batch, seq, head_dim]."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    x32 = x.float()
    return (x32 * cos + rotate_half(x32) * sin).to(x.dtype)
