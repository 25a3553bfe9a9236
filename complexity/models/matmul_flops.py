"""Matmul FLOPs of one training step of a Complexity model, from its config alone (no torch).

The training loop divides this count by the step time to report achieved TFLOP/s and MFU.

Counting rules: 2 FLOPs per multiply-add, matrix products only (norms, softmax, SwiGLU's activation, RoPE and
residual adds are element-wise work and not counted). With T = B·S tokens, h = hidden_size, H query heads, K
key/value heads of width d = head_dim, L layers, V = vocab_size and m the width of the MLP a token visits
(`expert_intermediate_size`: one expert when the MLP is token-routed, the whole MLP when dense), one forward pass
costs

    weights   = L · 2T · (h·H·d + 2·h·K·d + H·d·h + 3·h·m) + 2T·h·V
    scores    = L · 2B · H · P · d        (Q·Kᵀ)
    values    = L · 2B · H · P · d        (P·V)

The weight terms are the q, k, v and o projections, SwiGLU's three matrices (gate, up, down) and the LM head over
all T tokens (a real matmul even when its weight is tied to the embedding). P is the number of causal query-key
pairs of one head: S(S+1)/2, or W(W+1)/2 + (S−W)·W with a sliding window W < S (each query sees itself and W−1
earlier keys).

Backward: 2 × forward for every weight matmul — Y = X·W needs dX = dY·Wᵀ and dW = Xᵀ·dY, each the size of the
forward product (Kaplan et al. 2020, arXiv:2001.08361 §2.1). For the attention core a fused flash-attention kernel
stores no probabilities, so its backward recomputes the scores and then computes dV, dP, dQ and dK: 3 × the
scores and 2 × the values (Dao et al. 2022, arXiv:2205.14135, algorithm 4). A step is therefore

    step = 3 · weights + 4 · scores + 3 · values

with no activation recomputation. tests/complexity/models/test_matmul_flops.py checks this count against the analytic
profiler's (`profiler.formulas.flops.train_step_flops`, causal convention) for every named size.
"""

from __future__ import annotations

from complexity.config import ComplexityConfig
from complexity.inputs import require_int


def train_step_flops(config: ComplexityConfig, batch: int, seq_len: int) -> int:
    """Matmul FLOPs of the forward and backward pass of `config`'s model over `batch` sequences of `seq_len`
    tokens (see the module docstring for the formula and its sources)."""
    require_int("batch", batch)
    require_int("seq_len", seq_len)
    tokens = batch * seq_len
    h, heads, kv_heads, d = config.hidden_size, config.num_attention_heads, config.num_key_value_heads, config.head_dim

    projections = h * heads * d + 2 * h * kv_heads * d + heads * d * h
    swiglu = 3 * h * config.expert_intermediate_size
    weights = config.num_hidden_layers * 2 * tokens * (projections + swiglu) + 2 * tokens * h * config.vocab_size

    pairs = causal_pairs(seq_len, config.sliding_window)
    scores = values = config.num_hidden_layers * 2 * batch * heads * pairs * d
    return 3 * weights + 4 * scores + 3 * values


def causal_pairs(seq_len: int, sliding_window: int | None) -> int:
    """Query-key pairs one head attends over a causal sequence of `seq_len` tokens: S(S+1)/2, or with a window
    W < S the band W(W+1)/2 + (S−W)·W."""
    if sliding_window is None or sliding_window >= seq_len:
        return seq_len * (seq_len + 1) // 2
    return sliding_window * (sliding_window + 1) // 2 + (seq_len - sliding_window) * sliding_window
