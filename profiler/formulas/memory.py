"""Memory in bytes: weights, gradients, optimizer state, activations, KV cache, and the peaks they add up to.

Training precision follows `dtype`: float32 trains in full precision; bfloat16/float16 means mixed precision in
the style of Micikevicius et al. 2018 ("Mixed Precision Training") and ZeRO (Rajbhandari et al. 2020, §3.1):
16-bit weights and gradients, an fp32 master copy of the weights, fp32 optimizer moments — 2 + 2 + 4 + 8 = 16
bytes per parameter with Adam(W).
"""

from __future__ import annotations

from profiler.arch import ArchSpec, AttentionSpec, LayerGroup
from profiler.formulas.flops import RECOMPUTE

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "float64": 8}
# fp32 numbers of state per parameter: Adam(W) keeps first and second moments (Kingma & Ba 2015; Loshchilov &
# Hutter 2019), SGD with momentum one buffer, plain SGD none.
OPTIMIZER_STATES = {"adamw": 2, "adam": 2, "sgd_momentum": 1, "sgd": 0}
FP32 = 4


def dtype_bytes(dtype: str) -> int:
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype={dtype!r} is not one of {sorted(DTYPE_BYTES)}")
    return DTYPE_BYTES[dtype]


def weight_bytes(params: int, dtype: str) -> int:
    """N · bytes(dtype)."""
    return params * dtype_bytes(dtype)


def gradient_bytes(params: int, dtype: str) -> int:
    """One gradient per parameter in the parameters' dtype: N · bytes(dtype). Gradient accumulation adds into this
    same buffer, so it does not grow with the number of micro-batches."""
    return params * dtype_bytes(dtype)


def optimizer_bytes(params: int, optimizer: str, dtype: str) -> int:
    """Optimizer state: fp32 moments (Adam(W) 2, SGD+momentum 1, SGD 0 per parameter) + an fp32 master copy of the
    weights when training in 16-bit (ZeRO, Rajbhandari et al. 2020 §3.1: K = 12 bytes per parameter for Adam)."""
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(f"optimizer={optimizer!r} is not one of {sorted(OPTIMIZER_STATES)}")
    master = FP32 if dtype_bytes(dtype) < FP32 else 0
    return params * (OPTIMIZER_STATES[optimizer] * FP32 + master)


def master_weight_bytes(params: int, dtype: str) -> int:
    """The fp32 master copy alone (included in `optimizer_bytes`): 4N bytes under 16-bit training, else 0."""
    return params * FP32 if dtype_bytes(dtype) < FP32 else 0


# ------------------------------------------------------------------------------------------ activations
def korthikanti_layer_bytes(micro_batch: int, seq_len: int, hidden: int, heads: int, recompute: str = "none") -> int:
    """Activation bytes one transformer layer keeps for backward (Korthikanti et al. 2022, "Reducing Activation
    Recomputation in Large Transformer Models", arXiv:2205.05198, §4.1 eq. 1 and §5):

        none:      s·b·h·(34 + 5·a·s/h)      (the 5·a·s² term is the stored softmax, its dropout mask and output)
        selective: s·b·h·34                  (attention core recomputed)
        full:      2·s·b·h                   (only the layer input kept)

    The formula already counts bytes. Its assumptions: 16-bit activations, 1-byte dropout masks, multi-head
    attention that materialises the a·s×s score matrix, a 4h-wide two-matrix GELU MLP, LayerNorm, no tensor or
    sequence parallelism; embeddings, final norm, LM head and loss are not included.
    """
    if recompute not in RECOMPUTE:
        raise ValueError(f"recompute={recompute!r} is not one of {RECOMPUTE}")
    if recompute == "full":
        return 2 * seq_len * micro_batch * hidden
    # s·b·h·(34 + 5as/h) = 34·sbh + 5·a·s²·b, kept in integers
    score_term = 5 * heads * seq_len * seq_len * micro_batch if recompute == "none" else 0
    return 34 * seq_len * micro_batch * hidden + score_term


def korthikanti_activation_bytes(arch: ArchSpec, micro_batch: int, seq_len: int, recompute: str = "none") -> int:
    """`korthikanti_layer_bytes` summed over the layers (a = each layer's query heads)."""
    return sum(g.count * korthikanti_layer_bytes(micro_batch, seq_len, arch.hidden_size, g.attention.num_heads,
                                                 recompute) for g in arch.layer_groups)


def _attention_saved(att: AttentionSpec) -> tuple[int, int]:
    """(activation-dtype elements, fp32 elements) per token that one attention block saves for backward, with
    fused SDPA (flash / memory-efficient kernels keep Q, K, V, the output and the per-row log-sum-exp, never the
    S×S matrix; Dao et al. 2022 "FlashAttention" §3.1). MLA adds its latents and their norms' inputs."""
    heads, d_qk, d_v = att.num_heads, att.head_dim, att.v_head_dim
    kv_heads = att.kernel_kv_heads
    elements = heads * d_qk + kv_heads * (d_qk + d_v) + heads * d_v  # q, k, v, output (= o_proj input)
    stats = heads  # log-sum-exp per query row
    if att.qk_norm:
        elements += (heads + kv_heads) * d_qk  # q and k before their RMSNorm
        stats += heads + kv_heads  # their 1/rms
    if att.is_mla:
        if att.q_lora_rank is not None:
            elements += 2 * att.q_lora_rank  # latent before and after its norm
            stats += 1
        elements += att.kv_lora_rank + att.rope_head_dim + att.kv_lora_rank
        stats += 1
    return elements, stats


def _mlp_saved(group: LayerGroup, hidden: int) -> int:
    """Activation-dtype elements per token an MLP saves: per visited expert of width I, SwiGLU keeps gate, silu(gate),
    up and their product (4I), a GELU MLP its pre- and post-activation (2I); routed kinds also keep the token's
    gathered input row (h) per visited expert, MoE its E router logits."""
    mlp = group.mlp
    per_width = 4 if mlp.gated else 2
    routed = mlp.experts_per_token * per_width * mlp.intermediate_size
    shared = mlp.num_shared_experts * per_width * mlp.shared_intermediate_size
    dispatch = mlp.experts_per_token * hidden if mlp.kind != "dense" else 0
    router = mlp.num_experts if mlp.kind == "moe" else 0
    return routed + shared + dispatch + router


def layer_saved_bytes_per_token(group: LayerGroup, hidden: int, act_bytes: int) -> int:
    """Bytes per token one layer of an SDPA implementation keeps for backward: both norms' inputs and outputs (4h),
    attention (`_attention_saved`), MLP (`_mlp_saved`), and the norms' fp32 1/rms."""
    att_elements, att_stats = _attention_saved(group.attention)
    elements = 4 * hidden + att_elements + _mlp_saved(group, hidden)
    return elements * act_bytes + (att_stats + 2) * FP32


def head_saved_bytes(arch: ArchSpec, tokens: int, act_bytes: int) -> int:
    """Final norm input and output (2h) plus the logits (V, activation dtype) and the fp32 log-softmax that
    cross-entropy keeps (V · 4 bytes), per token."""
    return tokens * (2 * arch.hidden_size * act_bytes + arch.vocab_size * (act_bytes + FP32))


def implementation_activation_bytes(arch: ArchSpec, micro_batch: int, seq_len: int, dtype: str,
                                    recompute: str = "none") -> int:
    """Activation bytes for an implementation like the zoo's: fused SDPA (no S×S kept), RMSNorm, SwiGLU, GQA,
    token-routed or MoE MLP, no dropout, activations in `dtype`.

    none / selective: Σ_layers T·layer_saved_bytes_per_token + head (selective recomputation has nothing left to
    save: SDPA already recomputes the scores in its backward). full: each layer keeps only its input (T·h) and
    the layer being back-propagated holds its full set once (Chen et al. 2016, "Training Deep Nets with Sublinear
    Memory Cost"). T = micro_batch · seq_len.
    """
    if recompute not in RECOMPUTE:
        raise ValueError(f"recompute={recompute!r} is not one of {RECOMPUTE}")
    act_bytes, tokens = dtype_bytes(dtype), micro_batch * seq_len
    per_layer = [(g.count, tokens * layer_saved_bytes_per_token(g, arch.hidden_size, act_bytes))
                 for g in arch.layer_groups]
    if recompute == "full":
        layers = arch.num_layers * tokens * arch.hidden_size * act_bytes + max(size for _, size in per_layer)
    else:
        layers = sum(count * size for count, size in per_layer)
    return layers + head_saved_bytes(arch, tokens, act_bytes)


def training_bytes(arch: ArchSpec, params: int, micro_batch: int, seq_len: int, dtype: str,
                   optimizer: str = "adamw", recompute: str = "none") -> dict[str, int]:
    """Bytes of a training step's state, by part, and their sum: weights + gradients + optimizer state (with the
    fp32 master copy under 16-bit training) for `params` parameters (the model's, plus any trained alongside it),
    + activations of one micro-batch (`implementation_activation_bytes`). The sum is the steady-state memory of
    the step; transient buffers (vocabulary-sized gradient tables, optimizer temporaries) are not in it."""
    parts = {"weights": weight_bytes(params, dtype), "gradients": gradient_bytes(params, dtype),
             "optimizer": optimizer_bytes(params, optimizer, dtype),
             "activations": implementation_activation_bytes(arch, micro_batch, seq_len, dtype, recompute)}
    return {**parts, "total": sum(parts.values())}


# ------------------------------------------------------------------------------------------ inference
def kv_elements_per_token(att: AttentionSpec) -> int:
    """Cached numbers per token and layer: KV·(d_k + d_v) for MHA/GQA/MQA (Ainslie et al. 2023); MLA caches its
    latent and the shared RoPE key, r_kv + d_rope (DeepSeek-V2 arXiv:2405.04434 §2.1.2: (d_c + d_h^R)·l)."""
    if att.is_mla:
        return att.kv_lora_rank + att.rope_head_dim
    return att.num_kv_heads * (att.head_dim + att.v_head_dim)


def kv_cache_bytes(arch: ArchSpec, batch: int, context: int, dtype: str) -> int:
    """Σ_layers B · cached_tokens · kv_elements_per_token · bytes(dtype) (`AttentionSpec.cached_tokens`: all C
    tokens, or W - 1 with a sliding window)."""
    return sum(g.count * batch * g.attention.cached_tokens(context) * kv_elements_per_token(g.attention)
               for g in arch.layer_groups) * dtype_bytes(dtype)


def prefill_working_bytes(arch: ArchSpec, batch: int, prompt_len: int, dtype: str) -> int:
    """Transient bytes of a no-grad prefill: the largest layer's live tensors for T = B·P tokens (residual and
    normed input 2h, q/k/v and attention output, the visited experts' two widest intermediates) plus fp32
    logits of the last position. An estimate: allocator slack and kernel workspaces are not included."""
    act_bytes, tokens = dtype_bytes(dtype), batch * prompt_len

    def live(group: LayerGroup) -> int:
        att, mlp = group.attention, group.mlp
        attention = (att.num_heads + att.kernel_kv_heads) * (att.head_dim + att.v_head_dim)
        widths = mlp.experts_per_token * mlp.intermediate_size + mlp.num_shared_experts * mlp.shared_intermediate_size
        return 2 * arch.hidden_size + max(attention, 2 * widths)

    return tokens * max(live(g) for g in arch.layer_groups) * act_bytes + batch * arch.vocab_size * FP32
