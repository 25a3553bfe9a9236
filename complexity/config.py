"""`ComplexityConfig`: every hyper-parameter of a Complexity model, validated on construction.

The field names follow HuggingFace's Llama/Mistral/Qwen3 `config.json` so the same file can be read by the profiler
and by people who know those models. Two families of fields are ours:

* `use_qk_norm` — RMSNorm over `head_dim` on queries and keys before RoPE (as in Qwen3 and Gemma 3).
* `use_token_routed_mlp`, `num_experts`, `routing` — the token-routed MLP: `num_experts` SwiGLU experts of width
  `intermediate_size // num_experts`; each token goes to exactly one expert chosen from its token id.

`SIZES` holds the named sizes of seed 001 (hidden size, layers, 4 experts) with the widths we chose; see README's
size table for their exact parameter counts.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from typing import Any

from complexity.inputs import require_int, require_number

MODEL_TYPE = "complexity"
ROUTING_MODES = ("range", "modulo")
DTYPES = ("float32", "bfloat16", "float16", "float64")

# Keys HF writes into config.json that carry no hyper-parameter; accepted and dropped on load.
_HF_METADATA_KEYS = frozenset({"model_type", "architectures", "transformers_version", "auto_map"})

# Fields a saved config must state (`from_dict(..., complete=True)`, used by `from_json_file` and so by
# `from_pretrained`): every field the logits or the generated tokens depend on, so that no default can silently
# change a saved model's numbers. Not required: `initializer_range` (used only by `init_weights`) and the
# tokenizer's `bos_token_id` / `eos_token_id` (metadata: `generate` takes its eos as an argument). `pad_token_id`
# is required: `generate` fills finished rows with it, and so is `max_position_embeddings`: it decides which
# inputs are refused. `save_pretrained` writes every field.
FIELDS_THE_LOGITS_DEPEND_ON = (
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "max_position_embeddings", "rope_theta", "rms_norm_eps",
    "tie_word_embeddings", "use_qk_norm", "sliding_window", "use_token_routed_mlp", "num_experts", "routing",
    "pad_token_id", "torch_dtype",
)

# The RoPE cos/sin table (complexity/core/rotary.py) holds 2 float32 tables of max_position_embeddings x head_dim,
# built at the first forward (through float64 temporaries, about 4x that while it is built). A config whose table
# would exceed this cap is refused, so a typo such as 10**7 positions fails here instead of allocating gigabytes.
# 1 GiB allows 1,048,576 positions at head_dim 128 (Llama 3.1's 131,072 positions need 128 MiB).
MAX_ROPE_TABLE_BYTES = 2**30


# Bounds on the model's size, so that a typo (vocab_size 10**30, num_hidden_layers 10**9) fails here with the
# field named rather than inside torch (an int64 overflow) or after minutes of building layers. Generous: the
# largest open models have about 1e12 weights (2**40 = 1.1e12) and 126 layers (Llama 3.1 405B).
MAX_LAYERS = 1024
MAX_MATRIX_WEIGHTS = 2**40  # weights in the matrices (embedding, LM head, projections, MLP), norms excluded


def matrix_weights(config: ComplexityConfig) -> int:
    """Weights in the model's matrices: embedding (+ untied head) V*H, per layer attention H*hd*(2*heads +
    2*kv_heads) and MLP 3*H*I (the token-routed MLP's experts together are as wide as one dense MLP)."""
    h, hd = config.hidden_size, config.head_dim
    per_layer = h * hd * (2 * config.num_attention_heads + 2 * config.num_key_value_heads) + 3 * h * config.intermediate_size
    return config.vocab_size * h * (1 if config.tie_word_embeddings else 2) + config.num_hidden_layers * per_layer


def _scientific(n: int) -> str:
    """An integer in e-notation, also past float's range (where it would overflow)."""
    return f"{n:.3e}" if n < 10**300 else f"~1e{len(str(n)) - 1}"


def rope_table_bytes(max_position_embeddings: int, head_dim: int) -> int:
    """Bytes of the float32 cos and sin tables RoPE keeps: 2 x positions x head_dim x 4 B."""
    return 2 * max_position_embeddings * head_dim * 4


@dataclass
class ComplexityConfig:
    vocab_size: int = 32000
    hidden_size: int = 256
    intermediate_size: int = 768
    num_hidden_layers: int = 6
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int | None = None  # None: hidden_size // num_attention_heads
    max_position_embeddings: int = 2048
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = True
    use_qk_norm: bool = True
    sliding_window: int | None = None  # None: full causal attention; W: each query sees itself and W-1 earlier keys
    use_token_routed_mlp: bool = True
    num_experts: int = 4
    routing: str = "range"  # "range": expert = id * E // vocab_size; "modulo": expert = id % E
    initializer_range: float = 0.02
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    torch_dtype: str = "float32"  # dtype of the stored weights; checked when a checkpoint is loaded

    def __post_init__(self) -> None:
        if self.head_dim is None:
            require_int("num_attention_heads", self.num_attention_heads)
            require_int("hidden_size", self.hidden_size)
            if self.hidden_size % self.num_attention_heads:
                raise ValueError(
                    f"hidden_size={self.hidden_size} must be divisible by num_attention_heads="
                    f"{self.num_attention_heads} when head_dim is not given"
                )
            self.head_dim = self.hidden_size // self.num_attention_heads
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ValueError naming the first field whose value is out of its allowed range."""
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "head_dim", "max_position_embeddings", "num_experts"):
            require_int(name, getattr(self, name))
        require_int("max_position_embeddings", self.max_position_embeddings,
                    maximum=MAX_ROPE_TABLE_BYTES // rope_table_bytes(1, self.head_dim),
                    note=f"at head_dim={self.head_dim} the RoPE table, 2 x positions x head_dim x 4 B, is capped at "
                         f"{MAX_ROPE_TABLE_BYTES // 2**30} GiB")
        require_int("num_hidden_layers", self.num_hidden_layers, maximum=MAX_LAYERS)
        if matrix_weights(self) > MAX_MATRIX_WEIGHTS:
            raise ValueError(
                f"vocab_size={self.vocab_size}, hidden_size={self.hidden_size}, intermediate_size="
                f"{self.intermediate_size}, num_hidden_layers={self.num_hidden_layers}, num_attention_heads="
                f"{self.num_attention_heads}, num_key_value_heads={self.num_key_value_heads}, head_dim={self.head_dim} "
                f"make {_scientific(matrix_weights(self))} matrix weights; at most 2**40 = {MAX_MATRIX_WEIGHTS:.3e}"
            )
        if self.head_dim % 2:
            raise ValueError(f"head_dim={self.head_dim} must be even (RoPE rotates pairs of channels)")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads={self.num_attention_heads} must be divisible by "
                f"num_key_value_heads={self.num_key_value_heads} (allowed: a divisor of num_attention_heads)"
            )
        for name in ("rope_theta", "rms_norm_eps", "initializer_range"):
            # JSON may write a whole number (10000): kept as a float so the config round-trips unchanged.
            setattr(self, name, require_number(name, getattr(self, name), low=0, low_inclusive=False))
        for name in ("tie_word_embeddings", "use_qk_norm", "use_token_routed_mlp"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be true or false")
        if self.sliding_window is not None:
            require_int("sliding_window", self.sliding_window, note="or null for full causal attention")
        if self.routing not in ROUTING_MODES:
            raise ValueError(f"routing={self.routing!r} is not one of {ROUTING_MODES}")
        if self.use_token_routed_mlp:
            if self.intermediate_size % self.num_experts:
                raise ValueError(
                    f"num_experts={self.num_experts} must divide intermediate_size={self.intermediate_size} "
                    "(each expert is intermediate_size // num_experts wide)"
                )
            if self.num_experts > self.vocab_size:
                raise ValueError(f"num_experts={self.num_experts} must be at most vocab_size={self.vocab_size}")
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            value = getattr(self, name)
            if value is not None:
                require_int(name, value, minimum=0, maximum=self.vocab_size - 1,
                            note=f"an id below vocab_size={self.vocab_size}, or null")
        if self.torch_dtype not in DTYPES:
            raise ValueError(f"torch_dtype={self.torch_dtype!r} is not one of {DTYPES}")

    # ------------------------------------------------------------------ derived sizes
    @property
    def expert_intermediate_size(self) -> int:
        """Width of one expert of the token-routed MLP (the whole MLP width when it is dense)."""
        return self.intermediate_size // self.num_experts if self.use_token_routed_mlp else self.intermediate_size

    # ------------------------------------------------------------------ JSON (HF config.json style)
    def to_dict(self) -> dict[str, Any]:
        return {"model_type": MODEL_TYPE, "architectures": ["ComplexityForCausalLM"], **asdict(self)}

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], complete: bool = False) -> ComplexityConfig:
        """A validated config from HF-style `data`. Missing fields take their defaults, unless `complete` (a saved
        config, as `from_json_file` reads): then each of FIELDS_THE_LOGITS_DEPEND_ON must be present."""
        if not isinstance(data, dict):
            raise ValueError(f"a config must be a JSON object, got {type(data).__name__}")
        if complete:
            missing = [name for name in FIELDS_THE_LOGITS_DEPEND_ON if name not in data]
            if missing:
                raise ValueError(f"config lacks field(s) {missing}, which change the model's outputs: a saved config "
                                 "must state them (save_pretrained writes every field)")
        model_type = data.get("model_type", MODEL_TYPE)
        if model_type != MODEL_TYPE:
            raise ValueError(f"model_type={model_type!r}: this config class reads only model_type={MODEL_TYPE!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - _HF_METADATA_KEYS)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; allowed fields: {sorted(known)}")
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> ComplexityConfig:
        """Read a saved config.json (`complete`: every field the logits depend on must be in it). Any problem is a
        one-line ValueError that starts with the file's path."""
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from err
        except ValueError as err:  # JSONDecodeError, or an integer literal past Python's digit limit
            raise ValueError(f"{path}: not valid JSON ({err})") from err
        except (OSError, RecursionError) as err:  # unreadable, a directory, nested too deep for the parser
            raise ValueError(f"{path}: cannot be read ({type(err).__name__}: {err})") from err
        try:
            return cls.from_dict(data, complete=True)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err


# Named sizes. Hidden size and depth are seed 001's; the rest is our choice (README explains it):
# head_dim 64, 4:1 grouped-query attention where the head count allows it (20m's 5 heads allow none), MLP
# width 8/3 x hidden (Llama's SwiGLU rule) rounded up to a multiple of 256 so each of the 4 experts is a multiple
# of 64 wide, vocabulary 32,000 (Llama's) with tied embeddings. `active` parameters per token use one expert, i.e. a quarter of the MLP.
SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(hidden_size=256, num_hidden_layers=6, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=768),
    "20m": dict(hidden_size=320, num_hidden_layers=8, num_attention_heads=5, num_key_value_heads=5,
                intermediate_size=1024),
    "small": dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=2,
                  intermediate_size=1536),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=4,
                 intermediate_size=2048),
    "medium": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, num_key_value_heads=4,
                   intermediate_size=2816),
    "large": dict(hidden_size=1536, num_hidden_layers=24, num_attention_heads=24, num_key_value_heads=6,
                  intermediate_size=4096),
    "1b": dict(hidden_size=2048, num_hidden_layers=24, num_attention_heads=32, num_key_value_heads=8,
               intermediate_size=5632),
}


def config_for_size(size: str, **overrides: Any) -> ComplexityConfig:
    """The `ComplexityConfig` of a named size, with any field overridden."""
    if size not in SIZES:
        raise ValueError(f"size={size!r} is not one of {sorted(SIZES)}")
    return ComplexityConfig(**{**SIZES[size], **overrides})
