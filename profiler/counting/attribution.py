"""Counted figures filed under the components of the analytic formulas, from module paths and op names.

The formulas split parameters by `PARAM_COMPONENTS` and matmul FLOPs by `FLOP_COMPONENTS`; a counter reports
(module path, op, value) triples. These functions map a path (as in `named_modules()` / `named_parameters()`) to a
component by the HF-compatible names both the zoo and transformers use (`self_attn`, `q_proj`, `mlp`, `gate`,
`lm_head`, `embed_tokens`, ...), so counts from any counter on any supported family compare with the formulas
component by component.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the counter imports torch; attribution itself is plain string work
    from profiler.counting.counter import FlopCounts

FLOP_COMPONENTS = ("attention_qkv", "attention_core", "attention_out", "mlp", "router", "lm_head", "unattributed")
PARAM_COMPONENTS = ("embeddings", "attention", "mlp", "router", "norms", "head", "unattributed")

_ATTENTION_MODULES = ("self_attn", "attn", "attention", "self_attention")  # self_attention: Falcon's
_MLP_MODULES = ("mlp", "block_sparse_moe", "feed_forward")
_OUTPUT_PROJECTIONS = ("o_proj", "c_proj", "out_proj", "dense")
_EMBEDDINGS = ("embed_tokens", "wte", "wpe", "word_embeddings", "embed_in")  # Falcon's, GPT-NeoX's
_NORMS = ("norm", "ln_")
# transformers keeps DeepSeek-V3's score-correction bias as a buffer; the formulas count it as a router parameter.
_PARAMETER_BUFFERS = ("e_score_correction_bias",)


def component_of(module_path: str, op: str) -> str:
    """The FLOP component a counted op belongs to, from the op and the module it ran in.

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
        return "attention_out" if leaf in _OUTPUT_PROJECTIONS else "attention_qkv"
    if any(p in _MLP_MODULES for p in parts):
        return "router" if leaf == "gate" else "mlp"
    return "unattributed"


def components_of(flops: Iterable[tuple[str, str, int]]) -> dict[str, int]:
    """(module path, op name, FLOPs) triples — from any counter — summed per component of `FLOP_COMPONENTS`."""
    totals = dict.fromkeys(FLOP_COMPONENTS, 0)
    for module, op, value in flops:
        totals[component_of(module, op)] += value
    return totals


def by_component(counts: FlopCounts, phase: str, bucket: str = "matmul") -> dict[str, int]:
    """Our counter's FLOPs of one phase per component of `FLOP_COMPONENTS` (zeros included)."""
    return components_of((module, op, getattr(tally, bucket))
                         for (tally_phase, module, op), tally in counts.tallies.items() if tally_phase == phase)


def param_component(name: str) -> str:
    """The params-formula component of a parameter (or counted buffer) from its name in `named_parameters()`."""
    parts = name.split(".")
    if parts[0] == "lm_head":
        return "head"
    if any(p in _EMBEDDINGS for p in parts):
        return "embeddings"
    if any(p in _ATTENTION_MODULES for p in parts):
        return "attention"
    if any(p in _MLP_MODULES for p in parts):
        return "router" if "gate" in parts else "mlp"
    if len(parts) > 1 and any(marker in parts[-2] for marker in _NORMS):
        return "norms"
    return "unattributed"


def counted_params(module: Any) -> dict[str, int]:
    """Parameters of `module` (a torch.nn.Module; tied ones once) plus `_PARAMETER_BUFFERS`, by
    `PARAM_COMPONENTS`."""
    totals = dict.fromkeys(PARAM_COMPONENTS, 0)
    buffers = [(n, b) for n, b in module.named_buffers() if n.rsplit(".", 1)[-1] in _PARAMETER_BUFFERS]
    for name, tensor in [*module.named_parameters(), *buffers]:
        totals[param_component(name)] += tensor.numel()
    return totals
