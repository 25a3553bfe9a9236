"""Memory in bytes: weights, gradients, optimizer state, activations, KV cache, and the peaks they add up to.

Training precision follows `dtype`: float32 trains in full precision; bfloat16/float16 means mixed precision in
the style of Micikevicius et al. 2018 ("Mixed Precision Training") and ZeRO (Rajbhandari et al. 2020, §3.1):
16-bit weights and gradients, an fp32 master copy of the weights, fp32 optimizer moments — 2 + 2 + 4 + 8 = 16
bytes per parameter with Adam(W).
"""

from __future__ import annotations

from complexity.inputs import require_int
from profiler.arch import ArchSpec, AttentionSpec, LayerGroup
from profiler.formulas.flops import RECOMPUTE
from profiler.formulas.params import count_params, embedding_params, parameter_tensor_sizes

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "float64": 8}
# A KV cache may also be stored in fp8 (E4M3, one scale per tensor, as vLLM's fp8 cache; the scales not counted).
KV_DTYPE_BYTES = {**DTYPE_BYTES, "float8": 1}
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


def optimizer_state_bytes(params: int, optimizer: str, dtype: str, master_weights: bool = True) -> int:
    """`optimizer_bytes` (fp32 moments, and a master copy under 16-bit), or for pure 16-bit training
    (`master_weights=False` with a 16-bit dtype: torch's optimizers on 16-bit parameters) the moments in the
    parameters' dtype and no master copy."""
    state = optimizer_bytes(params, optimizer, dtype)  # (also checks the optimizer's name)
    if master_weights or dtype_bytes(dtype) >= FP32:
        return state
    return OPTIMIZER_STATES[optimizer] * params * dtype_bytes(dtype)


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
        # their 1/rms: one per head and token, or one per token for a full-width norm (OLMo 2, OLMoE)
        stats += heads + kv_heads if att.qk_norm_scope == "head" else 2
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
    gathered input row (h) per visited expert, MoE its E router logits; a shared-expert gate (Qwen2-MoE) the shared
    expert's output and the gate's sigmoid (h + 1) for their product."""
    mlp = group.mlp
    per_width = 4 if mlp.gated else 2
    routed = mlp.experts_per_token * per_width * mlp.intermediate_size
    shared = mlp.num_shared_experts * per_width * mlp.shared_intermediate_size
    dispatch = mlp.experts_per_token * hidden if mlp.kind != "dense" else 0
    router = mlp.num_experts if mlp.kind == "moe" else 0
    gate = hidden + 1 if mlp.shared_expert_gate else 0
    return routed + shared + dispatch + router + gate


def layer_saved_bytes_per_token(group: LayerGroup, hidden: int, act_bytes: int, norms: int = 2,
                                norm_inputs: int = 2) -> int:
    """Bytes per token one layer of an SDPA implementation keeps for backward: the norms' inputs and outputs (the
    usual two pre-norms: 4h; in general `norm_inputs` distinct inputs and `norms` outputs, h each: a parallel
    block's two input norms read one tensor, Gemma 2/3 have 4 norms), attention (`_attention_saved`), MLP
    (`_mlp_saved`), and each norm's fp32 1/rms."""
    att_elements, att_stats = _attention_saved(group.attention)
    elements = (norms + norm_inputs) * hidden + att_elements + _mlp_saved(group, hidden)
    return elements * act_bytes + (att_stats + norms) * FP32


def autocast_layer_bytes_per_token(group: LayerGroup, hidden: int, low: int, norms: int = 2,
                                   norm_inputs: int = 2) -> int:
    """Bytes per token one layer keeps for backward under autocast — fp32 weights and residual stream, matmuls and
    attention in a 16-bit dtype of `low` bytes (torch.autocast) — in the zoo's implementation:

    * fp32: the norms' distinct inputs (the residual stream: 2h for two pre-norms; `norm_inputs`·h in general) and
      the norms', QK-norms' and attention's statistics;
    * 16-bit: every projection's own cast of its input (autocast casts an activation at each call: q, k and v 3h,
      a fused qkv h, MLA's two input projections 2h; gate and up 2h per visited or shared expert, a fused gate_up
      or a plain MLP h, a router h, a shared-expert gate h), then what fp32 training keeps too, at 16 bits
      (`_attention_saved`, `_mlp_saved` without the dispatched input row, which autocast's casts replace).
    The norms' outputs are fp32 and, consumed only through those casts, not kept."""
    att, mlp = group.attention, group.mlp
    att_elements, att_stats = _attention_saved(att)
    projection_casts = (2 if att.is_mla else 1 if att.fused_qkv else 3) * hidden
    per_input = 2 if mlp.gated and not mlp.fused_gate_up else 1
    mlp_casts = per_input * hidden * (mlp.experts_per_token + mlp.num_shared_experts) \
        + (hidden if mlp.kind == "moe" else 0) + (hidden if mlp.shared_expert_gate else 0)
    dispatch = mlp.experts_per_token * hidden if mlp.kind != "dense" else 0
    low_elements = projection_casts + att_elements + mlp_casts + _mlp_saved(group, hidden) - dispatch
    return low_elements * low + (norm_inputs * hidden + att_stats + norms) * FP32


def head_saved_bytes(arch: ArchSpec, tokens: int, act_bytes: int) -> int:
    """Final norm input and output (2h) plus the logits (V, activation dtype) and the fp32 log-softmax that
    cross-entropy keeps (V · 4 bytes), per token; a logit soft-cap (Gemma 2) also keeps its tanh's output (V)."""
    softcap = arch.vocab_size * act_bytes if arch.final_logit_softcap is not None else 0
    return tokens * (2 * arch.hidden_size * act_bytes + arch.vocab_size * (act_bytes + FP32) + softcap)


def layers_activation_bytes(arch: ArchSpec, micro_batch: int, seq_len: int, dtype: str,
                            recompute: str = "none", autocast: str | None = None) -> int:
    """Bytes the decoder layers keep for backward in an implementation like the zoo's: fused SDPA (no S×S kept),
    RMSNorm, SwiGLU, GQA, token-routed or MoE MLP, no dropout, activations in `dtype`; the other families'
    structure through their fields (norm positions, fused projections, QK-norm width, shared-expert gate). Not
    modelled: eager attention's stored S×S probabilities (Gemma 2's soft-capped scores need eager attention in
    transformers), LayerNorm's second statistic, dropout masks.

    none / selective: Σ_layers T·layer_saved_bytes_per_token (selective recomputation has nothing left to save:
    SDPA already recomputes the scores in its backward). full: each layer keeps only its input (T·h) and the layer
    being back-propagated holds its full set once (Chen et al. 2016, "Training Deep Nets with Sublinear Memory
    Cost"). T = micro_batch · seq_len. With `autocast` (a 16-bit dtype) each layer keeps
    `autocast_layer_bytes_per_token` instead, and a layer's input is the fp32 residual stream.
    """
    if recompute not in RECOMPUTE:
        raise ValueError(f"recompute={recompute!r} is not one of {RECOMPUTE}")
    act_bytes, tokens = dtype_bytes(dtype), micro_batch * seq_len
    norms = dict(norms=len(arch.norm_positions), norm_inputs=arch.distinct_norm_inputs)
    if autocast is None:
        per_layer = [(g.count, tokens * layer_saved_bytes_per_token(g, arch.hidden_size, act_bytes, **norms))
                     for g in arch.layer_groups]
    else:
        per_layer = [(g.count, tokens * autocast_layer_bytes_per_token(g, arch.hidden_size, dtype_bytes(autocast),
                                                                       **norms))
                     for g in arch.layer_groups]
    if recompute == "full":
        return arch.num_layers * tokens * arch.hidden_size * act_bytes + max(size for _, size in per_layer)
    return sum(count * size for count, size in per_layer)


def implementation_activation_bytes(arch: ArchSpec, micro_batch: int, seq_len: int, dtype: str,
                                    recompute: str = "none") -> int:
    """Activation bytes for an implementation like the zoo's: the layers' (`layers_activation_bytes`) and the
    head's (`head_saved_bytes`: final norm, logits, fp32 log-softmax), all alive at once."""
    return (layers_activation_bytes(arch, micro_batch, seq_len, dtype, recompute)
            + head_saved_bytes(arch, micro_batch * seq_len, dtype_bytes(dtype)))


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


def rope_table_bytes(arch: ArchSpec) -> int:
    """A cached RoPE table (`ArchSpec.rope_table_cached`, the zoo's): fp32 cos and sin for every position,
    2 · max_position_embeddings · head_dim · 4 bytes, built on the first forward and kept (transformers recomputes
    cos/sin for the positions of each call instead, a transient that is not counted); 0 for learned positions and
    implementations that keep no table."""
    if not arch.rope_table_cached or arch.learned_positions:
        return 0
    width = max(g.attention.rope_width for g in arch.layer_groups)
    return 2 * arch.max_position_embeddings * width * FP32


def model_state_bytes(arch: ArchSpec, dtype: str) -> int:
    """What a loaded model keeps between calls: its weights (`weight_bytes` of every parameter) + a cached RoPE
    table (`rope_table_bytes`)."""
    return weight_bytes(count_params(arch).total, dtype) + rope_table_bytes(arch)


def training_state_bytes(arch: ArchSpec, dtype: str, optimizer: str = "adamw", master_weights: bool = True,
                         gradients: bool = False) -> int:
    """What training keeps from one step to the next: `model_state_bytes` + the optimizer state
    (`optimizer_state_bytes`: moments, 16-bit's master copy), + with `gradients` the last step's gradients
    (N · bytes(dtype)), alive from the end of its backward until `zero_grad(set_to_none=True)` in the next step."""
    params = count_params(arch).total
    state = model_state_bytes(arch, dtype) + optimizer_state_bytes(params, optimizer, dtype, master_weights)
    return state + (gradient_bytes(params, dtype) if gradients else 0)


# ------------------------------------------------------------------------------------------ training timeline
# Which optimizer implementation torch picks by default on each device (torch.optim.optimizer
# `_default_to_fused_or_foreach`: the multi-tensor "foreach" kernels where every parameter is on a CUDA device,
# the single-tensor loop elsewhere; MPS has no foreach kernels in `_get_foreach_kernels_supported_devices`).
MEMORY_DEVICES = ("cpu", "cuda", "mps")
# torch.optim implementations (the per-tensor loop, the multi-tensor `_foreach_*` kernels, one fused kernel) and
# each device's default (torch picks foreach only when every parameter is on CUDA; fused only when asked).
OPTIMIZER_IMPLEMENTATIONS = ("single_tensor", "foreach", "fused")
OPTIMIZER_PATHS = {"cpu": "single_tensor", "mps": "single_tensor", "cuda": "foreach"}
TRAINING_PHASES = ("between_steps", "loss", "forward_end", "backward_start", "backward_end", "optimizer_step")


def optimizer_temporary_bytes(tensor_sizes: list[int], optimizer: str, path: str, element_bytes: int = FP32) -> int:
    """Transient bytes an optimizer step allocates on top of the weights, gradients and its state, for parameter
    tensors of `tensor_sizes` numbers of `element_bytes` each (torch 2.13's torch/optim/adam.py and sgd.py; checked
    with the CPU allocator's own events, docs/memory.md):

    * Adam(W), single-tensor loop (`_single_tensor_adam`): the denominator `exp_avg_sq.sqrt() /
      bias_correction2_sqrt` is built out of place, one tensor at a time (the sqrt, then the quotient: 2 × the
      tensor), while the previous tensor's denominator is still bound to the loop's variable: the most of
      2·sᵢ + sᵢ₋₁ over the tensors in the optimizer's order (`tensor_sizes`' order; 2 × the largest when, as in
      most models, the largest follows a small one);
    * Adam(W), foreach (`_multi_tensor_adam`): one copy of every parameter (`_foreach_sqrt` of the whole list);
    * Adam(W) or SGD, fused (`fused=True`: `_fused_adamw_`, `_fused_sgd_`): parameters and state updated in place
      by one kernel, nothing (the CPU allocator's events: 12 bytes of scalars, tests/profiler/formulas);
    * SGD (with or without momentum): updates in place, 0 single-tensor; one copy of the parameters foreach.
    """
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(f"optimizer={optimizer!r} is not one of {sorted(OPTIMIZER_STATES)}")
    if path not in OPTIMIZER_IMPLEMENTATIONS:
        raise ValueError(f"path={path!r} is not one of {OPTIMIZER_IMPLEMENTATIONS}")
    if path == "fused":
        return 0
    if path == "foreach":
        return element_bytes * sum(tensor_sizes)
    if optimizer not in ("adamw", "adam"):
        return 0
    return element_bytes * max(2 * size + previous for size, previous in zip(tensor_sizes, [0, *tensor_sizes]))


def training_timeline(arch: ArchSpec, micro_batch: int, seq_len: int, dtype: str = "float32",
                      optimizer: str = "adamw", recompute: str = "none", grad_accum: int = 1,
                      device: str = "cuda", autocast: str | None = None, master_weights: bool = True,
                      implementation: str | None = None) -> dict[str, int]:
    """Bytes of live tensors at each phase of one optimizer step of an implementation like the zoo's (next-token
    cross-entropy over the whole vocabulary, gradients released by `zero_grad(set_to_none=True)` between steps),
    for one micro-batch of T = micro_batch · seq_len tokens. The step's peak is the largest phase — a maximum over
    phases, not a sum of every term. With N parameters, a = bytes(dtype), V the vocabulary, h the width:

    * between_steps  = weights + optimizer state + a cached RoPE table (`training_state_bytes`);
    * loss           = between + held gradients + layers' activations + the final norm's input and output
                       (2·T·h·a) + the logits (T·V·a; in 16-bit also their fp32 copy, T·V·4) + the fp32
                       log-softmax (T·V·4) that cross-entropy computes from them;
    * forward_end    = the same without the logits, which nothing keeps (cross-entropy saves its log-softmax);
    * backward_start = forward_end + the NLL's gradient table and the log-softmax's input gradient, 2·T·V·4 (in
                       16-bit that gradient's cast back, T·V·a, comes once the first two are freed: less);
    * backward_end   = between + gradients (N·a; `training_state_bytes` with gradients) + a tied head's two V·h
                       gradient tables (the embedding's and the head's, both alive while they are summed into the
                       shared weight's gradient);
    * optimizer_step = between + gradients + `optimizer_temporary_bytes` of `implementation` (None: the
                       device's default, `OPTIMIZER_PATHS`).

    "Held gradients" are those of the earlier micro-batches: N·a when grad_accum > 1, else none. Activations are
    freed as the backward proceeds while gradients appear, so the two ends of the backward bound it.

    `autocast` (bfloat16 or float16; `dtype` must then be float32, the weights'): the layers keep
    `autocast_layer_bytes_per_token`, the final norm its fp32 input and the head its 16-bit input cast, the
    forward also keeps a 16-bit copy of every matrix weight (autocast casts each once per forward and the matmuls
    save it: N less the embedding table and norms, plus the head's V·h), the logits and their gradient are 16-bit
    (a = the autocast dtype's bytes in the loss terms), and a tied head's gradient reaches the shared weight
    through its copy, apart from the embedding's: one V·h fp32 table at the end of the backward instead of two.
    `master_weights=False` with a 16-bit dtype is pure 16-bit training (torch's optimizers on 16-bit parameters):
    the moments and the optimizer's temporaries in the parameters' dtype, no fp32 master copy.
    Checked against the CPU allocator's events (scripts/check_memory.py, docs/memory.md)."""
    require_int("grad_accum", grad_accum)
    if device not in MEMORY_DEVICES:
        raise ValueError(f"device={device!r} is not one of {MEMORY_DEVICES}")
    if autocast is not None and (dtype != "float32" or dtype_bytes(autocast) >= FP32):
        raise ValueError(f"autocast={autocast!r} needs float32 weights (dtype={dtype!r}) and a 16-bit autocast "
                         "dtype (bfloat16 or float16)")
    tokens = micro_batch * seq_len
    a = dtype_bytes(autocast or dtype)  # the activations' and logits' bytes
    params = count_params(arch).total
    pure = not master_weights and dtype_bytes(dtype) < FP32
    between = training_state_bytes(arch, dtype, optimizer, master_weights)
    with_gradients = training_state_bytes(arch, dtype, optimizer, master_weights, gradients=True)
    held = gradient_bytes(params, dtype) if grad_accum > 1 else 0
    table = tokens * arch.vocab_size * FP32  # one fp32 T×V table
    logits = tokens * arch.vocab_size * a
    upcast = table if a < FP32 else 0  # cross-entropy runs in fp32: a 16-bit model's logits are copied up
    layers = layers_activation_bytes(arch, micro_batch, seq_len, dtype, recompute, autocast)
    head_table = arch.vocab_size * arch.hidden_size  # V·h
    if autocast is None:
        final_norm, weight_copies = 2 * tokens * arch.hidden_size * a, 0
        tied_tables = 2 * head_table * a if arch.tie_word_embeddings else 0
    else:
        final_norm = tokens * arch.hidden_size * (FP32 + a)
        matrices = params - embedding_params(arch) - count_params(arch).components["norms"] \
            + (head_table if arch.tie_word_embeddings else 0)
        weight_copies = matrices * a
        tied_tables = head_table * FP32 if arch.tie_word_embeddings else 0
    forward_end = between + held + layers + weight_copies + final_norm + table
    temporaries = optimizer_temporary_bytes(parameter_tensor_sizes(arch), optimizer,
                                            implementation or OPTIMIZER_PATHS[device],
                                            dtype_bytes(dtype) if pure else FP32)
    return {
        "between_steps": between,
        "loss": forward_end + logits + upcast,
        "forward_end": forward_end,
        "backward_start": forward_end + 2 * table,
        "backward_end": with_gradients + tied_tables,
        "optimizer_step": with_gradients + temporaries,
    }


# ------------------------------------------------------------------------------------------ inference
def kv_elements_per_token(att: AttentionSpec) -> int:
    """Cached numbers per token and layer: KV·(d_k + d_v) for MHA/GQA/MQA (Ainslie et al. 2023); MLA caches its
    latent and the shared RoPE key, r_kv + d_rope (DeepSeek-V2 arXiv:2405.04434 §2.1.2: (d_c + d_h^R)·l)."""
    if att.is_mla:
        return att.kv_lora_rank + att.rope_head_dim
    return att.num_kv_heads * (att.head_dim + att.v_head_dim)


def kv_cache_bytes(arch: ArchSpec, batch: int, context: int, dtype: str) -> int:
    """Σ_layers B · cached_tokens · kv_elements_per_token · bytes(dtype) (`AttentionSpec.cached_tokens`: all C
    tokens, or W - 1 with a sliding window); `dtype` one of `KV_DTYPE_BYTES`."""
    if dtype not in KV_DTYPE_BYTES:
        raise ValueError(f"kv dtype={dtype!r} is not one of {sorted(KV_DTYPE_BYTES)}")
    return sum(g.count * layer_kv_elements(g, batch, context) for g in arch.layer_groups) * KV_DTYPE_BYTES[dtype]


def layer_kv_elements(group: LayerGroup, batch: int, context: int) -> int:
    """Numbers one layer of `group` caches after C tokens: B · cached_tokens(C) · kv_elements_per_token."""
    return batch * group.attention.cached_tokens(context) * kv_elements_per_token(group.attention)


def layer_working_bytes(arch: ArchSpec, tokens: int, dtype: str) -> int:
    """Transient bytes of the largest layer of a no-grad pass over T tokens, per token: the residual and the normed
    input (2h), then the larger of
    * attention: q and k before and after RoPE (rotating builds new tensors, 2·(H + KV)·d_qk), v and the output
      (KV·d_v + H·d_v);
    * MLP: per visited expert its gathered input and output rows (2h, routed kinds only) and three intermediates
      alive at once in down(act(gate(x)) · up(x)) — act(gate), up and their product (3·I; a plain MLP 2·I) — and
      the same for each shared expert.
    An estimate from the ops' live tensors: allocator slack and kernel workspaces are not included."""
    h = arch.hidden_size

    def live(group: LayerGroup) -> int:
        att, mlp = group.attention, group.mlp
        attention = 2 * (att.num_heads + att.kernel_kv_heads) * att.head_dim \
            + (att.kernel_kv_heads + att.num_heads) * att.v_head_dim
        per_width = 3 if mlp.gated else 2
        rows = 2 * h if mlp.kind != "dense" else 0
        mlp_live = mlp.experts_per_token * (rows + per_width * mlp.intermediate_size) \
            + mlp.num_shared_experts * per_width * mlp.shared_intermediate_size
        return 2 * h + max(attention, mlp_live)

    return tokens * max(live(g) for g in arch.layer_groups) * dtype_bytes(dtype)


def prefill_working_bytes(arch: ArchSpec, batch: int, prompt_len: int, dtype: str) -> int:
    """Transient bytes of a no-grad prefill: the largest layer's (`layer_working_bytes`, T = B·P) plus fp32
    logits of the last position."""
    return layer_working_bytes(arch, batch * prompt_len, dtype) + batch * arch.vocab_size * FP32


def forward_peak_bytes(arch: ArchSpec, batch: int, seq_len: int, dtype: str) -> int:
    """Peak of a no-grad forward that returns every position's logits (the zoo's and transformers' default):
    `model_state_bytes` (weights, a cached RoPE table) + the larger of the largest layer's working set and the
    head's output, the final norm's output and the logits, T·(h + V)·a."""
    tokens, a = batch * seq_len, dtype_bytes(dtype)
    head = tokens * (arch.hidden_size + arch.vocab_size) * a
    return model_state_bytes(arch, dtype) + max(layer_working_bytes(arch, tokens, dtype), head)


GENERATE_PHASES = ("prefill", "last_decode_step")


def generate_timeline(arch: ArchSpec, batch: int, prompt_len: int, new_tokens: int, dtype: str,
                      kv_dtype: str | None = None) -> dict[str, int]:
    """Bytes of live tensors while generating `new_tokens` tokens after a prompt of P tokens, the LM head on the
    last position only (the zoo's `logits_to_keep=1`, transformers' `logits_to_keep`):

    * prefill          = weights (+ a cached RoPE table: `model_state_bytes`) + KV cache of P tokens
                         + `layer_working_bytes` of B·P tokens + the last position's logits (B·V·a) and their fp32
                         copy (B·V·4);
    * last_decode_step = weights + KV cache of P + N tokens + one layer's cache once more (appending copies that
                         layer's keys and values, as torch.cat does) + the working set and logits of B tokens.

    The cache holds `kv_dtype` numbers (`KV_DTYPE_BYTES`; default: the model's `dtype`, as the zoo's cache).
    """
    require_int("new_tokens", new_tokens, 1)
    kv_dtype = dtype if kv_dtype is None else kv_dtype
    a, weights = dtype_bytes(dtype), model_state_bytes(arch, dtype)
    logits = batch * arch.vocab_size * (a + FP32)
    context = prompt_len + new_tokens
    one_layer = max(layer_kv_elements(g, batch, context) for g in arch.layer_groups) * KV_DTYPE_BYTES[kv_dtype]
    return {
        "prefill": (weights + kv_cache_bytes(arch, batch, prompt_len, kv_dtype)
                    + layer_working_bytes(arch, batch * prompt_len, dtype) + logits),
        "last_decode_step": (weights + kv_cache_bytes(arch, batch, context, kv_dtype) + one_layer
                             + layer_working_bytes(arch, batch, dtype) + logits),
    }


PEAK_MODES = ("train", "forward", "generate")


def predicted_peak_bytes(arch: ArchSpec, mode: str, batch: int, seq_len: int, dtype: str = "float32",
                         device: str = "cuda", new_tokens: int = 32, autocast: str | None = None) -> int:
    """The peak of one call: train = the largest phase of `training_timeline`; forward = `forward_peak_bytes`;
    generate = the largest phase of `generate_timeline` (`seq_len` the prompt)."""
    if mode == "train":
        return max(training_timeline(arch, batch, seq_len, dtype, device=device, autocast=autocast).values())
    if mode == "forward":
        return forward_peak_bytes(arch, batch, seq_len, dtype)
    if mode == "generate":
        return max(generate_timeline(arch, batch, seq_len, new_tokens, dtype).values())
    raise ValueError(f"mode={mode!r} is not one of {PEAK_MODES}")
