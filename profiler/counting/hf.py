"""transformers' own decoders built from a config.json (no weights), and counted FLOPs split into the components of
the analytic formulas, so formulas are checked against code nobody here wrote.

Dense models are built on the meta device. Mixture-of-experts routing reads the router's scores, so MoE models
(Mixtral, DeepSeek-V3) must run on real tensors: `scaled_down` shrinks a config to a few layers and a narrow width,
keeping its structure (experts, top-k, MLA ranks ratio, first dense layers), and the model is built on CPU with
random weights. Every model runs in eval mode (no dropout) with PyTorch SDPA attention.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from profiler.counting.counter import FlopCounts

MOE_MODEL_TYPES = frozenset({"mixtral", "deepseek_v3", "qwen3_moe", "qwen2_moe"})
_ATTENTION_MODULES = ("self_attn", "attn", "attention")
COUNTED_COMPONENTS = ("attention_qkv", "attention_core", "attention_out", "mlp", "router", "lm_head", "unattributed")

# Small values for the size fields of the supported configs; others are kept.
_SCALED_DOWN = {
    "hidden_size": 64, "n_embd": 64, "intermediate_size": 128, "moe_intermediate_size": 32, "num_hidden_layers": 2,
    "n_layer": 2, "num_attention_heads": 4, "n_head": 4, "head_dim": 16, "vocab_size": 256, "n_positions": 256,
    "max_position_embeddings": 256, "q_lora_rank": 32, "kv_lora_rank": 16, "qk_nope_head_dim": 16,
    "qk_rope_head_dim": 8, "v_head_dim": 16, "first_k_dense_replace": 1, "n_routed_experts": 32,
    "num_local_experts": 4, "n_group": 4, "topk_group": 2,
}


def scaled_down(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of an HF config.json dict with every size field present replaced by a small value (see
    `_SCALED_DOWN`); the key/value head count becomes half the heads (MHA stays MHA), a sliding window 8, and
    YaRN/rope scaling is dropped. Counts of the result are checked against the formulas on the same dict."""
    small = {**config, **{k: v for k, v in _SCALED_DOWN.items() if k in config}}
    if "num_key_value_heads" in config:
        mha = config["num_key_value_heads"] == config.get("num_attention_heads")
        small["num_key_value_heads"] = small["num_attention_heads"] if mha else small["num_attention_heads"] // 2
    if config.get("sliding_window") is not None:
        small["sliding_window"] = 8
    small.pop("rope_scaling", None)
    return small


def build_hf_model(config: dict[str, Any], device: str = "meta") -> torch.nn.Module:
    """transformers' causal-LM class for `config["model_type"]`, built from the config with SDPA attention."""
    from transformers import AutoConfig, AutoModelForCausalLM  # optional dependency, imported on use

    fields = {k: v for k, v in config.items() if k not in ("architectures", "transformers_version", "model_type")}
    if "model_type" not in config:
        raise ValueError("config.json needs a model_type field (e.g. 'llama', 'mixtral', 'gpt2')")
    try:
        hf_config = AutoConfig.for_model(config["model_type"], **fields)
    except ValueError as err:
        raise ValueError(f"model_type={config['model_type']!r} is not known to transformers: {err}") from err
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(hf_config, attn_implementation="sdpa")
    return model.eval()


def component_of(module_path: str, op: str) -> str:
    """The analytic component a counted op belongs to, from the op and the module it ran in.

    SDPA kernels, and products run by the attention module itself (PyTorch's math path, e.g. when d_qk != d_v
    as in MLA) -> attention_core (scores + values); projections inside an attention module (self_attn, attn)
    -> attention_out for the output projection (o_proj, c_proj, out_proj, dense) else attention_qkv; a `gate`
    module inside an MLP/MoE block -> router; anything else inside an MLP/MoE block -> mlp; lm_head -> lm_head."""
    if "scaled_dot_product" in op:
        return "attention_core"
    parts = module_path.split(".")
    leaf = parts[-1]
    if leaf == "lm_head":
        return "lm_head"
    if leaf in _ATTENTION_MODULES:  # products in the attention module itself: SDPA's math path (bmm)
        return "attention_core"
    if any(p in _ATTENTION_MODULES for p in parts):
        return "attention_out" if leaf in ("o_proj", "c_proj", "out_proj", "dense") else "attention_qkv"
    if any(p in ("mlp", "block_sparse_moe", "feed_forward") for p in parts):
        return "router" if leaf == "gate" else "mlp"
    return "unattributed"


def by_component(counts: FlopCounts, phase: str, bucket: str = "matmul") -> dict[str, int]:
    """Counted FLOPs of one phase per component of `COUNTED_COMPONENTS` (zeros included)."""
    return components_of((module, op, getattr(tally, bucket))
                         for (tally_phase, module, op), tally in counts.tallies.items() if tally_phase == phase)


def components_of(flops: Iterable[tuple[str, str, int]]) -> dict[str, int]:
    """(module path, op name, FLOPs) triples — from any counter — summed per component of `COUNTED_COMPONENTS`."""
    totals = dict.fromkeys(COUNTED_COMPONENTS, 0)
    for module, op, value in flops:
        totals[component_of(module, op)] += value
    return totals
