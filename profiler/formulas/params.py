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

from profiler.arch import LAYERNORMS, ArchSpec, AttentionSpec, MLPSpec

COMPONENTS = ("embeddings", "attention", "mlp", "router", "norms", "head")


def linear_params(d_in: int, d_out: int, bias: bool = False) -> int:
    """A linear layer: d_in * d_out weights (+ d_out biases)."""
    return d_in * d_out + (d_out if bias else 0)


def norm_params(width: int, norm: str) -> int:
    """RMSNorm has one scale per channel (Zhang & Sennrich 2019); LayerNorm a scale and a shift (Ba et al. 2016),
    however it is implemented (`LAYERNORMS`)."""
    return width * (2 if norm in LAYERNORMS else 1)


def attention_params(att: AttentionSpec, hidden: int) -> int:
    """Attention projections of one layer.

    Standard: h*H*d + 2*h*KV*d (q, k, v) + H*d*h (o), + biases, + 2*d for QK-norm (one RMSNorm over head_dim for
    queries, one for keys, shared across heads as in Qwen3).
    MLA (DeepSeek-V2 arXiv:2405.04434 §2.1, V3 §2.1.1): q path h*r_q + r_q (norm) + r_q*H*d_qk (or h*H*d_qk without
    a query rank); kv path h*(r_kv + d_rope) + r_kv (norm) + r_kv*H*(d_nope + d_v); output H*d_v*h.
    These are the sizes of the tensors `AttentionSpec.weight_shapes` lists, summed.
    """
    return sum(math.prod(shape) for shape in att.weight_shapes(hidden).values())


@dataclass(frozen=True)
class MLPMatrix:
    """`count` weight matrices of one name and shape in a layer's MLP, each [rows, cols] = [out, in] with a bias of
    `rows` numbers when `bias`; `routed`: the routed experts' matrices (`count` of them, one per expert)."""

    name: str
    rows: int
    cols: int
    count: int = 1
    bias: bool = False
    routed: bool = False

    @property
    def params(self) -> int:
        """Numbers of one of the matrices, its bias included."""
        return linear_params(self.cols, self.rows, self.bias)


def ffn_matrices(width: int, hidden: int, gated: bool, fused_gate_up: bool = False, bias: bool = False,
                 count: int = 1, routed: bool = False) -> list[MLPMatrix]:
    """The matrices of one feed-forward network of width I, by transformers' Llama names: a GLU (SwiGLU, Shazeer
    2020) has gate_proj and up_proj [I, h] — one gate_up_proj [2I, h] when `fused_gate_up` (Phi-3) — and
    down_proj [h, I]; a plain MLP up_proj [I, h] and down_proj [h, I] (GPT-2's c_fc and c_proj, Falcon's and
    GPT-NeoX's dense_h_to_4h and dense_4h_to_h, StarCoder2's c_fc and c_proj). `count` of each (experts)."""
    if not gated:
        inputs = [("up_proj", width)]
    elif fused_gate_up:
        inputs = [("gate_up_proj", 2 * width)]
    else:
        inputs = [("gate_proj", width), ("up_proj", width)]
    return [MLPMatrix(name, rows, hidden, count, bias, routed) for name, rows in inputs] \
        + [MLPMatrix("down_proj", hidden, width, count, bias, routed)]


def mlp_matrices(mlp: MLPSpec, hidden: int, active: bool = False) -> list[MLPMatrix]:
    """Every weight matrix of a layer's MLP, one expert's matrices apart from another's, as the checkpoints store
    them: the dense MLP's (`ffn_matrices`), or the E routed experts' of a MoE or token-routed MLP (with `active`
    the ones a token visits: k of E, token-routed 1 of E), then the shared experts as one MLP of
    n_shared · shared_intermediate_size (DeepSeek's DeepseekV2MLP(intermediate_size=moe_intermediate_size ·
    n_shared_experts), Qwen2-MoE's single shared_expert). Qwen2-MoE's shared-expert gate and the router are not
    among them (`shared_gate_params`, `router_params`)."""
    routed = mlp.kind != "dense"
    experts = (mlp.experts_per_token if active else mlp.num_experts) if routed else 1
    matrices = ffn_matrices(mlp.intermediate_size, hidden, mlp.gated, mlp.fused_gate_up, mlp.bias, experts, routed)
    if mlp.num_shared_experts:
        matrices += ffn_matrices(mlp.num_shared_experts * mlp.shared_intermediate_size, hidden, mlp.gated,
                                 mlp.fused_gate_up, mlp.bias)
    return matrices


def expert_params(width: int, hidden: int, gated: bool, bias: bool) -> int:
    """One feed-forward network (`ffn_matrices`): a GLU has 3·h·I weights, a plain MLP 2·h·I, + biases."""
    return sum(matrix.params for matrix in ffn_matrices(width, hidden, gated, bias=bias))


def shared_gate_params(mlp: MLPSpec, hidden: int) -> int:
    """Qwen2-MoE's shared_expert_gate: a bias-free [1, h] linear whose sigmoid scales the shared expert's output
    (transformers' Qwen2MoeSparseMoeBlock); 0 elsewhere."""
    return hidden if mlp.shared_expert_gate else 0


def mlp_params(mlp: MLPSpec, hidden: int, active: bool = False) -> int:
    """MLP of one layer: the matrices of `mlp_matrices` — experts (all of them, or the ones a token visits when
    `active`) + shared experts — and the shared experts' gate. Dense: one expert. MoE: E (active: k) experts +
    shared ones (Fedus et al. 2021; DeepSeekMoE arXiv:2401.06066). Token-routed: E (active: 1) experts."""
    matrices = sum(matrix.count * matrix.params for matrix in mlp_matrices(mlp, hidden, active))
    return matrices + shared_gate_params(mlp, hidden)


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


def _stacked(matrices: list[MLPMatrix]) -> list[int]:
    """Numbers of one tensor holding every matrix of `matrices` (all their copies, concatenated), and of their
    biases' tensor when they have biases."""
    weights = sum(m.count * m.rows * m.cols for m in matrices)
    return [weights] + ([sum(m.count * m.rows for m in matrices)] if matrices[0].bias else [])


def mlp_tensor_sizes(mlp: MLPSpec, hidden: int) -> list[int]:
    """Numbers in each parameter tensor of a layer's MLP as the modules store `mlp_matrices`: a dense or shared
    MLP one tensor per matrix (+ one per bias); the zoo's token-routed experts one [E, in, out] tensor per matrix
    (complexity/core/token_routed_mlp.py); a MoE layer's routed experts, as transformers 5 loads them, two:
    experts.gate_up_proj [E, 2I, h] (every expert's gate and up concatenated) and experts.down_proj [E, h, I];
    Qwen2-MoE's shared-expert gate [1, h]; the router [E, h] (+ DeepSeek-V3's E correction biases, a buffer in
    transformers, a tensor of the checkpoint), in transformers' order: router, experts, shared expert, its gate."""
    matrices = mlp_matrices(mlp, hidden)
    if mlp.kind == "moe":
        routed = [m for m in matrices if m.routed]
        groups = [[m for m in routed if m.name != "down_proj"], [m for m in routed if m.name == "down_proj"]]
        groups += [[m] for m in matrices if not m.routed]
    else:
        groups = [[m] for m in matrices]
    # transformers registers the router first, the shared-expert gate last
    sizes = [mlp.num_experts * hidden] + ([mlp.num_experts] if mlp.router_bias else []) if mlp.kind == "moe" else []
    sizes += [size for group in groups for size in _stacked(group)]
    return sizes + ([shared_gate_params(mlp, hidden)] if mlp.shared_expert_gate else [])


def parameter_tensor_sizes(arch: ArchSpec) -> list[int]:
    """Numbers in each parameter tensor the optimizer loops over (they add up to `count_params(arch).total`):
    token embedding (+ position table), per layer the norms, the attention's tensors (`AttentionSpec.weight_shapes`:
    projections, biases, QK-norm, MLA's latent norms; a fused qkv one tensor), the MLP's (`mlp_tensor_sizes`), the
    final norm and an untied head, in the order the modules register them where it matters to a single-tensor
    optimizer's temporaries (`memory.optimizer_temporary_bytes`: which large tensors are neighbours; a test
    checks it on every shipped family)."""
    h, vocab = arch.hidden_size, arch.vocab_size
    norm = [h, h] if arch.norm in LAYERNORMS else [h]
    sizes = [vocab * h] + ([arch.learned_positions * h] if arch.learned_positions else [])
    for group in arch.layer_groups:
        attention = [math.prod(shape) for shape in group.attention.weight_shapes(h).values()]
        layer = len(arch.norm_positions) * norm + attention
        sizes += (layer + mlp_tensor_sizes(group.mlp, h)) * group.count
    return sizes + norm + ([] if arch.tie_word_embeddings else [vocab * h])
