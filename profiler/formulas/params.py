"""Parameter counts, exact to the parameter, by component.

Components: `embeddings` (token table, plus GPT-2's learned position table), `attention` (projections, their
biases, QK-norm and MLA's latent norms), `mlp` (dense MLP, routed and shared experts, Qwen2-MoE's shared-expert
gate), `router` (MoE gate matrix and DeepSeek-V3's score-correction bias), `norms` (every per-layer norm of
`ArchSpec.norm_positions`, and the final one), `head` (the LM head when it is not tied to the embeddings; a tied
head is stored once, under `embeddings`). Scales and soft-caps (Gemma's embedding scale, Granite's multipliers)
have no parameters.

Conventions: `embedding` = every vocabulary- or position-indexed matrix (token table, position table, untied LM
head), the convention of the Qwen model cards (Qwen3-0.6B: "0.6B, 0.44B non-embedding"). `active` = parameters
one token uses: everything except the routed experts it does not visit (MoE: top-k of E; token-routed: 1 of E).
`active_compute` = the active parameters that take part in a matmul: active minus the input lookup tables (token
and position embeddings), a tied table counting once, as the LM head. DeepSeek-V3's "36.6B activated" uses this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from profiler.arch import ArchSpec, AttentionSpec, MLPSpec

COMPONENTS = ("embeddings", "attention", "mlp", "router", "norms", "head")


def linear_params(d_in: int, d_out: int, bias: bool = False) -> int:
    """A linear layer: d_in * d_out weights (+ d_out biases)."""
    return d_in * d_out + (d_out if bias else 0)


def norm_params(width: int, norm: str) -> int:
    """RMSNorm has one scale per channel (Zhang & Sennrich 2019); LayerNorm a scale and a shift (Ba et al. 2016)."""
    return width * (2 if norm == "layernorm" else 1)


def attention_params(att: AttentionSpec, hidden: int) -> int:
    """Attention projections of one layer.

    Standard: h*H*d + 2*h*KV*d (q, k, v) + H*d*h (o), + biases, + 2*d for QK-norm (one RMSNorm over head_dim for
    queries, one for keys, shared across heads as in Qwen3).
    MLA (DeepSeek-V2 arXiv:2405.04434 §2.1, V3 §2.1.1): q path h*r_q + r_q (norm) + r_q*H*d_qk (or h*H*d_qk without
    a query rank); kv path h*(r_kv + d_rope) + r_kv (norm) + r_kv*H*(d_nope + d_v); output H*d_v*h.
    These are the sizes of the tensors `AttentionSpec.weight_shapes` lists, summed.
    """
    return sum(math.prod(shape) for shape in att.weight_shapes(hidden).values())


def expert_params(width: int, hidden: int, gated: bool, bias: bool) -> int:
    """One feed-forward network: SwiGLU (Shazeer 2020) has gate and up [width, h] and down [h, width] = 3*h*width;
    a plain MLP (GPT-2) has 2*h*width, + biases."""
    params = 2 * linear_params(hidden, width, bias) + linear_params(width, hidden, bias)
    return params if gated else params - linear_params(hidden, width, bias)


def shared_gate_params(mlp: MLPSpec, hidden: int) -> int:
    """Qwen2-MoE's shared_expert_gate: a bias-free [1, h] linear whose sigmoid scales the shared expert's output
    (transformers' Qwen2MoeSparseMoeBlock); 0 elsewhere."""
    return hidden if mlp.shared_expert_gate else 0


def mlp_params(mlp: MLPSpec, hidden: int, active: bool = False) -> int:
    """MLP of one layer: experts (all of them, or the ones a token visits when `active`) + shared experts (+ their
    gate). Dense: one expert. MoE: E (active: k) experts + shared ones (Fedus et al. 2021; DeepSeekMoE
    arXiv:2401.06066). Token-routed: E (active: 1) experts."""
    one = expert_params(mlp.intermediate_size, hidden, mlp.gated, mlp.bias)
    routed = mlp.experts_per_token if active else mlp.num_experts
    shared = mlp.num_shared_experts * expert_params(mlp.shared_intermediate_size, hidden, mlp.gated, mlp.bias)
    return routed * one + shared + shared_gate_params(mlp, hidden)


def router_params(mlp: MLPSpec, hidden: int) -> int:
    """MoE router: a bias-free gate [E, h] (Mixtral, DeepSeek-V3) + E score-correction biases (DeepSeek-V3 §2.1.2;
    stored in the checkpoint, a buffer in transformers). The token-routed MLP and dense MLPs have none."""
    if mlp.kind != "moe":
        return 0
    return hidden * mlp.num_experts + (mlp.num_experts if mlp.router_bias else 0)


def router_bias_params(arch: ArchSpec) -> int:
    """The score-correction biases alone: counted in `router`, but not among transformers' `parameters()`."""
    return sum(g.count * g.mlp.num_experts for g in arch.layer_groups if g.mlp.kind == "moe" and g.mlp.router_bias)


def embedding_params(arch: ArchSpec) -> int:
    """Token table V*h, plus a learned position table P*h (GPT-2)."""
    return (arch.vocab_size + arch.learned_positions) * arch.hidden_size


def head_params(arch: ArchSpec) -> int:
    """Untied LM head V*h (no bias in any supported family); 0 when tied to the token table."""
    return 0 if arch.tie_word_embeddings else arch.vocab_size * arch.hidden_size


@dataclass(frozen=True)
class ParamCounts:
    components: dict[str, int]  # all parameters, by component (keys: COMPONENTS)
    active_components: dict[str, int]  # parameters one token uses, by component
    head_weights: int  # V*h, whether stored under `head` or tied to `embeddings`

    @property
    def total(self) -> int:
        return sum(self.components.values())

    @property
    def active(self) -> int:
        return sum(self.active_components.values())

    @property
    def embedding(self) -> int:
        return self.components["embeddings"] + self.components["head"]

    @property
    def non_embedding(self) -> int:
        return self.total - self.embedding

    @property
    def active_non_embedding(self) -> int:
        return self.active - self.embedding

    @property
    def active_compute(self) -> int:
        return self.active - self.components["embeddings"] + self.tied_head

    @property
    def tied_head(self) -> int:
        """The LM head's V*h weights when they are the token table (stored once, under `embeddings`)."""
        return self.head_weights - self.components["head"]


def count_params(arch: ArchSpec) -> ParamCounts:
    """Every parameter of the model, by component, and the ones one token uses."""
    h = arch.hidden_size
    per_layer_norms = len(arch.norm_positions) * norm_params(h, arch.norm)  # ArchSpec.norm_positions

    def by_component(active: bool) -> dict[str, int]:
        return {
            "embeddings": embedding_params(arch),
            "attention": sum(g.count * attention_params(g.attention, h) for g in arch.layer_groups),
            "mlp": sum(g.count * mlp_params(g.mlp, h, active) for g in arch.layer_groups),
            "router": sum(g.count * router_params(g.mlp, h) for g in arch.layer_groups),
            "norms": arch.num_layers * per_layer_norms + norm_params(h, arch.norm),
            "head": head_params(arch),
        }

    return ParamCounts(components=by_component(False), active_components=by_component(True),
                       head_weights=arch.vocab_size * h)


def parameter_tensor_sizes(arch: ArchSpec) -> list[int]:
    """Numbers in each parameter tensor the optimizer loops over (they add up to `count_params(arch).total`):
    token embedding (+ position table, + untied head), per layer the norms, projections (+ biases, QK-norm, MLA's
    latent norms; a fused qkv one tensor), MLP matrices (+ biases; a fused gate_up one tensor; the zoo's
    token-routed experts stacked into one tensor per matrix, MoE experts one tensor each), Qwen2-MoE's shared
    gate, router (+ DeepSeek-V3's correction bias), and the final norm."""
    h, vocab = arch.hidden_size, arch.vocab_size
    norm = [h, h] if arch.norm == "layernorm" else [h]
    sizes = [vocab * h] + ([arch.learned_positions * h] if arch.learned_positions else [])
    sizes += [] if arch.tie_word_embeddings else [vocab * h]
    for group in arch.layer_groups:
        att, mlp = group.attention, group.mlp
        layer = len(arch.norm_positions) * norm + [math.prod(shape) for shape in att.weight_shapes(h).values()]

        def expert(width: int) -> list[int]:
            if mlp.gated and mlp.fused_gate_up:
                return [2 * h * width, h * width] + ([2 * width, h] if mlp.bias else [])
            matrices = [h * width] * (3 if mlp.gated else 2)
            biases = ([width] * (2 if mlp.gated else 1) + [h]) if mlp.bias else []
            return matrices + biases

        if mlp.kind == "token_routed":
            layer += [mlp.num_experts * size for size in expert(mlp.intermediate_size)]
        else:
            layer += expert(mlp.intermediate_size) * (mlp.num_experts if mlp.kind == "moe" else 1)
        layer += expert(mlp.shared_intermediate_size) * mlp.num_shared_experts
        layer += [shared_gate_params(mlp, h)] if mlp.shared_expert_gate else []
        if mlp.kind == "moe":
            layer += [mlp.num_experts * h] + ([mlp.num_experts] if mlp.router_bias else [])
        sizes += layer * group.count
    return sizes + norm
