"""`ArchSpec`: the one architecture description that every formula in `profiler.formulas` reads.

An `ArchSpec` says which weight matrices a decoder-only transformer has and how tokens flow through them; it holds
no tensors. Adapters build one from a zoo `ComplexityConfig` (or a named size) and from a HuggingFace-style
`config.json` of the families in `SUPPORTED_MODEL_TYPES`. Layers that differ (DeepSeek-V3's first dense layers,
Qwen's sliding-window layers) are grouped: `layer_groups` is a tuple of (count, attention, mlp) runs. Facts of one
layer that several formulas need (the key/value heads a kernel reads, the keys a decoding query attends, the
tokens a cache holds) are properties of its `AttentionSpec`, derived in one place.

Turning a MODEL argument (a size name, a shipped config, a file) into an `ArchSpec` is `profiler.source`'s job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from complexity.config import ComplexityConfig, config_for_size
from complexity.inputs import require_int

NORMS = ("rmsnorm", "layernorm")
MLP_KINDS = ("dense", "moe", "token_routed")


@dataclass(frozen=True)
class AttentionSpec:
    """Self-attention of one layer.

    Standard attention (MHA when `num_kv_heads == num_heads`, GQA when fewer, MQA when 1): q_proj [H*d_qk, h],
    k_proj and v_proj [KV*d_qk, h] and [KV*d_v, h], o_proj [h, H*d_v].
    Multi-head latent attention (MLA, DeepSeek-V2/V3) when `kv_lora_rank` is set: queries through an optional
    low-rank path h -> q_lora_rank -> H*d_qk, keys and values through a shared latent h -> kv_lora_rank (+ a
    decoupled RoPE key of `rope_head_dim` shared by all heads) -> H*(d_qk - rope_head_dim + d_v).
    """

    num_heads: int
    num_kv_heads: int
    head_dim: int  # query/key width per head (MLA: nope + rope part)
    v_head_dim: int
    qkv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False  # RMSNorm over head_dim on queries and keys (Qwen3, the zoo)
    sliding_window: int | None = None  # a query sees itself and sliding_window - 1 earlier keys
    q_lora_rank: int | None = None  # MLA only; None: direct q_proj
    kv_lora_rank: int | None = None  # set: MLA
    rope_head_dim: int = 0  # MLA's decoupled RoPE key width

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
        """Channels per head that RoPE rotates: all of head_dim, or MLA's decoupled RoPE part."""
        return self.rope_head_dim if self.is_mla else self.head_dim

    def weight_shapes(self, hidden: int) -> dict[str, tuple[int, ...]]:
        """Every parameter tensor of the layer's attention, by transformers' name, shape as stored ([out, in]).

        Standard: q_proj [H·d_qk, h], k_proj [KV·d_qk, h], v_proj [KV·d_v, h] (+ biases), q_norm and k_norm
        [d_qk] with QK-norm, o_proj [h, H·d_v] (+ bias). MLA (DeepSeek-V2 arXiv:2405.04434 §2.1, V3 §2.1.1):
        q_proj [H·d_qk, h], or q_a_proj [r_q, h] + q_a_layernorm [r_q] + q_b_proj [H·d_qk, r_q] with a query
        rank; kv_a_proj_with_mqa [r_kv + d_rope, h], kv_a_layernorm [r_kv], kv_b_proj [H·(d_nope + d_v), r_kv];
        o_proj. (GPT-2 stores q, k and v fused in one c_attn; the numbers are the same.)"""
        heads, d_qk, d_v = self.num_heads, self.head_dim, self.v_head_dim
        shapes: dict[str, tuple[int, ...]] = {}

        def linear(name: str, d_out: int, d_in: int, bias: bool = False) -> None:
            shapes[name] = (d_out, d_in)
            if bias:
                shapes[f"{name}.bias"] = (d_out,)

        if self.is_mla:
            if self.q_lora_rank is None:
                linear("q_proj", heads * d_qk, hidden, self.qkv_bias)
            else:
                linear("q_a_proj", self.q_lora_rank, hidden, self.qkv_bias)
                shapes["q_a_layernorm"] = (self.q_lora_rank,)
                linear("q_b_proj", heads * d_qk, self.q_lora_rank)
            linear("kv_a_proj_with_mqa", self.kv_lora_rank + self.rope_head_dim, hidden, self.qkv_bias)
            shapes["kv_a_layernorm"] = (self.kv_lora_rank,)
            linear("kv_b_proj", heads * (d_qk - self.rope_head_dim + d_v), self.kv_lora_rank)
        else:
            linear("q_proj", heads * d_qk, hidden, self.qkv_bias)
            linear("k_proj", self.num_kv_heads * d_qk, hidden, self.qkv_bias)
            linear("v_proj", self.num_kv_heads * d_v, hidden, self.qkv_bias)
            if self.qk_norm:
                shapes["q_norm"] = (d_qk,)
                shapes["k_norm"] = (d_qk,)
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
    `shared_intermediate_size`. `token_routed` (the zoo): `num_experts` experts of width `intermediate_size`, no
    router (the expert is a function of the token id), exactly one expert per token.
    `gated`: SwiGLU (gate, up, down: three matrices) rather than two (GPT-2's GELU MLP).
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


@dataclass(frozen=True)
class LayerGroup:
    count: int
    attention: AttentionSpec
    mlp: MLPSpec


@dataclass(frozen=True)
class ArchSpec:
    name: str
    model_type: str
    vocab_size: int
    hidden_size: int
    layer_groups: tuple[LayerGroup, ...]
    tie_word_embeddings: bool
    norm: str = "rmsnorm"  # rmsnorm: weight only; layernorm: weight and bias
    learned_positions: int = 0  # rows of a learned position table (GPT-2); 0 for RoPE
    max_position_embeddings: int = 2048

    def __post_init__(self) -> None:
        for field in ("vocab_size", "hidden_size"):
            require_int(field, getattr(self, field))
        if self.norm not in NORMS:
            raise ValueError(f"norm={self.norm!r} is not one of {NORMS}")
        if not self.layer_groups:
            raise ValueError("layer_groups must hold at least one layer")
        for group in self.layer_groups:
            require_int("layer count", group.count)
            _check_attention(group.attention)
            _check_mlp(group.mlp)

    @property
    def num_layers(self) -> int:
        return sum(group.count for group in self.layer_groups)


def _check_attention(att: AttentionSpec) -> None:
    for name in ("num_heads", "num_kv_heads", "head_dim", "v_head_dim"):
        require_int(name, getattr(att, name))
    if att.num_heads % att.num_kv_heads:
        raise ValueError(f"num_kv_heads={att.num_kv_heads} must divide num_heads={att.num_heads}")
    if att.sliding_window is not None:
        require_int("sliding_window", att.sliding_window)
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
    )


def from_size(size: str) -> ArchSpec:
    """A named zoo size (`complexity.config.SIZES`); ValueError for an unknown name."""
    return from_complexity_config(config_for_size(size), name=size)


# ---------------------------------------------------------------------------------------------------- HF configs
_MISSING = object()


class _Fields:
    """Reads a config.json dict; a missing required field is a ValueError naming it and the model type."""

    def __init__(self, data: dict[str, Any]):
        self.data = data

    def get(self, key: str, default: Any = _MISSING) -> Any:
        value = self.data.get(key, default)
        if value is _MISSING or (value is None and default is _MISSING):
            raise ValueError(f"config.json with model_type={self.data.get('model_type')!r} lacks field {key!r}")
        return value


def _gpt2(f: _Fields, name: str) -> ArchSpec:
    """GPT-2 (Radford et al. 2019): LayerNorm, learned positions, biased fused QKV and GELU MLP, tied head."""
    h, heads = f.get("n_embd"), f.get("n_head")
    attention = AttentionSpec(num_heads=heads, num_kv_heads=heads, head_dim=h // heads, v_head_dim=h // heads,
                              qkv_bias=True, o_bias=True)
    mlp = MLPSpec(kind="dense", intermediate_size=f.get("n_inner", None) or 4 * h, gated=False, bias=True)
    return ArchSpec(name=name, model_type="gpt2", vocab_size=f.get("vocab_size"), hidden_size=h,
                    layer_groups=(LayerGroup(f.get("n_layer"), attention, mlp),),
                    tie_word_embeddings=f.get("tie_word_embeddings", True), norm="layernorm",
                    learned_positions=f.get("n_positions"), max_position_embeddings=f.get("n_positions"))


def _layer_windows(f: _Fields, num_layers: int) -> list[int | None]:
    """Per-layer sliding window. Mistral/Mixtral: `sliding_window` on every layer (absent: transformers' defaults,
    4096 for Mistral, none for Mixtral). Qwen2/Qwen3: only when `use_sliding_window`, on layers listed as
    "sliding_attention" in `layer_types`, else layers >= `max_window_layers` (transformers' Qwen2Config rule)."""
    window = f.get("sliding_window", 4096 if f.data["model_type"] == "mistral" else None)
    if f.data["model_type"] not in ("qwen2", "qwen3"):
        return [window] * num_layers
    if not f.get("use_sliding_window", False) or window is None:
        return [None] * num_layers
    layer_types = f.get("layer_types", None)
    if layer_types is not None:
        return [window if kind == "sliding_attention" else None for kind in layer_types]
    first = f.get("max_window_layers", num_layers)
    return [window if i >= first else None for i in range(num_layers)]


def _llama_like(f: _Fields, name: str) -> ArchSpec:
    """Llama, Mistral, Qwen2, Qwen3 and Mixtral: RMSNorm, RoPE, GQA, SwiGLU (Mixtral: top-k routed SwiGLU experts)."""
    model_type = f.data["model_type"]
    h, heads = f.get("hidden_size"), f.get("num_attention_heads")
    head_dim = f.get("head_dim", None) or h // heads
    attention_bias = f.get("attention_bias", False)
    attention_kwargs = dict(
        num_heads=heads, num_kv_heads=f.get("num_key_value_heads", None) or heads, head_dim=head_dim,
        v_head_dim=head_dim, qkv_bias=model_type == "qwen2" or attention_bias,
        o_bias=attention_bias and model_type != "qwen2", qk_norm=model_type == "qwen3",
    )
    if model_type == "mixtral":
        mlp = MLPSpec(kind="moe", intermediate_size=f.get("intermediate_size"),
                      num_experts=f.get("num_local_experts"), experts_per_token=f.get("num_experts_per_tok"))
    else:
        mlp = MLPSpec(kind="dense", intermediate_size=f.get("intermediate_size"), bias=f.get("mlp_bias", False))
    num_layers = f.get("num_hidden_layers")
    groups: list[LayerGroup] = []
    for window in _layer_windows(f, num_layers):
        attention = AttentionSpec(**attention_kwargs, sliding_window=window)
        if groups and groups[-1].attention == attention:
            groups[-1] = LayerGroup(groups[-1].count + 1, attention, mlp)
        else:
            groups.append(LayerGroup(1, attention, mlp))
    return ArchSpec(name=name, model_type=model_type, vocab_size=f.get("vocab_size"), hidden_size=h,
                    layer_groups=tuple(groups), tie_word_embeddings=f.get("tie_word_embeddings", False),
                    max_position_embeddings=f.get("max_position_embeddings", 2048))


def _deepseek_v3(f: _Fields, name: str) -> ArchSpec:
    """DeepSeek-V3 (DeepSeek-AI 2024, arXiv:2412.19437 §2): MLA attention; the first `first_k_dense_replace` layers
    have a dense SwiGLU MLP, the rest DeepSeekMoE (routed top-k experts + shared experts, sigmoid router with a
    score-correction bias). The multi-token-prediction layer (`num_nextn_predict_layers`) is not part of the main
    model and is not described here."""
    heads = f.get("num_attention_heads")
    nope, rope = f.get("qk_nope_head_dim"), f.get("qk_rope_head_dim")
    attention = AttentionSpec(
        num_heads=heads, num_kv_heads=f.get("num_key_value_heads", None) or heads, head_dim=nope + rope,
        v_head_dim=f.get("v_head_dim"), qkv_bias=False, o_bias=f.get("attention_bias", False),
        q_lora_rank=f.get("q_lora_rank", None), kv_lora_rank=f.get("kv_lora_rank"), rope_head_dim=rope,
    )
    moe_width = f.get("moe_intermediate_size")
    dense = MLPSpec(kind="dense", intermediate_size=f.get("intermediate_size"))
    moe = MLPSpec(kind="moe", intermediate_size=moe_width, num_experts=f.get("n_routed_experts"),
                  experts_per_token=f.get("num_experts_per_tok"), num_shared_experts=f.get("n_shared_experts", 0),
                  shared_intermediate_size=moe_width,
                  router_bias=f.get("topk_method", "noaux_tc") == "noaux_tc")
    num_layers, first_moe = f.get("num_hidden_layers"), f.get("first_k_dense_replace", 0)
    groups = tuple(LayerGroup(count, attention, mlp)
                   for count, mlp in ((first_moe, dense), (num_layers - first_moe, moe)) if count)
    return ArchSpec(name=name, model_type="deepseek_v3", vocab_size=f.get("vocab_size"),
                    hidden_size=f.get("hidden_size"), layer_groups=groups,
                    tie_word_embeddings=f.get("tie_word_embeddings", False),
                    max_position_embeddings=f.get("max_position_embeddings", 4096))


def _complexity(f: _Fields, name: str) -> ArchSpec:
    return from_complexity_config(ComplexityConfig.from_dict(f.data), name=name)


_ADAPTERS: dict[str, Callable[[_Fields, str], ArchSpec]] = {
    "gpt2": _gpt2, "llama": _llama_like, "mistral": _llama_like, "qwen2": _llama_like, "qwen3": _llama_like,
    "mixtral": _llama_like, "deepseek_v3": _deepseek_v3, "complexity": _complexity,
}
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(_ADAPTERS)


def from_hf_dict(data: dict[str, Any], name: str = "model") -> ArchSpec:
    """An `ArchSpec` from the dict of a HuggingFace `config.json` (model_type in `SUPPORTED_MODEL_TYPES`)."""
    if not isinstance(data, dict):
        raise ValueError(f"a config must be a JSON object, got {type(data).__name__}")
    model_type = data.get("model_type")
    if model_type not in _ADAPTERS:
        raise ValueError(f"model_type={model_type!r} is not supported; supported: {list(SUPPORTED_MODEL_TYPES)}")
    return _ADAPTERS[model_type](_Fields(data), name)
