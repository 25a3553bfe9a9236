"""`ModelSource`: a MODEL argument resolved once, and the one factory of real modules.

Every command that takes a MODEL calls `resolve` on it and passes the `ModelSource` on; nothing else opens a model
config file, tells a zoo model from a HuggingFace one, or builds a module. A MODEL is one of

* a zoo size (`complexity.config.SIZES`: tiny, 20m, small, ...);
* the name of a shipped config (`shipped_model_names()`: llama_7b, mixtral_8x7b, ... — package data in
  `profiler/data/models/`, so they work from a wheel install too);
* a path to a HuggingFace-style `config.json` (any `SUPPORTED_MODEL_TYPES`, the zoo's own `complexity` included).

A source holds the `ArchSpec` the formulas read, the raw config, and `build(device, for_counting)`: the zoo's
`ComplexityForCausalLM` or transformers' own class for the config's `model_type`. Importing this module imports
neither torch nor transformers; `build` does, when called.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from complexity.config import SIZES, ComplexityConfig, config_for_size
from profiler.arch import ArchSpec, from_complexity_config, from_hf_dict

MODELS_DIR = Path(__file__).resolve().parent / "data" / "models"
PUBLISHED_FILE = "published.json"  # published parameter counts of the shipped configs, not a model
DEVICES = ("meta", "cpu", "cuda", "mps")

# Small values for the size fields of the supported configs (`ModelSource.scaled_down`); others are kept.
_SCALED_DOWN = {
    "hidden_size": 64, "n_embd": 64, "intermediate_size": 128, "moe_intermediate_size": 32, "num_hidden_layers": 2,
    "n_layer": 2, "num_attention_heads": 4, "n_head": 4, "head_dim": 16, "vocab_size": 256, "n_positions": 256,
    "max_position_embeddings": 256, "q_lora_rank": 32, "kv_lora_rank": 16, "qk_nope_head_dim": 16,
    "qk_rope_head_dim": 8, "v_head_dim": 16, "first_k_dense_replace": 1, "n_routed_experts": 32,
    "num_local_experts": 4, "n_group": 4, "topk_group": 2, "num_experts": 8, "shared_expert_intermediate_size": 64,
    "ffn_hidden_size": 128,
}
# config.json keys that describe the file, not the model; transformers' AutoConfig.for_model takes them apart.
_HF_METADATA = ("architectures", "transformers_version", "model_type")


def shipped_model_names() -> list[str]:
    """Names of the shipped model configs (file stems in profiler/data/models)."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.json") if p.name != PUBLISHED_FILE)


def read_json(path: str | Path) -> Any:
    """The JSON document in `path`, read strictly: UTF-8 text, standard JSON (no NaN or Infinity, no number that
    overflows a float); a ValueError naming the file when it cannot be read or parsed."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f, parse_constant=_not_a_number, parse_float=_finite_float)
    except OSError as err:
        raise ValueError(f"{path}: cannot be read ({err.strerror or err})") from err
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}), so not a JSON file") from err
    except RecursionError as err:
        raise ValueError(f"{path}: not valid JSON (nested too deep)") from err
    except ValueError as err:  # json.JSONDecodeError, or a number the two hooks below refuse
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def _not_a_number(name: str) -> None:
    """json's hook for NaN, Infinity and -Infinity, which Python accepts and JSON does not."""
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} overflows a float")
    return value


@dataclass(frozen=True)
class ModelSource:
    """A resolved MODEL: its name, its `ArchSpec`, the raw config (a config.json dict, or the zoo config's dict)
    and where it came from ("zoo size", "shipped config" or the file's path)."""

    name: str
    arch: ArchSpec
    config: Mapping[str, Any]
    origin: str

    @property
    def is_zoo(self) -> bool:
        """A Complexity zoo model (built by `complexity`), not one of transformers' classes."""
        return self.arch.model_type == "complexity"

    @property
    def has_routed_experts(self) -> bool:
        """Some layer routes tokens by a learned router (MoE): routing reads scores, so it cannot run on meta."""
        return any(group.mlp.kind == "moe" for group in self.arch.layer_groups)

    def zoo_config(self) -> ComplexityConfig:
        if not self.is_zoo:
            raise ValueError(f"model {self.name!r} has model_type={self.arch.model_type!r}, not a zoo model")
        return ComplexityConfig.from_dict(dict(self.config))

    def scaled_down(self) -> ModelSource:
        """The same family and structure at a tiny size: every size field present replaced by a small value
        (`_SCALED_DOWN`), key/value heads half the heads (MHA stays MHA), a sliding window of 8, no rope scaling.
        Per-layer lists keep their first layers (`layer_types`) or the layers that remain (`mlp_only_layers`); top-k
        is cut to the experts left; token ids past the small vocabulary are dropped. Used to run mixture-of-experts models on real tensors; formulas are then checked
        on this same config."""
        if self.is_zoo:
            raise ValueError("scaled_down is for HuggingFace configs; pick a smaller zoo size instead")
        config = dict(self.config)
        small = {**config, **{k: v for k, v in _SCALED_DOWN.items() if config.get(k) is not None}}
        for key in ("num_key_value_heads", "num_kv_heads"):  # num_kv_heads: Falcon's
            if key in config:
                mha = config[key] == config.get("num_attention_heads")
                small[key] = small["num_attention_heads"] if mha else small["num_attention_heads"] // 2
        if config.get("sliding_window") is not None:
            small["sliding_window"] = 8
        layers = small.get("num_hidden_layers", small.get("n_layer"))
        if isinstance(config.get("layer_types"), list):
            small["layer_types"] = config["layer_types"][:layers]
        if isinstance(config.get("mlp_only_layers"), list):
            small["mlp_only_layers"] = [i for i in config["mlp_only_layers"] if i < layers]
        experts = next((small[k] for k in ("num_experts", "n_routed_experts", "num_local_experts") if k in small), None)
        if experts and config.get("num_experts_per_tok", 0) > experts:
            small["num_experts_per_tok"] = experts
        for key in ("pad_token_id", "bos_token_id", "eos_token_id"):  # ids past the small vocabulary (Phi-3's pad)
            if isinstance(small.get(key), int) and small[key] >= small.get("vocab_size", 0):
                small[key] = None
        small.pop("rope_scaling", None)
        name = f"{self.arch.name} (scaled down)"
        return ModelSource(name, from_hf_dict(small, name), small, self.origin)

    def null_widths(self) -> ModelSource:
        """The same zoo model — layers, heads, experts, routing, window, norms, tying — at widths where its kernels
        do almost no work (hidden 16, head_dim 8, experts 16 wide, 256-token vocabulary): the null workload whose
        step time is the host overhead of the model's code (`profiler.measuring.host_overhead`). Zoo models only:
        transformers' families have no such rewrite here."""
        if not self.is_zoo:
            raise ValueError(f"model {self.name!r}: null_widths is for zoo models (transformers' families keep the "
                             f"per-launch overhead)")
        config = self.zoo_config()
        widths = {"hidden_size": 16, "head_dim": 8, "vocab_size": max(256, config.num_experts),
                  "intermediate_size": 16 * (config.num_experts if config.use_token_routed_mlp else 1)}
        ids = {key: None for key in ("pad_token_id", "bos_token_id", "eos_token_id")
               if (getattr(config, key) or 0) >= widths["vocab_size"]}
        return from_config_dict({**config.to_dict(), **widths, **ids}, f"{self.name} (null widths)", self.origin)

    def build(self, device: str = "meta", for_counting: bool = False) -> Any:
        """The real module (a torch.nn.Module) on `device`, in float32.

        Zoo: `ComplexityForCausalLM`, its weights initialised unless on meta or `for_counting`. With
        `for_counting` on meta, a token-routed MLP (whose routing reads the token ids, impossible on meta) is
        replaced by a dense SwiGLU one expert wide: its matmul FLOPs are exactly the routed MLP's, since every
        token passes through exactly one expert whatever the routing (parameters differ: count those on
        `build("meta")`).
        HuggingFace: transformers' causal-LM class for `model_type`, SDPA attention (eager where the class has no
        SDPA path: Gemma 2), eval mode (no dropout),
        randomly initialised by transformers (nothing is downloaded)."""
        import torch

        try:
            device_type = torch.device(device).type
        except RuntimeError:
            device_type = None
        if device_type not in DEVICES:
            raise ValueError(f"device={device!r} must be one of {list(DEVICES)} (or cuda:N)")
        if not self.is_zoo:
            return _build_hf(dict(self.config), self.arch.model_type, device)
        from complexity.models.modeling import ComplexityForCausalLM

        config = self.zoo_config()
        meta = device_type == "meta"
        if for_counting and meta and config.use_token_routed_mlp:
            config = ComplexityConfig.from_dict({**config.to_dict(), "use_token_routed_mlp": False,
                                                 "intermediate_size": config.expert_intermediate_size})
        with torch.device(device):
            module = ComplexityForCausalLM(config)
        if not (meta or for_counting):
            module.init_weights()
        return module


def _build_hf(config: dict[str, Any], model_type: str, device: str) -> Any:
    """transformers' causal-LM class for `model_type` (the family `arch.detect_model_type` found), SDPA attention
    where the class supports it, else eager (Gemma 2: SDPA has no soft-capping)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM  # optional dependency (the dev extra)

    fields = {k: v for k, v in config.items() if k not in _HF_METADATA}
    try:
        hf_config = AutoConfig.for_model(model_type, **fields)
    except ValueError as err:
        raise ValueError(f"model_type={model_type!r} is not known to transformers: {err}") from err
    model_class = AutoModelForCausalLM._model_mapping[type(hf_config)]
    attention = "sdpa" if getattr(model_class, "_supports_sdpa", True) else "eager"
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(hf_config, attn_implementation=attention)
    return model.eval()


def from_config_dict(config: Mapping[str, Any], name: str, origin: str = "config") -> ModelSource:
    """A source from a config.json dict already in memory (its `model_type` says the family)."""
    arch = from_hf_dict(dict(config), name)
    if arch.model_type == "complexity":  # keep the zoo's own dict, validated and complete
        config = ComplexityConfig.from_dict(dict(config)).to_dict()
    return ModelSource(name, arch, dict(config), origin)


def resolve(model: str) -> ModelSource:
    """MODEL as every command takes it: a zoo size, a shipped config's name, or a config.json path."""
    if not isinstance(model, str) or not model:
        raise ValueError(f"MODEL={model!r} must be a zoo size, a shipped config name or a config.json path")
    if model in SIZES:
        config = config_for_size(model)
        return ModelSource(model, from_complexity_config(config, name=model), config.to_dict(), "zoo size")
    if model in shipped_model_names():
        return from_config_dict(read_json(MODELS_DIR / f"{model}.json"), model, "shipped config")
    path = Path(model)
    if path.is_file():
        data = read_json(path)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a config must be a JSON object, got {type(data).__name__}")
        return from_config_dict(data, path.stem, str(path))
    raise ValueError(f"MODEL={model!r} is neither a zoo size ({', '.join(SIZES)}), a shipped config "
                     f"({', '.join(shipped_model_names())}) nor a config.json file")
