"""Floating-point operations, 2 per multiply-add, of matrix products only.

Counted: every weight matmul (projections, experts, router, LM head) and the two attention matmuls (scores Q·Kᵀ and
the weighted sum P·V). Not counted: norms, softmax, activations, RoPE, residual adds, bias adds and the router's
top-k — each is O(T·h) element-wise work, a small fraction of the matmuls, and also absent from torch's
`FlopCounterMode` (which counts mm/bmm/addmm/SDPA only), the counter this is validated against.

Attention conventions (both always reported):
* `dense`: every one of the S×S query-key pairs, as unmasked kernels compute and `FlopCounterMode` counts.
* `causal`: only the unmasked pairs — the causal triangle S(S+1)/2, cut further to a band by a sliding window.

Backward (`backward_flops`): 2 × forward for every weight matmul, and for the attention core 3 × the scores and
2 × the values with a fused (FlashAttention-style) kernel, which recomputes the scores, or 2 × both with the math
path. These are the counts `python -m profiler validate` measures on the real modules (docs/counting.md).
"""

from __future__ import annotations

from complexity.inputs import require_int
from profiler.arch import ArchSpec, AttentionSpec, LayerGroup
from profiler.formulas.params import expert_params, shared_gate_params

CONVENTIONS = ("dense", "causal")
RECOMPUTE = ("none", "selective", "full")
ATTENTION_KERNELS = ("fused", "math")
LAYER_COMPONENTS = ("attention_qkv", "attention_scores", "attention_values", "attention_out", "mlp", "router")
COMPONENTS = LAYER_COMPONENTS + ("lm_head",)


def attended_pairs(seq_len: int, convention: str, window: int | None = None) -> int:
    """Query-key pairs of one head over a sequence of S tokens.

    dense: S². causal: Σ_{i<S} min(i+1, W) = S(S+1)/2 without a window (or W ≥ S), else W(W+1)/2 + (S-W)·W, where a
    query sees itself and W-1 earlier keys (Beltagy et al. 2020 "Longformer" §3.1; Jiang et al. 2023 "Mistral 7B" §2).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention={convention!r} is not one of {CONVENTIONS}")
    if convention == "dense":
        return seq_len * seq_len
    if window is None or window >= seq_len:
        return seq_len * (seq_len + 1) // 2
    return window * (window + 1) // 2 + (seq_len - window) * window


def qkv_weights(att: AttentionSpec, hidden: int) -> int:
    """Multiply-adds per token of the query/key/value projections (bias-free weight count).

    Standard: h·(H + 2·KV)·d (GQA/MQA shrink the k and v terms; Ainslie et al. 2023). MLA, computed in its
    explicit (non-absorbed) form: h·r_q + r_q·H·d_qk (or h·H·d_qk) + h·(r_kv + d_rope) + r_kv·H·(d_nope + d_v)
    (DeepSeek-V2, arXiv:2405.04434 §2.1). Both are the weight matrices of `AttentionSpec.weight_shapes` before
    o_proj (`AttentionSpec.qkv_matrices`)."""
    return att.qkv_matrices(hidden)


def mlp_weights_per_token(group: LayerGroup, hidden: int) -> int:
    """Multiply-adds per token of the MLP: the experts it visits (k of E for MoE, 1 of E token-routed, the MLP
    itself when dense) plus shared experts and Qwen2-MoE's [1, h] shared-expert gate; weight counts without biases.
    A fused gate_up (Phi-3) is the same two products in one."""
    mlp = group.mlp
    one = expert_params(mlp.intermediate_size, hidden, mlp.gated, bias=False)
    shared = expert_params(mlp.shared_intermediate_size, hidden, mlp.gated, bias=False) if mlp.num_shared_experts else 0
    return mlp.experts_per_token * one + mlp.num_shared_experts * shared + shared_gate_params(mlp, hidden)


def layer_forward_flops(group: LayerGroup, hidden: int, batch: int, seq_len: int, convention: str) -> dict[str, int]:
    """Forward FLOPs of one layer over B sequences of S tokens (T = B·S), by component:
    attention_qkv 2T·qkv_weights; attention_scores 2B·H·pairs·d_qk; attention_values 2B·H·pairs·d_v;
    attention_out 2T·H·d_v·h; mlp 2T·mlp_weights_per_token; router 2T·h·E (MoE only)."""
    att, tokens = group.attention, batch * seq_len
    pairs = attended_pairs(seq_len, convention, att.sliding_window)
    return {
        "attention_qkv": 2 * tokens * qkv_weights(att, hidden),
        "attention_scores": 2 * batch * att.num_heads * pairs * att.head_dim,
        "attention_values": 2 * batch * att.num_heads * pairs * att.v_head_dim,
        "attention_out": 2 * tokens * att.num_heads * att.v_head_dim * hidden,
        "mlp": 2 * tokens * mlp_weights_per_token(group, hidden),
        "router": 2 * tokens * hidden * group.mlp.num_experts if group.mlp.kind == "moe" else 0,
    }


def lm_head_flops(arch: ArchSpec, tokens: int) -> int:
    """LM head 2·T·h·V — a real matmul even when its weight is tied to the embedding table."""
    return 2 * tokens * arch.hidden_size * arch.vocab_size


def forward_flops(arch: ArchSpec, batch: int, seq_len: int, convention: str = "causal",
                  logit_tokens: int | None = None) -> dict[str, int]:
    """Forward FLOPs by component over all layers, for B sequences of S tokens; the LM head runs on
    `logit_tokens` tokens (default all B·S, as in training)."""
    require_int("batch", batch)
    require_int("seq_len", seq_len)
    total = dict.fromkeys(COMPONENTS, 0)
    for group in arch.layer_groups:
        for name, flops in layer_forward_flops(group, arch.hidden_size, batch, seq_len, convention).items():
            total[name] += group.count * flops
    total["lm_head"] = lm_head_flops(arch, batch * seq_len if logit_tokens is None else logit_tokens)
    return total


def backward_flops(forward: dict[str, int], attention_kernel: str = "fused") -> dict[str, int]:
    """Backward FLOPs by component, from the forward's (either attention convention).

    Weight matmuls (attention_qkv, attention_out, mlp, router, lm_head): 2 × forward. Y = X·W needs dX = dY·Wᵀ
    and dW = Xᵀ·dY, each as large as the forward product (Kaplan et al. 2020, arXiv:2001.08361 §2.1). The first
    layer's dX is included: it is computed whenever the embedding table is trained, as the counter shows. The
    embedding lookup and its gradient (a gather and a scatter-add) are no matmuls and appear in no component.

    Attention core, per the kernel that ran it:
    * `fused` (PyTorch's CPU flash kernel; CUDA flash, memory-efficient and cuDNN kernels): the kernel stores no
      S×S probabilities, so its backward recomputes the scores S = Q·Kᵀ, then computes dV = Pᵀ·dO, dP = dO·Vᵀ,
      dQ = dS·K and dK = dSᵀ·Q (Dao et al. 2022, arXiv:2205.14135, algorithm 4): three products shaped like the
      scores and two like the values, i.e. backward scores = 3 × forward scores, values = 2 × forward values
      (2.5 × the attention forward when d_qk = d_v).
    * `math` (eager attention, PyTorch's decomposed SDPA on meta tensors or when no fused kernel takes the
      shapes, e.g. MLA's d_qk ≠ d_v on CPU): the probabilities are stored, so dV, dP, dQ, dK: 2 × each.
    """
    if attention_kernel not in ATTENTION_KERNELS:
        raise ValueError(f"attention_kernel={attention_kernel!r} is not one of {ATTENTION_KERNELS}")
    backward = {name: 2 * flops for name, flops in forward.items()}
    if attention_kernel == "fused":
        backward["attention_scores"] = 3 * forward["attention_scores"]
    return backward


def recompute_flops(forward: dict[str, int], mode: str) -> int:
    """Extra forward work of activation recomputation (Korthikanti et al. 2022, arXiv:2205.05198 §4-5):
    `none` 0; `selective` the attention core (scores and weighted sum) again; `full` every layer's forward again
    (the LM head is not recomputed)."""
    if mode not in RECOMPUTE:
        raise ValueError(f"recompute={mode!r} is not one of {RECOMPUTE}")
    if mode == "none":
        return 0
    if mode == "selective":
        return forward["attention_scores"] + forward["attention_values"]
    return sum(forward[name] for name in LAYER_COMPONENTS)


def train_step_flops(arch: ArchSpec, batch: int, seq_len: int, convention: str = "causal",
                     recompute: str = "none", attention_kernel: str = "fused") -> int:
    """forward + backward (`backward_flops`) + recomputation, for one micro-batch of B×S tokens."""
    forward = forward_flops(arch, batch, seq_len, convention)
    backward = backward_flops(forward, attention_kernel)
    return sum(forward.values()) + sum(backward.values()) + recompute_flops(forward, recompute)


def prefill_flops(arch: ArchSpec, batch: int, prompt_len: int) -> dict[str, int]:
    """Prefill of B prompts of length P: a causal forward pass whose LM head runs on the last position only
    (the only logits generation needs)."""
    return forward_flops(arch, batch, prompt_len, "causal", logit_tokens=batch)


def decode_flops(arch: ArchSpec, batch: int, context: int) -> dict[str, int]:
    """FLOPs to generate one token per sequence with C tokens already in the KV cache: every projection, expert
    and the LM head once per sequence, and attention of the new query over min(C + 1, W) keys (its own and the
    cached ones, cut to the window). MLA is counted in its explicit form with a full K/V cache; the weight-absorbed
    form used with a latent cache trades these FLOPs differently (DeepSeek-V2 §2.1.2)."""
    require_int("batch", batch)
    require_int("context", context, minimum=0)
    total = dict.fromkeys(COMPONENTS, 0)
    for group in arch.layer_groups:
        att = group.attention
        keys = att.attended_keys(context)
        one_token = layer_forward_flops(group, arch.hidden_size, batch, 1, "dense")
        one_token["attention_scores"] = 2 * batch * att.num_heads * keys * att.head_dim
        one_token["attention_values"] = 2 * batch * att.num_heads * keys * att.v_head_dim
        for name, flops in one_token.items():
            total[name] += group.count * flops
    total["lm_head"] = lm_head_flops(arch, batch)
    return total


def six_n(params: int, tokens: int = 1) -> int:
    """6·N·D training FLOPs for N parameters and D tokens (Kaplan et al. 2020 §2.1: 2N forward + 4N backward per
    token, attention's context-dependent term dropped)."""
    return 6 * params * tokens


def palm_flops_per_token(arch: ArchSpec, params: int, seq_len: int) -> int:
    """6N + 12·L·H·Q·T training FLOPs per token (Chowdhery et al. 2022, PaLM, Appendix B), T the sequence length,
    Q the head width: it adds the dense (unmasked) attention matmuls to 6N. Summed over layer groups, with
    12·H·Q written as 6·H·(d_qk + d_v) so MLA's unequal widths are honoured."""
    return 6 * params + sum(6 * g.count * g.attention.num_heads * (g.attention.head_dim + g.attention.v_head_dim)
                            * seq_len for g in arch.layer_groups)
