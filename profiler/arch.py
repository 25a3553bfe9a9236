"""`ArchSpec`: the one architecture description that every formula in `profiler.formulas` reads.

An `ArchSpec` says which weight matrices a decoder-only transformer has and how tokens flow through them; it holds
no tensors. Adapters build one from a zoo `ComplexityConfig` (or a named size) and from a HuggingFace-style
`config.json` of the families in `SUPPORTED_MODEL_TYPES`. Layers that differ (DeepSeek's first dense layers,
Gemma's alternating sliding-window and global layers) are grouped: `layer_groups` is a tuple of (count, attention,
mlp) runs. Facts of one layer that several formulas need (the key/value heads a kernel reads, the keys a decoding
query attends, the tokens a cache holds) are properties of its `AttentionSpec`, derived in one place. Structural
features are fields (pre- and post-norms, parallel attention/MLP, fused projections, partial rotary, QK-norm width,
shared-expert gates, scales and soft-caps), never model_type tests inside the formulas.

Turning a MODEL argument (a size name, a shipped config, a file) into an `ArchSpec` is `profiler.source`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from complexity.config import ComplexityConfig, config_for_size
from complexity.inputs import is_int, is_real, require_int

# rmsnorm: weight only; layernorm: weight and bias, as F.layer_norm (one native kernel); layernorm_eager: the same
# LayerNorm written as tensor code (mean, var, subtract, add eps, sqrt, divide, scale, shift), as models written from
# scratch do (the LLMs-from-scratch book's chapter 4): same parameters, more kernels.
NORMS = ("rmsnorm", "layernorm", "layernorm_eager")
LAYERNORMS = ("layernorm", "layernorm_eager")  # the norms with a bias
MLP_KINDS = ("dense", "moe", "token_routed")
# Where a layer normalises: before attention / the MLP (pre-norm), after them before the residual add (post-norm).
NORM_POSITIONS = ("attention_in", "attention_out", "mlp_in", "mlp_out")
QK_NORM_SCOPES = ("head", "full")
LAYER_TYPES = ("full_attention", "sliding_attention")  # transformers' `layer_types` values for attention layers
DROPOUT_FIELDS = ("embedding_dropout", "attention_dropout", "residual_dropout")  # ArchSpec's probabilities


@dataclass(frozen=True)
class AttentionSpec:
    """Self-attention of one layer.

    Standard attention (MHA when `num_kv_heads == num_heads`, GQA when fewer, MQA when 1): q_proj [H*d_qk, h],
    k_proj and v_proj [KV*d_qk, h] and [KV*d_v, h], o_proj [h, H*d_v]; `fused_qkv` stores the three as one matrix
    [(H + 2KV)*d, h] (Phi-3's qkv_proj, Falcon's and GPT-NeoX's query_key_value): same numbers, one product.
    Multi-head latent attention (MLA, DeepSeek-V2/V3) when `kv_lora_rank` is set: queries through an optional
    low-rank path h -> q_lora_rank -> H*d_qk, keys and values through a shared latent h -> kv_lora_rank (+ a
    decoupled RoPE key of `rope_head_dim` shared by all heads) -> H*(d_qk - rope_head_dim + d_v).
    """

    num_heads: int
    num_kv_heads: int
    head_dim: int  # query/key width per head (MLA: nope + rope part)
    v_head_dim: int
    qkv_bias: bool = False  # biases on q, k, v (MLA: on its two input projections q_a_proj and kv_a_proj_with_mqa)
    o_bias: bool = False
    qk_norm: bool = False  # RMSNorm on queries and keys before RoPE
    # "head": one norm over head_dim shared by all heads, weights [d] (Qwen3, Gemma 3, the zoo); "full": over the
    # whole projection, weights [H*d] and [KV*d] (OLMo 2, OLMoE)
    qk_norm_scope: str = "head"
    sliding_window: int | None = None  # a query sees itself and sliding_window - 1 earlier keys
    q_lora_rank: int | None = None  # MLA only; None: direct q_proj
    kv_lora_rank: int | None = None  # set: MLA
    rope_head_dim: int = 0  # MLA's decoupled RoPE key width
    fused_qkv: bool = False  # q, k and v stored as one matrix (a naming and launch difference only)
    rotary_dim: int | None = None  # channels per head RoPE rotates: None all of head_dim, 0 none (ALiBi, learned)
    logit_softcap: float | None = None  # scores -> c * tanh(scores / c) before the softmax (Gemma 2)

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def kind(self) -> str:
        if self.is_mla:
            return "mla"
        if self.num_kv_heads == self.num_heads:
            return "mha"
        return "mqa" if self.num_kv_heads == 1 else "gqa"

    @property
    def kernel_kv_heads(self) -> int:
        """Key/value heads the attention kernel reads: KV for MHA/GQA/MQA; MLA in its explicit form expands its
        latent into per-head keys and values, so H."""
        return self.num_heads if self.is_mla else self.num_kv_heads

    @property
    def rope_width(self) -> int:
        """Channels per head that RoPE rotates: all of head_dim, `rotary_dim` of it (partial rotary: GPT-NeoX's
        rotary_pct, Phi's partial_rotary_factor; 0 without RoPE), or MLA's decoupled RoPE part."""
        if self.is_mla:
            return self.rope_head_dim
        return self.head_dim if self.rotary_dim is None else self.rotary_dim

    def weight_shapes(self, hidden: int) -> dict[str, tuple[int, ...]]:
        """Every parameter tensor of the layer's attention, by transformers' name, shape as stored ([out, in]).

        Standard: q_proj [H·d_qk, h], k_proj [KV·d_qk, h], v_proj [KV·d_v, h] (+ biases) — or one qkv_proj
        [(H + 2KV)·d, h] when fused —, q_norm and k_norm [d_qk] with head-wise QK-norm or [H·d_qk] and [KV·d_qk]
        with full-width QK-norm, o_proj [h, H·d_v] (+ bias). MLA (DeepSeek-V2 arXiv:2405.04434 §2.1, V3 §2.1.1):
        q_proj [H·d_qk, h], or q_a_proj [r_q, h] + q_a_layernorm [r_q] + q_b_proj [H·d_qk, r_q] with a query
        rank; kv_a_proj_with_mqa [r_kv + d_rope, h], kv_a_layernorm [r_kv], kv_b_proj [H·(d_nope + d_v), r_kv];
        o_proj; `qkv_bias` puts biases on q_a_proj and kv_a_proj_with_mqa only, as transformers does. (GPT-2
        stores q, k and v fused in one c_attn, Falcon and GPT-NeoX in query_key_value; the numbers are the same.)"""
        heads, d_qk, d_v = self.num_heads, self.head_dim, self.v_head_dim
        shapes: dict[str, tuple[int, ...]] = {}

        def linear(name: str, d_out: int, d_in: int, bias: bool = False) -> None:
            shapes[name] = (d_out, d_in)
            if bias:
                shapes[f"{name}.bias"] = (d_out,)

        if self.is_mla:
            if self.q_lora_rank is None:
                linear("q_proj", heads * d_qk, hidden)
            else:
                linear("q_a_proj", self.q_lora_rank, hidden, self.qkv_bias)
                shapes["q_a_layernorm"] = (self.q_lora_rank,)
                linear("q_b_proj", heads * d_qk, self.q_lora_rank)
            linear("kv_a_proj_with_mqa", self.kv_lora_rank + self.rope_head_dim, hidden, self.qkv_bias)
            shapes["kv_a_layernorm"] = (self.kv_lora_rank,)
            linear("kv_b_proj", heads * (d_qk - self.rope_head_dim + d_v), self.kv_lora_rank)
        else:
            kv = self.num_kv_heads
            if self.fused_qkv:
                linear("qkv_proj", heads * d_qk + kv * (d_qk + d_v), hidden, self.qkv_bias)
            else:
                linear("q_proj", heads * d_qk, hidden, self.qkv_bias)
                linear("k_proj", kv * d_qk, hidden, self.qkv_bias)
                linear("v_proj", kv * d_v, hidden, self.qkv_bias)
            if self.qk_norm:
                full = self.qk_norm_scope == "full"
                shapes["q_norm"] = (heads * d_qk if full else d_qk,)
                shapes["k_norm"] = (kv * d_qk if full else d_qk,)
        linear("o_proj", hidden, heads * d_v, self.o_bias)
        return shapes

    def qkv_matrices(self, hidden: int) -> int:
        """Weights of the query/key/value path's matrices (every 2-D weight but o_proj): the multiply-adds per
        token of the projections before attention."""
        return sum(shape[0] * shape[1] for name, shape in self.weight_shapes(hidden).items()
                   if len(shape) == 2 and name != "o_proj")

    def attended_keys(self, context: int) -> int:
        """Keys one new query attends after C cached tokens: itself and the cache, cut to the window,
        min(C + 1, W)."""
        return context + 1 if self.sliding_window is None else min(context + 1, self.sliding_window)

    def cached_tokens(self, context: int) -> int:
        """Tokens a layer's cache holds after C tokens: all C, or at most W - 1 with a sliding window (the next
        query sees itself and W - 1 earlier keys; transformers' sliding-window cache keeps W, one more)."""
        return context if self.sliding_window is None else min(context, self.sliding_window - 1)


@dataclass(frozen=True)
class MLPSpec:
    """Feed-forward block of one layer.

    `dense`: one MLP of width `intermediate_size`. `moe`: `num_experts` experts of width `intermediate_size`, a
    linear router [E, h] choosing `experts_per_token`, plus `num_shared_experts` always-on experts of width
    `shared_intermediate_size` (with `shared_expert_gate`, their output scaled by sigmoid(x·g), g a [1, h]
    linear: Qwen2-MoE). `token_routed` (the zoo): `num_experts` experts of width `intermediate_size`, no router
    (the expert is a function of the token id), exactly one expert per token.
    `gated`: a GLU (gate, up, down: three matrices; SwiGLU with `activation` silu, GeGLU with gelu) rather than two
    (GPT-2's, Falcon's, GPT-NeoX's and StarCoder2's GELU MLP). `fused_gate_up`: gate and up stored as one
    [2I, h] matrix (Phi-3's gate_up_proj): same numbers, one product.
    """

    kind: str
    intermediate_size: int  # width of one expert (of the whole MLP when dense)
    gated: bool = True
    bias: bool = False
    num_experts: int = 1
    experts_per_token: int = 1
    num_shared_experts: int = 0
    shared_intermediate_size: int = 0
    router_bias: bool = False  # DeepSeek-V3's score-correction bias, E numbers per layer
    activation: str = "silu"
    fused_gate_up: bool = False
    shared_expert_gate: bool = False  # Qwen2-MoE: a [1, h] linear whose sigmoid scales the shared experts


@dataclass(frozen=True)
class LayerGroup:
    count: int
    attention: AttentionSpec
    mlp: MLPSpec


@dataclass(frozen=True)
class ArchSpec:
    """A decoder-only model. Per layer, `norm_positions` lists its norms (weights [h], LayerNorm also a bias):
    the pre-norm default ("attention_in", "mlp_in"); Gemma 2/3 add post-norms on both sublayers' outputs; OLMo 2
    has post-norms only. `parallel_block`: attention and MLP both read the layer input and their outputs are added
    to it together (GPT-J style: Falcon, GPT-NeoX with use_parallel_residual); without "mlp_in" the MLP then reads
    the attention norm's output (Falcon-7B's single input_layernorm). Scalar scales and caps (no parameters, one
    element-wise op each): `embedding_scale` multiplies the token embeddings (Gemma: sqrt(h); Granite's
    embedding_multiplier), `residual_scale` each sublayer's output before its residual add (Granite),
    `logit_scale` the logits (Granite: 1 / logits_scaling), `final_logit_softcap` c maps logits to
    c·tanh(logits / c) (Gemma 2). `rope_table_cached`: the implementation builds fp32 cos and sin tables for every
    position once and keeps them (the zoo's rotary embedding), rather than computing them for each call's positions
    (transformers). Dropout probabilities as the config states them, in [0, 1), active only when the module is in
    training mode: `embedding_dropout` on the summed embeddings (GPT-2's embd_pdrop), `attention_dropout` on the
    attention probabilities (attn_pdrop; with a fused kernel its dropout_p), `residual_dropout` on each sublayer's
    output before its residual add (resid_pdrop); the zoo has none."""

    name: str
    model_type: str
    vocab_size: int
    hidden_size: int
    layer_groups: tuple[LayerGroup, ...]
    tie_word_embeddings: bool
    norm: str = "rmsnorm"  # NORMS
    learned_positions: int = 0  # rows of a learned position table (GPT-2); 0 for RoPE
    max_position_embeddings: int = 2048
    norm_positions: tuple[str, ...] = ("attention_in", "mlp_in")
    parallel_block: bool = False
    embedding_scale: float | None = None
    residual_scale: float | None = None
    logit_scale: float | None = None
    final_logit_softcap: float | None = None
    rope_table_cached: bool = False
    embedding_dropout: float = 0.0
    attention_dropout: float = 0.0
    residual_dropout: float = 0.0

    def __post_init__(self) -> None:
        for field in ("vocab_size", "hidden_size"):
            require_int(field, getattr(self, field))
        for field in DROPOUT_FIELDS:
            value = getattr(self, field)
            if not (is_real(value) and 0 <= value < 1):
                raise ValueError(f"{field}={value!r} must be a probability in [0, 1)")
        if self.norm not in NORMS:
            raise ValueError(f"norm={self.norm!r} is not one of {NORMS}")
        if not self.norm_positions or any(p not in NORM_POSITIONS for p in self.norm_positions) \
                or len(set(self.norm_positions)) != len(self.norm_positions):
            raise ValueError(f"norm_positions={self.norm_positions!r} must be distinct entries of {NORM_POSITIONS}")
        if not self.layer_groups:
            raise ValueError("layer_groups must hold at least one layer")
        for group in self.layer_groups:
            require_int("layer count", group.count)
            _check_attention(group.attention)
            _check_mlp(group.mlp)

    @property
    def num_layers(self) -> int:
        return sum(group.count for group in self.layer_groups)

    @property
    def shared_input_norm(self) -> bool:
        """Attention and MLP read one normed input (a parallel block with a single input norm, Falcon-7B)."""
        return self.parallel_block and "mlp_in" not in self.norm_positions

    @property
    def distinct_norm_inputs(self) -> int:
        """Tensors the layer's norms read: one per norm, but a parallel block's two input norms read one."""
        both_inputs = "attention_in" in self.norm_positions and "mlp_in" in self.norm_positions
        return len(self.norm_positions) - (1 if self.parallel_block and both_inputs else 0)


def _check_attention(att: AttentionSpec) -> None:
    for name in ("num_heads", "num_kv_heads", "head_dim", "v_head_dim"):
        require_int(name, getattr(att, name))
    if att.num_heads % att.num_kv_heads:
        raise ValueError(f"num_kv_heads={att.num_kv_heads} must divide num_heads={att.num_heads}")
    if att.sliding_window is not None:
        require_int("sliding_window", att.sliding_window)
    if att.qk_norm_scope not in QK_NORM_SCOPES:
        raise ValueError(f"qk_norm_scope={att.qk_norm_scope!r} is not one of {QK_NORM_SCOPES}")
    if att.rotary_dim is not None:
        require_int("rotary_dim", att.rotary_dim, 0, att.head_dim)
    if att.is_mla:
        require_int("kv_lora_rank", att.kv_lora_rank)
        if att.q_lora_rank is not None:
            require_int("q_lora_rank", att.q_lora_rank)
        if not 0 < att.rope_head_dim < att.head_dim:
            raise ValueError(f"rope_head_dim={att.rope_head_dim} must be in [1, head_dim={att.head_dim})")


def _check_mlp(mlp: MLPSpec) -> None:
    if mlp.kind not in MLP_KINDS:
        raise ValueError(f"mlp kind={mlp.kind!r} is not one of {MLP_KINDS}")
    require_int("intermediate_size", mlp.intermediate_size)
    require_int("num_experts", mlp.num_experts)
    if not 1 <= mlp.experts_per_token <= mlp.num_experts:
        raise ValueError(f"experts_per_token={mlp.experts_per_token} must be in [1, num_experts={mlp.num_experts}]")
    if mlp.num_shared_experts:
        require_int("shared_intermediate_size", mlp.shared_intermediate_size)
    if mlp.shared_expert_gate and not mlp.num_shared_experts:
        raise ValueError("shared_expert_gate needs a shared expert (num_shared_experts >= 1)")


# ---------------------------------------------------------------------------------------------------- the zoo
def from_complexity_config(config: ComplexityConfig, name: str = "complexity") -> ArchSpec:
    """The zoo model: RMSNorm, bias-free GQA with optional QK-norm and sliding window, SwiGLU MLP that is dense or
    token-routed (E experts of width I/E, one per token, no router parameters)."""
    attention = AttentionSpec(
        num_heads=config.num_attention_heads, num_kv_heads=config.num_key_value_heads, head_dim=config.head_dim,
        v_head_dim=config.head_dim, qk_norm=config.use_qk_norm, sliding_window=config.sliding_window,
    )
    if config.use_token_routed_mlp:
        mlp = MLPSpec(kind="token_routed", intermediate_size=config.expert_intermediate_size,
                      num_experts=config.num_experts, experts_per_token=1)
    else:
        mlp = MLPSpec(kind="dense", intermediate_size=config.intermediate_size)
    return ArchSpec(
        name=name, model_type="complexity", vocab_size=config.vocab_size, hidden_size=config.hidden_size,
        layer_groups=(LayerGroup(config.num_hidden_layers, attention, mlp),),
        tie_word_embeddings=config.tie_word_embeddings, max_position_embeddings=config.max_position_embeddings,
        rope_table_cached=True,
    )


def from_size(size: str) -> ArchSpec:
    """A named zoo size (`complexity.config.SIZES`); ValueError for an unknown name."""
    return from_complexity_config(config_for_size(size), name=size)


# ---------------------------------------------------------------------------------------------------- HF configs
_MISSING = object()
# Bounds beyond any published model, so that a typo (10**30 layers) is an error, not an overflow or a hang:
# a tensor dimension fits torch's int32 index range, and the deepest published decoders have ~130 layers.
MAX_CONFIG_SIZE = 2**31 - 1
MAX_CONFIG_LAYERS = 10_000


class _Fields:
    """Reads a config.json dict, typed: a missing required field, or a value of the wrong type or range, is a
    one-line ValueError naming the field, the value and what is allowed. A field given as null reads as absent
    (its default), as transformers' config classes treat it."""

    def __init__(self, data: dict[str, Any], model_type: str):
        self.data = data
        self.model_type = model_type

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def _given(self, key: str, default: Any) -> bool:
        """Whether `key` holds a value to check; absent or null with no default is a missing field."""
        if self.has(key):
            return True
        if default is _MISSING:
            raise ValueError(f"config.json with model_type={self.model_type!r} lacks field {key!r}")
        return False

    def int(self, key: str, default: Any = _MISSING, minimum: int = 1, maximum: int = MAX_CONFIG_SIZE) -> Any:
        """An integer in [minimum, maximum] (sizes: >= 1); bools, strings and floats are refused. `default` may be
        None."""
        if not self._given(key, default):
            return default
        value = self.data[key]
        if not (is_int(value) and minimum <= value <= maximum):
            raise ValueError(f"config.json field {key}={value!r} must be an integer in [{minimum}, {maximum}]")
        return value

    def layers(self, key: str) -> int:
        """A layer count, in [1, MAX_CONFIG_LAYERS] (adapters walk the layers one by one)."""
        return self.int(key, maximum=MAX_CONFIG_LAYERS)

    def bool(self, key: str, default: Any = _MISSING) -> Any:
        """true or false (no strings, no 0/1)."""
        if not self._given(key, default):
            return default
        value = self.data[key]
        if not isinstance(value, bool):
            raise ValueError(f"config.json field {key}={value!r} must be true or false")
        return value

    def number(self, key: str, default: Any = _MISSING) -> Any:
        """A finite real number > 0; `default` may be None."""
        if not self._given(key, default):
            return default
        value = self.data[key]
        if not (is_real(value) and value > 0):
            raise ValueError(f"config.json field {key}={value!r} must be a finite number > 0")
        return float(value)

    def probability(self, key: str, default: float = 0.0) -> float:
        """A dropout probability in [0, 1) (absent or null: `default`)."""
        if not self._given(key, default):
            return default
        value = self.data[key]
        if not (is_real(value) and 0 <= value < 1):
            raise ValueError(f"config.json field {key}={value!r} must be a probability in [0, 1)")
        return float(value)

    def str(self, key: str, default: Any = _MISSING, choices: tuple[str, ...] | None = None) -> Any:
        if not self._given(key, default):
            return default
        value = self.data[key]
        if not isinstance(value, str) or (choices is not None and value not in choices):
            allowed = f"one of {list(choices)}" if choices is not None else "a string"
            raise ValueError(f"config.json field {key}={value!r} must be {allowed}")
        return value

    def int_list(self, key: str, minimum: int = 0) -> list[int]:
        """A list of integers >= `minimum` (absent or null: empty)."""
        value = self.data[key] if self.has(key) else []
        if not isinstance(value, list) or not all(is_int(v) and v >= minimum for v in value):
            raise ValueError(f"config.json field {key}={value!r} must be a list of integers >= {minimum}")
        return value

    def layer_types(self, num_layers: int, default: list[str]) -> list[str]:
        """Per-layer attention type ("full_attention" or "sliding_attention"): `layer_types` as given, one per
        layer, else `default` (each family's rule, as in its transformers config class)."""
        if not self.has("layer_types"):
            return default
        types = self.data["layer_types"]
        if not isinstance(types, list):
            raise ValueError(f"config.json field layer_types={types!r} must be a list of {list(LAYER_TYPES)}")
        if len(types) != num_layers:
            raise ValueError(f"config.json field layer_types has {len(types)} entries but num_hidden_layers="
                             f"{num_layers}: one per layer is needed")
        for i, kind in enumerate(types):
            if kind not in LAYER_TYPES:
                raise ValueError(f"config.json field layer_types[{i}]={kind!r} must be one of {list(LAYER_TYPES)}")
        return types


def _rotary_fraction(f: _Fields, key: str, default: float) -> float:
    """The fraction of each head RoPE rotates: `rope_parameters` / `rope_scaling`'s partial_rotary_factor, else the
    top-level `key` (transformers moves it into rope_parameters), else `default`; in (0, 1]."""
    for holder in ("rope_parameters", "rope_scaling"):
        params = f.data.get(holder)
        if isinstance(params, dict) and params.get("partial_rotary_factor") is not None:
            value = params["partial_rotary_factor"]
            key = f"{holder}.partial_rotary_factor"
            break
    else:
        value = f.number(key, default)
    if not (is_real(value) and 0 < value <= 1):
        raise ValueError(f"config.json field {key}={value!r} must be a number in (0, 1]")
    return float(value)


def _partial_rotary_dim(head_dim: int, fraction: float) -> int | None:
    """Rotated channels per head, int(head_dim · fraction) as transformers computes them; None when all are."""
    dim = int(head_dim * fraction)
    return None if dim == head_dim else dim


def _grouped(layers: list[tuple[AttentionSpec, MLPSpec]]) -> tuple[LayerGroup, ...]:
    """Per-layer (attention, mlp) pairs as runs of identical consecutive layers."""
    groups: list[LayerGroup] = []
    for attention, mlp in layers:
        if groups and (groups[-1].attention, groups[-1].mlp) == (attention, mlp):
            groups[-1] = LayerGroup(groups[-1].count + 1, attention, mlp)
        else:
            groups.append(LayerGroup(1, attention, mlp))
    return tuple(groups)


def _windows(types: list[str], window: int | None) -> list[int | None]:
    """Per-layer window from per-layer types: `window` on "sliding_attention" layers, none on the others."""
    return [window if kind == "sliding_attention" else None for kind in types]


def _gpt2(f: _Fields, name: str) -> ArchSpec:
    """GPT-2 (Radford et al. 2019): LayerNorm, learned positions, biased fused QKV and GELU MLP, tied head. The
    activation is `activation_function` (transformers' GPT2Config default "gelu_new", the tanh approximation written
    as eager tensor code); dropout embd_pdrop, attn_pdrop and resid_pdrop (GPT2Config's defaults 0.1 each).
    Buffers (not parameters): the causal-mask `attn.bias` tensors of old checkpoints, none in transformers 5."""
    h, heads = f.int("n_embd"), f.int("n_head")
    attention = AttentionSpec(num_heads=heads, num_kv_heads=heads, head_dim=h // heads, v_head_dim=h // heads,
                              qkv_bias=True, o_bias=True, fused_qkv=True)
    mlp = MLPSpec(kind="dense", intermediate_size=f.int("n_inner", None) or 4 * h, gated=False, bias=True,
                  activation=f.str("activation_function", "gelu_new"))
    return ArchSpec(name=name, model_type="gpt2", vocab_size=f.int("vocab_size"), hidden_size=h,
                    layer_groups=(LayerGroup(f.layers("n_layer"), attention, mlp),),
                    tie_word_embeddings=f.bool("tie_word_embeddings", True), norm="layernorm",
                    learned_positions=f.int("n_positions"), max_position_embeddings=f.int("n_positions"),
                    embedding_dropout=f.probability("embd_pdrop", 0.1),
                    attention_dropout=f.probability("attn_pdrop", 0.1),
                    residual_dropout=f.probability("resid_pdrop", 0.1))


def _layer_windows(f: _Fields, num_layers: int) -> list[int | None]:
    """Per-layer sliding window. Mistral/Mixtral: `sliding_window` on every layer (absent: transformers' defaults,
    4096 for Mistral, none for Mixtral). Qwen2/Qwen3: only when `use_sliding_window`, on layers listed as
    "sliding_attention" in `layer_types`, else layers >= `max_window_layers` (transformers' Qwen2Config rule)."""
    window = f.int("sliding_window", 4096 if f.model_type == "mistral" else None)
    if f.model_type not in ("qwen2", "qwen3"):
        return [window] * num_layers
    if not f.bool("use_sliding_window", False) or window is None:
        return [None] * num_layers
    first = f.int("max_window_layers", num_layers, minimum=0)
    default = ["sliding_attention" if i >= first else "full_attention" for i in range(num_layers)]
    return _windows(f.layer_types(num_layers, default), window)


def _llama_like(f: _Fields, name: str) -> ArchSpec:
    """Llama, Mistral, Qwen2, Qwen3 and Mixtral: RMSNorm, RoPE, GQA, SwiGLU (Mixtral: top-k routed SwiGLU experts;
    the gate's activation is `hidden_act`, silu), dropout `attention_dropout` on the attention probabilities only.
    Buffers: RoPE's inv_freq only."""
    model_type = f.model_type
    h, heads = f.int("hidden_size"), f.int("num_attention_heads")
    head_dim = f.int("head_dim", h // heads)
    attention_bias = f.bool("attention_bias", False)
    attention_kwargs = dict(
        num_heads=heads, num_kv_heads=f.int("num_key_value_heads", heads), head_dim=head_dim,
        v_head_dim=head_dim, qkv_bias=model_type == "qwen2" or attention_bias,
        o_bias=attention_bias and model_type != "qwen2", qk_norm=model_type == "qwen3",
    )
    activation = f.str("hidden_act", "silu")
    if model_type == "mixtral":
        mlp = MLPSpec(kind="moe", intermediate_size=f.int("intermediate_size"),
                      num_experts=f.int("num_local_experts"), experts_per_token=f.int("num_experts_per_tok"),
                      activation=activation)
    else:
        mlp = MLPSpec(kind="dense", intermediate_size=f.int("intermediate_size"), bias=f.bool("mlp_bias", False),
                      activation=activation)
    num_layers = f.layers("num_hidden_layers")
    layers = [(AttentionSpec(**attention_kwargs, sliding_window=w), mlp) for w in _layer_windows(f, num_layers)]
    return ArchSpec(name=name, model_type=model_type, vocab_size=f.int("vocab_size"), hidden_size=h,
                    layer_groups=_grouped(layers), tie_word_embeddings=f.bool("tie_word_embeddings", False),
                    max_position_embeddings=f.int("max_position_embeddings", 2048),
                    attention_dropout=f.probability("attention_dropout"))


def _granite(f: _Fields, name: str) -> ArchSpec:
    """Granite 3 (IBM, https://huggingface.co/ibm-granite/granite-3.0-2b-base): Llama's layout — RMSNorm, GQA,
    SwiGLU, biases per attention_bias / mlp_bias — with four scalar multipliers and no parameters for them:
    embedding_multiplier on the embeddings, residual_multiplier on each sublayer's output, attention_multiplier as
    the softmax scale (replacing 1/sqrt(d): no extra op) and logits divided by logits_scaling. Buffers: inv_freq."""
    base = _llama_like(f, name)  # model_type granite: none of the qwen/mistral/mixtral rules apply
    return replace(base, embedding_scale=f.number("embedding_multiplier", 1.0),
                   residual_scale=f.number("residual_multiplier", 1.0),
                   logit_scale=1.0 / f.number("logits_scaling", 1.0))


def _gemma(f: _Fields, name: str) -> ArchSpec:
    """Gemma (arXiv:2403.08295), Gemma 2 (arXiv:2408.00118) and Gemma 3's text model (arXiv:2503.19786): RMSNorm
    (stored as w, applied as 1 + w), GeGLU MLP (gelu_pytorch_tanh), head_dim 256 by default (not h / H),
    embeddings scaled by sqrt(h), tied head.
    Gemma 2 and 3 add post-norms after attention and after the MLP (4 norms per layer) and alternate
    sliding-window and global layers by `layer_types` — defaults as transformers' config classes: Gemma 2 every
    other layer sliding (layers 0, 2, ...), Gemma 3 five sliding then one global (`sliding_window_pattern`, 6).
    Gemma 2 soft-caps the attention scores (attn_logit_softcapping, 50) and the logits (final_logit_softcapping,
    30) — transformers runs it with eager attention, SDPA having no soft-cap. Gemma 3 adds head-wise QK-norm
    (q_norm, k_norm [d]). Dropout: `attention_dropout` on the attention probabilities. Buffers (not parameters): the
    embedding scale `embed_tokens.embed_scale` and inv_freq."""
    model_type = f.model_type
    h, heads, num_layers = f.int("hidden_size"), f.int("num_attention_heads"), f.layers("num_hidden_layers")
    head_dim = f.int("head_dim", 256)
    bias = f.bool("attention_bias", False)
    if f.data.get("use_bidirectional_attention"):
        raise ValueError("config.json field use_bidirectional_attention=true is not supported (a causal decoder is "
                         "described)")
    first = model_type == "gemma"
    softcap = None if first else f.number("attn_logit_softcapping", 50.0 if model_type == "gemma2" else None)
    attention = AttentionSpec(num_heads=heads, num_kv_heads=f.int("num_key_value_heads", heads), head_dim=head_dim,
                              v_head_dim=head_dim, qkv_bias=bias, o_bias=bias, qk_norm=model_type == "gemma3_text",
                              logit_softcap=softcap)
    if first:  # GemmaConfig reads hidden_act and takes its legacy "gelu" for the tanh approximation
        activation = f.str("hidden_act", "gelu_pytorch_tanh")
        activation = "gelu_pytorch_tanh" if activation == "gelu" else activation
    else:  # Gemma 2 and 3 read hidden_activation
        activation = f.str("hidden_activation", "gelu_pytorch_tanh")
    mlp = MLPSpec(kind="dense", intermediate_size=f.int("intermediate_size"), activation=activation)
    if first:
        types = ["full_attention"] * num_layers
    else:
        pattern = 2 if model_type == "gemma2" else f.int("sliding_window_pattern", 6)
        default = ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(num_layers)]
        types = f.layer_types(num_layers, default)
    window = None if first else f.int("sliding_window", 4096)
    layers = [(replace(attention, sliding_window=w), mlp) for w in _windows(types, window)]
    return ArchSpec(
        name=name, model_type=model_type, vocab_size=f.int("vocab_size"), hidden_size=h,
        layer_groups=_grouped(layers), tie_word_embeddings=f.bool("tie_word_embeddings", True),
        max_position_embeddings=f.int("max_position_embeddings", 131072 if model_type == "gemma3_text" else 8192),
        norm_positions=("attention_in", "mlp_in") if first else NORM_POSITIONS, embedding_scale=math.sqrt(h),
        final_logit_softcap=None if first else f.number("final_logit_softcapping",
                                                        30.0 if model_type == "gemma2" else None),
        attention_dropout=f.probability("attention_dropout"))


def _phi3(f: _Fields, name: str) -> ArchSpec:
    """Phi-3 (Abdin et al. 2024, arXiv:2404.14219): Llama's layout with q, k and v fused into one qkv_proj
    [(H + 2KV)·d, h] and gate and up into one gate_up_proj [2I, h], no biases, untied head; `sliding_window` (when
    set) on every layer; partial rotary by partial_rotary_factor (1.0 in Phi-3). Dropout: `attention_dropout` on the
    attention probabilities, resid_pdrop on both sublayers' outputs (transformers 5 applies no embd_pdrop).
    Buffers: inv_freq (and the longrope factors' original_inv_freq)."""
    h, heads = f.int("hidden_size"), f.int("num_attention_heads")
    head_dim = f.int("head_dim", h // heads)
    rotary = _partial_rotary_dim(head_dim, _rotary_fraction(f, "partial_rotary_factor", 1.0))
    attention = AttentionSpec(num_heads=heads, num_kv_heads=f.int("num_key_value_heads", heads), head_dim=head_dim,
                              v_head_dim=head_dim, fused_qkv=True, rotary_dim=rotary,
                              sliding_window=f.int("sliding_window", None))
    mlp = MLPSpec(kind="dense", intermediate_size=f.int("intermediate_size"), fused_gate_up=True,
                  activation=f.str("hidden_act", "silu"))
    return ArchSpec(name=name, model_type="phi3", vocab_size=f.int("vocab_size"), hidden_size=h,
                    layer_groups=(LayerGroup(f.layers("num_hidden_layers"), attention, mlp),),
                    tie_word_embeddings=f.bool("tie_word_embeddings", False),
                    max_position_embeddings=f.int("max_position_embeddings", 4096),
                    attention_dropout=f.probability("attention_dropout"),
                    residual_dropout=f.probability("resid_pdrop"))


def _qwen_moe(f: _Fields, name: str) -> ArchSpec:
    """Qwen1.5/Qwen2-MoE (https://qwenlm.github.io/blog/qwen-moe/) and Qwen3-MoE (arXiv:2505.09388): GQA with
    RMSNorm and SwiGLU experts. Layer i is MoE when it is not in `mlp_only_layers` and (i + 1) is a multiple of
    `decoder_sparse_step`, else a dense SwiGLU of `intermediate_size`. MoE: `num_experts` experts of
    moe_intermediate_size, top `num_experts_per_tok`, a bias-free router [E, h]. Qwen2-MoE: q, k, v biases
    (`qkv_bias`, default true), one shared expert of shared_expert_intermediate_size scaled by sigmoid of a
    [1, h] shared_expert_gate; sliding windows (use_sliding_window) on layers "sliding_attention" in layer_types,
    by default every other layer below max_window_layers. Qwen3-MoE: head-wise QK-norm, attention_bias on q, k,
    v, o, no shared expert, a window on every layer when use_sliding_window. Activation `hidden_act` (silu),
    dropout `attention_dropout` on the attention probabilities. Buffers: inv_freq."""
    qwen3 = f.model_type == "qwen3_moe"
    h, heads, num_layers = f.int("hidden_size"), f.int("num_attention_heads"), f.layers("num_hidden_layers")
    head_dim = f.int("head_dim", h // heads)
    bias = f.bool("attention_bias", False) if qwen3 else f.bool("qkv_bias", True)
    attention = dict(num_heads=heads, num_kv_heads=f.int("num_key_value_heads", heads), head_dim=head_dim,
                     v_head_dim=head_dim, qkv_bias=bias, o_bias=bias and qwen3, qk_norm=qwen3)
    window = f.int("sliding_window", 4096) if f.bool("use_sliding_window", False) else None
    if qwen3:
        windows = [window] * num_layers
    else:
        first = f.int("max_window_layers", 28, minimum=0)
        default = ["sliding_attention" if (i + 1) % 2 and i < first and window else "full_attention"
                   for i in range(num_layers)]
        windows = _windows(f.layer_types(num_layers, default), window)
    experts = f.int("num_experts", 0 if qwen3 else 60, minimum=0)
    shared = 0 if qwen3 else f.int("shared_expert_intermediate_size", 5632)
    activation = f.str("hidden_act", "silu")
    moe = MLPSpec(kind="moe", intermediate_size=f.int("moe_intermediate_size"), num_experts=max(experts, 1),
                  experts_per_token=f.int("num_experts_per_tok"), num_shared_experts=0 if qwen3 else 1,
                  shared_intermediate_size=shared, shared_expert_gate=not qwen3, activation=activation)
    dense = MLPSpec(kind="dense", intermediate_size=f.int("intermediate_size"), activation=activation)
    dense_layers, step = set(f.int_list("mlp_only_layers")), f.int("decoder_sparse_step", 1)
    layers = [(AttentionSpec(**attention, sliding_window=w),
               moe if experts and i not in dense_layers and (i + 1) % step == 0 else dense)
              for i, w in enumerate(windows)]
    return ArchSpec(name=name, model_type=f.model_type, vocab_size=f.int("vocab_size"), hidden_size=h,
                    layer_groups=_grouped(layers), tie_word_embeddings=f.bool("tie_word_embeddings", False),
                    max_position_embeddings=f.int("max_position_embeddings", 32768),
                    attention_dropout=f.probability("attention_dropout"))


def _olmo(f: _Fields, name: str) -> ArchSpec:
    """OLMo 2 (arXiv:2501.00656) and OLMoE (arXiv:2409.02060): RMSNorm, full-width QK-norm — q_norm over the whole
    query projection [H·d], k_norm over the key projection [KV·d], unlike Qwen3's per-head [d] — and biases per
    attention_bias on q, k, v, o. OLMo 2: post-norms only (post_attention_layernorm, post_feedforward_layernorm on
    the sublayers' outputs, no input norms), a dense SwiGLU. OLMoE: pre-norms, every layer MoE with
    `num_experts` SwiGLU experts of `intermediate_size`, top `num_experts_per_tok`, router [E, h]; its q_norm is
    hidden_size wide, so H·d must equal h. `clip_qkv` (a clamp, no parameters) is not among the ops. Activation
    `hidden_act` (silu), dropout `attention_dropout` on the attention probabilities. Buffers: inv_freq."""
    moe = f.model_type == "olmoe"
    h, heads = f.int("hidden_size"), f.int("num_attention_heads")
    head_dim = f.int("head_dim", h // heads)
    if moe and heads * head_dim != h:
        raise ValueError(f"config.json field head_dim={head_dim} must be hidden_size / num_attention_heads = "
                         f"{h // heads} for olmoe (its q_norm is hidden_size wide)")
    bias = f.bool("attention_bias", False)
    attention = AttentionSpec(num_heads=heads, num_kv_heads=f.int("num_key_value_heads", heads), head_dim=head_dim,
                              v_head_dim=head_dim, qkv_bias=bias, o_bias=bias, qk_norm=True, qk_norm_scope="full")
    activation = f.str("hidden_act", "silu")
    if moe:
        mlp = MLPSpec(kind="moe", intermediate_size=f.int("intermediate_size"), num_experts=f.int("num_experts"),
                      experts_per_token=f.int("num_experts_per_tok"), activation=activation)
    else:
        mlp = MLPSpec(kind="dense", intermediate_size=f.int("intermediate_size"), activation=activation)
    return ArchSpec(name=name, model_type=f.model_type, vocab_size=f.int("vocab_size"), hidden_size=h,
                    layer_groups=(LayerGroup(f.layers("num_hidden_layers"), attention, mlp),),
                    tie_word_embeddings=f.bool("tie_word_embeddings", False),
                    max_position_embeddings=f.int("max_position_embeddings", 4096 if moe else 2048),
                    norm_positions=("attention_in", "mlp_in") if moe else ("attention_out", "mlp_out"),
                    attention_dropout=f.probability("attention_dropout"))


def _deepseek(f: _Fields, name: str) -> ArchSpec:
    """DeepSeek-V2 (arXiv:2405.04434 §2) and DeepSeek-V3 (DeepSeek-AI 2024, arXiv:2412.19437 §2): MLA attention,
    with a low-rank query path when q_lora_rank is set (V2-Lite has none: a direct q_proj); attention_bias puts
    biases on q_a_proj, kv_a_proj_with_mqa and o_proj (transformers' DeepseekV2/V3Attention; never on q_proj,
    q_b_proj or kv_b_proj). The first `first_k_dense_replace` layers have a dense SwiGLU MLP, the rest
    DeepSeekMoE: routed top-k experts of moe_intermediate_size + n_shared_experts shared ones (transformers stores
    them as one MLP n_shared times as wide: the same numbers). V2: softmax router [E, h] (greedy or
    group-limited), and after the dense layers every `moe_layer_freq`-th layer is MoE (DeepSeek's reference
    code; transformers 5 ignores moe_layer_freq, 1 in every published V2). V3: sigmoid router with a
    score-correction bias `e_score_correction_bias` (topk_method noaux_tc), E numbers per layer that the
    checkpoint stores but transformers registers as a buffer, not a parameter; counted here under `router`.
    V3's multi-token-prediction layer (`num_nextn_predict_layers`) is not part of the main model and not described.
    Activation `hidden_act` (silu), dropout `attention_dropout` on the attention probabilities."""
    v3 = f.model_type == "deepseek_v3"
    heads = f.int("num_attention_heads")
    nope, rope = f.int("qk_nope_head_dim"), f.int("qk_rope_head_dim")
    bias = f.bool("attention_bias", False)
    attention = AttentionSpec(
        num_heads=heads, num_kv_heads=f.int("num_key_value_heads", heads), head_dim=nope + rope,
        v_head_dim=f.int("v_head_dim"), qkv_bias=bias, o_bias=bias,
        q_lora_rank=f.int("q_lora_rank", None), kv_lora_rank=f.int("kv_lora_rank"), rope_head_dim=rope,
    )
    moe_width = f.int("moe_intermediate_size")
    if not v3 and f.bool("mlp_bias", False):
        raise ValueError("config.json field mlp_bias=true is not supported for deepseek_v2 (its routed experts have "
                         "no biases while its dense and shared MLPs would)")
    activation = f.str("hidden_act", "silu")
    dense = MLPSpec(kind="dense", intermediate_size=f.int("intermediate_size"), activation=activation)
    topk_method = f.str("topk_method", "noaux_tc" if v3 else "greedy")
    moe = MLPSpec(kind="moe", intermediate_size=moe_width, num_experts=f.int("n_routed_experts"),
                  experts_per_token=f.int("num_experts_per_tok"),
                  num_shared_experts=f.int("n_shared_experts", 0 if v3 else 2, minimum=0),
                  shared_intermediate_size=moe_width, router_bias=v3 and topk_method == "noaux_tc",
                  activation=activation)
    num_layers, first_moe = f.layers("num_hidden_layers"), f.int("first_k_dense_replace", 0, minimum=0)
    freq = 1 if v3 else f.int("moe_layer_freq", 1)
    layers = [(attention, moe if i >= first_moe and i % freq == 0 else dense) for i in range(num_layers)]
    return ArchSpec(name=name, model_type=f.model_type, vocab_size=f.int("vocab_size"),
                    hidden_size=f.int("hidden_size"), layer_groups=_grouped(layers),
                    tie_word_embeddings=f.bool("tie_word_embeddings", False),
                    max_position_embeddings=f.int("max_position_embeddings", 4096 if v3 else 2048),
                    attention_dropout=f.probability("attention_dropout"))


def _falcon(f: _Fields, name: str) -> ArchSpec:
    """Falcon (Almazrouei et al. 2023, arXiv:2311.16867): LayerNorm (weight and bias), one fused query_key_value
    projection, a GELU MLP dense_h_to_4h / dense_4h_to_h of ffn_hidden_size (4h), `bias` on every linear, RoPE (or
    ALiBi with `alibi`: no rotation, no parameters), tied head. Two decoder architectures:
    * the old one (Falcon-7B): multi-query (`multi_query`: one key/value head) or MHA; with `parallel_attn`
      attention and MLP run in parallel from one input_layernorm, without it sequentially with a second
      post_attention_layernorm;
    * `new_decoder_architecture` (Falcon-40B/180B): GQA with `num_kv_heads`, always parallel, two input norms
      ln_attn and ln_mlp (or one with num_ln_in_parallel_attn = 1). transformers broadcasts the keys and values to
      all H heads before its cache, so its cache is H/KV times the one described here.
    Activation `activation` (gelu). Dropout: `attention_dropout` on the attention probabilities, `hidden_dropout`
    as the residual dropout — priced on both sublayers' outputs, where transformers drops a parallel block's summed
    output once and a sequential block's attention output at attention_dropout. Buffers: inv_freq."""
    h, heads = f.int("hidden_size"), f.int("num_attention_heads")
    if h % heads:
        raise ValueError(f"config.json field hidden_size={h} must be a multiple of num_attention_heads={heads}")
    new, parallel = f.bool("new_decoder_architecture", False), f.bool("parallel_attn", True)
    two_norms = f.int("num_ln_in_parallel_attn", 2 if new else 1) == 2
    if new and not parallel:
        raise ValueError("config.json field parallel_attn=false is not supported with new_decoder_architecture "
                         "(transformers' Falcon then has no input norm to run)")
    if not new and parallel and two_norms:
        raise ValueError("config.json field num_ln_in_parallel_attn=2 needs new_decoder_architecture=true")
    if new:
        kv = f.int("num_kv_heads", heads)
    else:
        kv = 1 if f.bool("multi_query", True) else heads
    bias, head_dim = f.bool("bias", False), h // heads
    attention = AttentionSpec(num_heads=heads, num_kv_heads=kv, head_dim=head_dim, v_head_dim=head_dim,
                              qkv_bias=bias, o_bias=bias, fused_qkv=True,
                              rotary_dim=0 if f.bool("alibi", False) else None)
    mlp = MLPSpec(kind="dense", intermediate_size=f.int("ffn_hidden_size", 4 * h), gated=False, bias=bias,
                  activation=f.str("activation", "gelu"))
    norms = ("attention_in", "mlp_in") if (two_norms or not parallel) else ("attention_in",)
    return ArchSpec(name=name, model_type="falcon", vocab_size=f.int("vocab_size"), hidden_size=h,
                    layer_groups=(LayerGroup(f.layers("num_hidden_layers"), attention, mlp),),
                    tie_word_embeddings=f.bool("tie_word_embeddings", True), norm="layernorm",
                    max_position_embeddings=f.int("max_position_embeddings", 2048), norm_positions=norms,
                    parallel_block=parallel, attention_dropout=f.probability("attention_dropout"),
                    residual_dropout=f.probability("hidden_dropout"))


def _gpt_neox(f: _Fields, name: str) -> ArchSpec:
    """GPT-NeoX (Black et al. 2022, arXiv:2204.06745; Pythia, arXiv:2304.01373): LayerNorm (weight and bias), MHA
    through one fused query_key_value [3h, h] and dense [h, h] with biases (attention_bias, default true), a GELU
    MLP dense_h_to_4h / dense_4h_to_h always with biases, partial rotary on int(d · rotary_pct) channels per
    head (rotary_pct 0.25 by default), attention and MLP in parallel from their own input norms when
    use_parallel_residual (default) else sequential, untied head. Activation `hidden_act` (gelu); dropout
    `attention_dropout` on the attention probabilities, `hidden_dropout` on the embeddings and both sublayers'
    outputs. Buffers: inv_freq."""
    h, heads = f.int("hidden_size"), f.int("num_attention_heads")
    if h % heads:
        raise ValueError(f"config.json field hidden_size={h} must be a multiple of num_attention_heads={heads}")
    head_dim, bias = h // heads, f.bool("attention_bias", True)
    attention = AttentionSpec(num_heads=heads, num_kv_heads=heads, head_dim=head_dim, v_head_dim=head_dim,
                              qkv_bias=bias, o_bias=bias, fused_qkv=True,
                              rotary_dim=_partial_rotary_dim(head_dim, _rotary_fraction(f, "rotary_pct", 0.25)))
    mlp = MLPSpec(kind="dense", intermediate_size=f.int("intermediate_size"), gated=False, bias=True,
                  activation=f.str("hidden_act", "gelu"))
    return ArchSpec(name=name, model_type="gpt_neox", vocab_size=f.int("vocab_size"), hidden_size=h,
                    layer_groups=(LayerGroup(f.layers("num_hidden_layers"), attention, mlp),),
                    tie_word_embeddings=f.bool("tie_word_embeddings", False), norm="layernorm",
                    max_position_embeddings=f.int("max_position_embeddings", 2048),
                    parallel_block=f.bool("use_parallel_residual", True),
                    embedding_dropout=f.probability("hidden_dropout"),
                    attention_dropout=f.probability("attention_dropout"),
                    residual_dropout=f.probability("hidden_dropout"))


def _starcoder2(f: _Fields, name: str) -> ArchSpec:
    """StarCoder2 (Lozhkov et al. 2024, arXiv:2402.19173): LayerNorm (weight and bias), GQA with `use_bias` on q,
    k, v, o, a GELU MLP c_fc / c_proj (gelu_pytorch_tanh) with biases, `sliding_window` (when set) on every
    layer, tied head. Dropout: embedding_dropout, attention_dropout (on the attention probabilities) and
    residual_dropout (on both sublayers' outputs). Buffers: inv_freq."""
    h, heads = f.int("hidden_size"), f.int("num_attention_heads")
    head_dim, bias = h // heads, f.bool("use_bias", True)
    attention = AttentionSpec(num_heads=heads, num_kv_heads=f.int("num_key_value_heads", heads), head_dim=head_dim,
                              v_head_dim=head_dim, qkv_bias=bias, o_bias=bias,
                              sliding_window=f.int("sliding_window", None))
    mlp = MLPSpec(kind="dense", intermediate_size=f.int("intermediate_size"), gated=False, bias=bias,
                  activation=f.str("hidden_act", "gelu_pytorch_tanh"))
    return ArchSpec(name=name, model_type="starcoder2", vocab_size=f.int("vocab_size"), hidden_size=h,
                    layer_groups=(LayerGroup(f.layers("num_hidden_layers"), attention, mlp),),
                    tie_word_embeddings=f.bool("tie_word_embeddings", True), norm="layernorm",
                    max_position_embeddings=f.int("max_position_embeddings", 4096),
                    embedding_dropout=f.probability("embedding_dropout"),
                    attention_dropout=f.probability("attention_dropout"),
                    residual_dropout=f.probability("residual_dropout"))


def _complexity(f: _Fields, name: str) -> ArchSpec:
    return from_complexity_config(ComplexityConfig.from_dict(f.data), name=name)


_ADAPTERS: dict[str, Callable[[_Fields, str], ArchSpec]] = {
    "gpt2": _gpt2, "llama": _llama_like, "mistral": _llama_like, "qwen2": _llama_like, "qwen3": _llama_like,
    "mixtral": _llama_like, "deepseek_v3": _deepseek, "complexity": _complexity,
    "gemma": _gemma, "gemma2": _gemma, "gemma3_text": _gemma, "phi3": _phi3, "qwen2_moe": _qwen_moe,
    "qwen3_moe": _qwen_moe, "olmoe": _olmo, "olmo2": _olmo, "deepseek_v2": _deepseek, "falcon": _falcon,
    "gpt_neox": _gpt_neox, "granite": _granite, "starcoder2": _starcoder2,
}
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(_ADAPTERS)
# transformers' causal-LM class names, for configs whose model_type is missing or names no supported family (the
# remote-code names of early Falcon checkpoints, "RefinedWeb"/"RefinedWebModel", among them).
ARCHITECTURES: dict[str, str] = {
    "GPT2LMHeadModel": "gpt2", "LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral",
    "Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3", "MixtralForCausalLM": "mixtral",
    "DeepseekV3ForCausalLM": "deepseek_v3", "GemmaForCausalLM": "gemma", "Gemma2ForCausalLM": "gemma2",
    "Gemma3ForCausalLM": "gemma3_text", "Phi3ForCausalLM": "phi3", "Qwen2MoeForCausalLM": "qwen2_moe",
    "Qwen3MoeForCausalLM": "qwen3_moe", "OlmoeForCausalLM": "olmoe", "Olmo2ForCausalLM": "olmo2",
    "DeepseekV2ForCausalLM": "deepseek_v2", "FalconForCausalLM": "falcon", "GPTNeoXForCausalLM": "gpt_neox",
    "GraniteForCausalLM": "granite", "Starcoder2ForCausalLM": "starcoder2",
}


def detect_model_type(data: dict[str, Any]) -> str:
    """The family of a config.json dict: its `model_type` when supported, else the one its `architectures` names
    (e.g. a Falcon config of model_type "RefinedWeb" with architectures ["FalconForCausalLM"]); a one-line
    ValueError naming the model_type and the supported list otherwise."""
    model_type = data.get("model_type")
    if model_type in _ADAPTERS:
        return model_type
    architectures = data.get("architectures")
    if isinstance(architectures, list):
        known = [ARCHITECTURES[a] for a in architectures if isinstance(a, str) and a in ARCHITECTURES]
        if known:
            return known[0]
    raise ValueError(f"model_type={model_type!r} is not supported; supported: {list(SUPPORTED_MODEL_TYPES)}")


def from_hf_dict(data: dict[str, Any], name: str = "model") -> ArchSpec:
    """An `ArchSpec` from the dict of a HuggingFace `config.json` (`detect_model_type` says the family)."""
    if not isinstance(data, dict):
        raise ValueError(f"a config must be a JSON object, got {type(data).__name__}")
    model_type = detect_model_type(data)
    return _ADAPTERS[model_type](_Fields(data, model_type), name)
