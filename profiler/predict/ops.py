"""The ops a decoder-only model executes, built from its `ArchSpec`: what the time predictor prices one by one.

Each `Op` is one kind of kernel (a projection, a norm, the attention kernel, the optimizer update) with the totals
it contributes to one forward pass, backward pass or optimizer step: FLOPs, bytes moved and kernel launches.

Conventions:
* FLOPs: 2 per multiply-add for matrix products, taken from `profiler.formulas.flops` (a test checks that the
  matmul ops of each component add up to `forward_flops` exactly); element-wise and reduction ops count 1 FLOP
  per element they write (the counting issue's `other` convention). Attention is the causal count (the CPU and
  GPU fused kernels skip fully masked blocks).
* Bytes: what the op reads plus what it writes, each tensor once — a matmul [m,k]@[k,n] moves (mk + kn + mn)
  elements; an element-wise op moves `passes` full tensors (reads + writes). Weights are read once per launch.
* Launches: aten kernels the eager PyTorch implementation of the zoo issues (counted with a dispatch mode on
  torch 2.13, CPU, float32); views are free and not counted.
* Backward: every matmul Y = X·W becomes dX = dY·Wᵀ and dW = Xᵀ·dY, each the forward's FLOPs (flops.py's 2×);
  the fused attention kernel recomputes the scores, 5 products for the forward's 2 (FlashAttention, Dao et al.
  2022, Alg. 4) and reads q, k, v, out, d_out, writes dq, dk, dv. Element-wise ops: the backward reads the saved
  input(s) and the output gradient and writes the input gradient(s) — assumed twice the forward's traffic and
  launches. Extra backward-only ops are listed where the implementation has them (embedding and expert-weight
  gradients, the tied head's gradient sum, gradient sums where the residual stream forks).
* Optimizer: torch's AdamW as the workload runs it (`Workload.optimizer_implementation`: the device's default,
  single-tensor on CPU and MPS, foreach on CUDA, or as set). Single-tensor loop: per parameter tensor 11 launches;
  per parameter 12 reads and 8 writes (weight decay, both moment updates, sqrt, bias-correction divide, eps add,
  update). Foreach (`_multi_tensor_adam`): 8 `_foreach_*` kernels over the whole list (mul, lerp, mul, addcmul,
  sqrt, div, add, addcdiv), 13 reads and 8 writes per parameter, each kernel launched as often as CUDA's
  `multi_tensor_apply` fills its blocks and tensor slots (`multi_tensor_launches`). Fused (`fused=True`): one
  `_fused_adamw_` kernel reading parameter, gradient and both moments and writing three of them (7 passes), after
  one foreach increment of the step counters. Numbers are fp32 (master weights and moments) unless the workload is
  pure 16-bit (`master_weights=False`: the parameters' dtype).
* Dropout (`Workload.dropout`, the module in training mode; probabilities from the `ArchSpec`, none when 0): on the
  summed embeddings, on each sublayer's output before its residual add and, on the math attention path, on the
  B·H·queries·keys probabilities (a fused attention kernel applies its dropout_p inside: nothing extra is priced,
  nor the kernel's random-number cost). torch's `dropout` (aten/src/ATen/native/Dropout.cpp): on CUDA one
  `native_dropout` kernel reading x and writing the output and a one-byte mask, its backward one kernel reading
  the gradient and the mask; elsewhere (CPU, MPS) `_dropout_impl`: bernoulli_ into a new tensor of the input's
  dtype, div_ by 1 − p, input · noise — 3 kernels, 6 passes — and a backward of one product (3 passes).
* Activations (`MLPSpec.activation`, `ACTIVATIONS`): each implementation's eager kernels (counted with a dispatch
  mode on torch 2.13, CPU): F.silu and F.gelu (exact or tanh) one kernel each, GPT-2's `gelu_new` eight (pow, mul,
  add, mul, tanh, add, mul, mul) and an autograd backward of eleven; a gated MLP adds the product with up.
* Token-routed and MoE experts: tokens are assumed spread evenly over the experts (`split_evenly`).
* Attention kernel (`ATTENTION_KERNELS`): "fused" (the default) is one flash-style kernel that never stores the
  scores; "math" is attention without a fused kernel (PyTorch's SDPA math fallback, eager `softmax(q kᵀ) v` code
  such as HF's eager attention): two batched products over *every* (query, key) pair — the causal mask is applied
  to the full score matrix, not skipped — with the B·H·queries·keys scores written by the first, rewritten by the
  mask and the softmax and read by the second. Its backward is priced like any matmul and element-wise op.
* Structural features of other families are ops of their own, read from the `ArchSpec` fields: one norm op per
  `norm_positions` entry (Gemma 2/3's post-norms, OLMo 2's post-norms only, Falcon-7B's single shared norm), one
  product for a fused qkv or gate_up projection, RoPE over `rope_width` channels (none with ALiBi), the
  shared-expert gate (a [T, h]·[h, 1] product and its sigmoid scaling), and element-wise ops for Gemma's
  embedding scale, Granite's multipliers, attention-score and logit soft-capping (tanh).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from profiler.arch import ArchSpec, AttentionSpec, LayerGroup
from profiler.formulas import flops as F
from profiler.formulas.memory import dtype_bytes
from profiler.formulas.params import parameter_tensor_sizes
from profiler.workload import OPTIMIZER_IMPLEMENTATIONS, Workload

# Launches and full-tensor passes (reads + writes) of the zoo's eager element-wise blocks, float32.
RMSNORM_LAUNCHES, RMSNORM_PASSES = 6, 7  # pow, mean, add eps, rsqrt, scale, weight: 4 reads + 3 writes
# The zoo's hand-written RMSNorm backward: x̂, g·w, g·w·x̂, its mean, g·w − x̂·mean (one addcmul), ·r in place,
# g·x̂ and the weight's sum over rows: 8 launches moving 17 full tensors (against 6 and 7 forward).
RMSNORM_BACKWARD = (17 / 7, 8 / 6)
# The token-routed dispatch's backward is the inverse gather of each permutation plus the cat of the chunks'
# gradients: 3 launches, 6 full tensors (against 3 and 4 forward).
DISPATCH_BACKWARD = (6 / 4, 1.0)
LAYERNORM_LAUNCHES, LAYERNORM_PASSES = 1, 2  # native_layer_norm
# A LayerNorm written as tensor code ("layernorm_eager"), counted with a TorchDispatchMode on torch 2.13, CPU
# (tests/profiler/predict/test_training_mode.py): mean, var, sub, add eps, sqrt, div, ·weight, +bias — 8 kernels
# moving 10 full tensors (the row statistics are 1/h of one); its autograd backward 21 kernels moving 35.
EAGER_LAYERNORM_LAUNCHES, EAGER_LAYERNORM_PASSES = 8, 10
EAGER_LAYERNORM_BACKWARD = (35 / 10, 21 / 8)
ROPE_LAUNCHES, ROPE_PASSES = 5, 10  # x·cos, neg of a half, cat, ·sin, add
ADAMW_LAUNCHES_PER_TENSOR, ADAMW_PASSES = 11, 20  # single-tensor loop
# Foreach AdamW (torch/optim/adam.py `_multi_tensor_adam`, capturable=False): each `_foreach_*` kernel with the
# depth of its tensor lists (multi_tensor_apply's `depth`) and whether it takes a per-tensor scalar list; the calls
# and their passes counted with a TorchDispatchMode on CPU (tests/profiler/predict/test_training_mode.py).
# The step counters stay on the host then (CPU tensors, incremented and read there): not priced.
FOREACH_ADAMW_KERNELS = (("mul_ params (weight decay)", 1, False), ("lerp_ exp_avg", 2, False),
                         ("mul_ exp_avg_sq", 1, False), ("addcmul_ exp_avg_sq", 3, False),
                         ("sqrt exp_avg_sq", 2, False), ("div_ by bias_correction2_sqrt", 1, True),
                         ("add_ eps", 1, False), ("addcdiv_ params by step_size", 3, True))
FOREACH_ADAMW_PASSES = 21  # reads p; m g; v; v g g; v; s; s; p m s (13) and 8 writes per parameter
FUSED_ADAMW_DEPTH, FUSED_ADAMW_PASSES = 4, 7  # params, grads, exp_avgs, exp_avg_sqs: 4 reads, 3 writes
# CUDA's multi_tensor_apply (https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/cuda/
# MultiTensorApply.cuh): chunks of 65536 numbers, one block each; a launch when the blocks or the tensor slots of one
# launch are full. The 32 KB kernel-argument limits (DepthToMaxConfig<true>: CUDA >= 12.1 builds, driver >= 530,
# Volta or newer), by depth 1..5; older builds launch about 7 times as often (the 4 KB limits, 320 blocks).
MULTI_TENSOR_CHUNK = 65536
MULTI_TENSOR_MAX_BLOCKS = 2240
MULTI_TENSOR_MAX_TENSORS = (770, 448, 336, 252, 210)
MULTI_TENSOR_MAX_TENSORS_SCALARLIST = (672, 448, 336, 252, 210)
# Dropout (module docstring): eager `_dropout_impl` (CPU, MPS; counted with a TorchDispatchMode on CPU, on F.dropout
# and on a transformers GPT-2 in train against eval mode: tests/profiler/predict/test_training_mode.py) and CUDA's
# `native_dropout` (https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/Dropout.cpp:
# `is_fused_kernel_acceptable` takes it for CUDA tensors only).
DROPOUT_LAUNCHES, DROPOUT_PASSES = 3, 6  # bernoulli_ w1; div_ r1 w1; input · noise r2 w1
DROPOUT_BACKWARD = (3 / 6, 1 / 3)  # grad · noise: one kernel, r2 w1
MASK_BYTES = 1  # native_dropout's bool mask, one byte per element
BACKWARD_ELEMENTWISE_FACTOR = 2  # backward traffic and launches of an element-wise op, relative to its forward
ROUTING_LAUNCHES = 11  # token-routed: min/max checks, expert ids, stable sort, inverse permutation, bincount
ATTENTION_KERNELS = ("fused", "math")
# Math attention between its two products, as eager attention code writes it (nanoGPT's manual path, HF GPT-2's
# eager attention): scale the scores, apply the causal mask (masked_fill / where), softmax; each reads and writes
# the score matrix once.
MATH_SOFTMAX_LAUNCHES, MATH_SOFTMAX_PASSES = 3, 6


@dataclass(frozen=True)
class Activation:
    """One activation implementation's eager kernels over a tensor of N elements: forward launches and full-tensor
    passes (reads + writes), and its autograd backward's (None: priced with the generic element-wise factor)."""

    launches: int
    passes: int
    backward: tuple[int, int] | None  # (launches, passes)


# transformers 5's ACT2FN names (transformers/activations.py) and the zoo's F.silu, counted with a TorchDispatchMode
# on torch 2.13, CPU (tests/profiler/predict/test_training_mode.py):
# * silu / swish (F.silu, nn.SiLU): silu; its backward keeps the generic factor the zoo's predictions were
#   calibrated with (counted: silu_backward, 1 kernel, 3 passes);
# * gelu (GELUActivation: F.gelu), gelu_pytorch_tanh (GELUTanh: F.gelu(approximate="tanh")): gelu; backward one
#   gelu_backward reading the gradient and the input;
# * gelu_new (NewGELUActivation, nanoGPT's new_gelu): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) as eager tensor
#   code, 8 kernels (mul, pow, mul, add, mul, tanh, add, mul); backward: the product's two gradients, tanh_backward,
#   two scalar products, pow's three (pow, ·3, ·grad), the 0.5 scaling and two sums of x's three gradients.
ACTIVATIONS = {
    "silu": Activation(1, 2, None),
    "swish": Activation(1, 2, None),
    "gelu": Activation(1, 2, (1, 3)),
    "gelu_pytorch_tanh": Activation(1, 2, (1, 3)),
    "gelu_new": Activation(8, 18, (11, 28)),
}
# A gated MLP's act(gate) · up: one product (r2 w1); its backward the two gradients (2 kernels, 6 passes).
GATE_LAUNCHES, GATE_PASSES, GATE_BACKWARD = 1, 3, (2, 6)


@dataclass(frozen=True)
class Op:
    """One kind of kernel and its totals over the pass. `mnk` is one product's shape [m,k]@[k,n] for matmul and
    attention ops (the shape whose achieved FLOP/s prices it); `component` is the flops.py component a matmul
    belongs to ('' for others); `repeats` how many identical launches of it the totals cover (for display)."""

    name: str
    phase: str
    kind: str
    flops: int
    bytes: int
    launches: int
    mnk: tuple[int, int, int] | None = None
    component: str = ""
    repeats: int = 1
    exps: int = 0  # elements that go through an exponential (softmax, log-softmax, SiLU)
    layout: str = "nn"  # matmul operands: "nn" both as stored; "nt" right one a transposed view; "tn" left one
    zero_filled: int = 0  # bytes of freshly allocated tensors it fills with zeros (priced at the zero-fill rate)
    # element-wise ops: (bytes, launches) of the backward relative to the forward
    backward_factors: tuple[float, float] = (BACKWARD_ELEMENTWISE_FACTOR, BACKWARD_ELEMENTWISE_FACTOR)

    def scaled(self, factor: int) -> Op:
        """The same op repeated `factor` times (identical layers)."""
        return replace(self, flops=self.flops * factor, bytes=self.bytes * factor, launches=self.launches * factor,
                       repeats=self.repeats * factor, exps=self.exps * factor)


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` items over `parts` bins as evenly as integers allow (the first total % parts bins get one more)."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# ------------------------------------------------------------------------------------------------ builders
def matmul(name: str, m: int, k: int, n: int, b: int, component: str = "", linear: bool = True) -> Op:
    """[m,k]@[k,n]: 2mkn FLOPs, (mk + kn + mn)·b bytes, one launch. `linear`: the weight is stored [n, k] as in
    nn.Linear and used through a transposed view (layout "nt"); else stored [k, n] (a plain x @ W, layout "nn")."""
    return Op(name, "forward", "matmul", 2 * m * k * n, (m * k + k * n + m * n) * b, 1, (m, k, n), component,
              layout="nt" if linear else "nn")


def elementwise(name: str, elements: int, passes: int, launches: int, b: int, exps: int = 0) -> Op:
    """`launches` kernels that together move `passes` tensors of `elements` numbers; 1 FLOP per written element
    (taken as half the passes: about one read per write); `exps` elements through an exponential."""
    return Op(name, "forward", "memory", elements * max(passes // 2, 1), elements * passes * b, launches, exps=exps)


def activation_op(name: str, activation: str, elements: int, gated: bool, b: int) -> Op:
    """The MLP's activation over `elements` numbers as its implementation runs it (`ACTIVATIONS`), times up when
    `gated`; one exponential (exp, erf or tanh) per element."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r} has no kernel count; known: {sorted(ACTIVATIONS)}")
    act = ACTIVATIONS[activation]
    launches, passes = act.launches + gated * GATE_LAUNCHES, act.passes + gated * GATE_PASSES
    op = elementwise(name, elements, passes, launches, b, exps=elements)
    if act.backward is None:
        return op
    backward_launches = act.backward[0] + gated * GATE_BACKWARD[0]
    backward_passes = act.backward[1] + gated * GATE_BACKWARD[1]
    return replace(op, backward_factors=(backward_passes / passes, backward_launches / launches))


def dropout_ops(name: str, elements: int, p: float, b: int, device: str) -> list[Op]:
    """Dropout with probability `p` over `elements` numbers on `device` (module docstring); none when p is 0."""
    if not p:
        return []
    if device == "cuda":  # native_dropout: read x, write the output and the mask; backward: gradient and mask in
        return [replace(Op(name, "forward", "memory", elements, elements * (2 * b + MASK_BYTES), 1),
                        backward_factors=(1.0, 1.0))]
    return [replace(elementwise(name, elements, DROPOUT_PASSES, DROPOUT_LAUNCHES, b),
                    backward_factors=DROPOUT_BACKWARD)]


def norm_op(name: str, arch: ArchSpec, elements: int, b: int) -> Op:
    """One norm over `elements` numbers as `arch.norm` runs it: F.layer_norm's one kernel, the eager LayerNorm's
    eight, the zoo's RMSNorm's six (each backward as counted)."""
    if arch.norm == "layernorm":
        return elementwise(name, elements, LAYERNORM_PASSES, LAYERNORM_LAUNCHES, b)
    if arch.norm == "layernorm_eager":
        return replace(elementwise(name, elements, EAGER_LAYERNORM_PASSES, EAGER_LAYERNORM_LAUNCHES, b),
                       backward_factors=EAGER_LAYERNORM_BACKWARD)
    return replace(elementwise(name, elements, RMSNORM_PASSES, RMSNORM_LAUNCHES, b), backward_factors=RMSNORM_BACKWARD)


def projection_ops(att: AttentionSpec, hidden: int, tokens: int, b: int) -> list[Op]:
    """q, k, v projections (MLA: its whole explicit q/kv path as one product of the same FLOPs; a fused qkv
    projection: one product (H + 2KV)·d wide), then o_proj."""
    if att.is_mla or att.fused_qkv:
        qkv = [matmul("attention.qkv_proj", tokens, hidden, F.qkv_weights(att, hidden) // hidden, b,
                      "attention_qkv")]
    else:
        qkv = [matmul(f"attention.{p}_proj", tokens, hidden, width, b, "attention_qkv") for p, width in
               (("q", att.num_heads * att.head_dim), ("k", att.num_kv_heads * att.head_dim),
                ("v", att.num_kv_heads * att.v_head_dim))]
    return qkv + [matmul("attention.o_proj", tokens, att.num_heads * att.v_head_dim, hidden, b, "attention_out")]


def attention_core(att: AttentionSpec, batch: int, queries: int, keys: int, pairs: int, b: int) -> Op:
    """The fused attention kernel: scores and weighted sum over `pairs` (query, key) pairs per head
    (flops.py's attention_scores + attention_values), reading q, k, v and writing the output once. Its shape
    for pricing is (B·H·queries, head_dim, keys): every query row of every head against the keys."""
    flops = 2 * batch * att.num_heads * pairs * (att.head_dim + att.v_head_dim)
    elements = batch * (queries * att.num_heads * (att.head_dim + att.v_head_dim)
                        + keys * att.kernel_kv_heads * (att.head_dim + att.v_head_dim))
    rows = batch * att.num_heads * queries
    return Op("attention.sdpa", "forward", "attention", flops, elements * b, 1, (rows, att.head_dim, keys),
              "attention_core")


def math_attention_ops(att: AttentionSpec, batch: int, queries: int, keys: int, b: int, dropout: float = 0.0,
                       device: str = "cpu") -> list[Op]:
    """Attention without a fused kernel (module docstring): scores = q·kᵀ over all queries × keys pairs per head,
    mask and softmax over the stored scores, dropout of probability `dropout` on them (in training mode), then
    scores·v. Shapes per product: (B·H·queries, head_dim, keys) and (B·H·queries, keys, v_head_dim); the key/value
    heads are read once per query head (GQA's repeat_kv)."""
    rows, heads = batch * att.num_heads * queries, batch * att.num_heads
    scores = rows * keys
    q, k, v = rows * att.head_dim, heads * keys * att.head_dim, heads * keys * att.v_head_dim
    out = rows * att.v_head_dim
    return [Op("attention.scores", "forward", "matmul", 2 * scores * att.head_dim, (q + k + scores) * b, 1,
               (rows, att.head_dim, keys), "attention_core", layout="nt"),
            elementwise("attention.mask_softmax", scores, MATH_SOFTMAX_PASSES, MATH_SOFTMAX_LAUNCHES, b, exps=scores),
            *dropout_ops("attention.dropout", scores, dropout, b, device),
            Op("attention.values", "forward", "matmul", 2 * scores * att.v_head_dim, (scores + v + out) * b, 1,
               (rows, keys, att.v_head_dim), "attention_core", layout="nn")]


def attention_ops(att: AttentionSpec, batch: int, queries: int, keys: int, pairs: int, b: int,
                  kernel: str = "fused", dropout: float = 0.0, device: str = "cpu") -> list[Op]:
    """The attention core as `kernel` runs it: one fused op (a `dropout` probability is applied inside it), or the
    math path's three (and its dropout op)."""
    if kernel not in ATTENTION_KERNELS:
        raise ValueError(f"attention_kernel={kernel!r} must be one of {list(ATTENTION_KERNELS)}")
    if kernel == "math":
        return math_attention_ops(att, batch, queries, keys, b, dropout, device)
    return [attention_core(att, batch, queries, keys, pairs, b)]


def mlp_ops(group: LayerGroup, hidden: int, tokens: int, b: int) -> list[Op]:
    """Dense: gate/up (or fc1), activation, product, down. Routed: tokens gathered by expert, each expert's
    products on its share (`split_evenly`), outputs concatenated and scattered back; MoE adds its router."""
    mlp = group.mlp
    width = mlp.intermediate_size

    linear = mlp.kind != "token_routed"  # the zoo's stacked experts multiply by [E, h, I] slices directly

    def expert(rows: int, label: str, w: int) -> list[Op]:
        if mlp.gated and mlp.fused_gate_up:  # one [2I, h] product, then the activation and product (Phi-3)
            return [matmul(f"mlp.{label}gate_up_proj", rows, hidden, 2 * w, b, "mlp", linear),
                    activation_op(f"mlp.{label}act_mul", mlp.activation, rows * w, True, b),
                    matmul(f"mlp.{label}down_proj", rows, w, hidden, b, "mlp", linear)]
        inner = [matmul(f"mlp.{label}up_proj", rows, hidden, w, b, "mlp", linear)]
        if mlp.gated:
            inner += [matmul(f"mlp.{label}gate_proj", rows, hidden, w, b, "mlp", linear),
                      activation_op(f"mlp.{label}act_mul", mlp.activation, rows * w, True, b)]
        else:
            inner += [activation_op(f"mlp.{label}act", mlp.activation, rows * w, False, b)]
        return inner + [matmul(f"mlp.{label}down_proj", rows, w, hidden, b, "mlp", linear)]

    ops: list[Op] = []
    if mlp.kind == "dense":
        ops += expert(tokens, "", width)
    else:
        visits = tokens * mlp.experts_per_token
        ops += [replace(elementwise("mlp.dispatch", visits * hidden, 4, 3, b),  # gather by expert, cat, gather back
                        backward_factors=DISPATCH_BACKWARD)]
        if mlp.kind == "moe":
            ops += [matmul("mlp.router", tokens, hidden, mlp.num_experts, b, "router"),
                    elementwise("mlp.router_topk", tokens * mlp.num_experts, 3, 3, b)]
        for rows in split_evenly(visits, mlp.num_experts):
            if rows:
                ops += expert(rows, "expert_", width)
    for _ in range(mlp.num_shared_experts):
        ops += expert(tokens, "shared_", mlp.shared_intermediate_size)
    if mlp.shared_expert_gate:  # sigmoid(x·g) [T, 1] scaling the shared expert's output (Qwen2-MoE)
        ops += [matmul("mlp.shared_expert_gate", tokens, hidden, 1, b, "mlp"),
                elementwise("mlp.shared_expert_gate_mul", tokens * hidden, 3, 2, b, exps=tokens)]
    return ops


def embedding_scale_ops(arch: ArchSpec, tokens: int, b: int) -> list[Op]:
    """The embeddings times a constant (Gemma's sqrt(h), Granite's embedding_multiplier): one element-wise op."""
    return [] if arch.embedding_scale is None else [elementwise("embedding.scale", tokens * arch.hidden_size, 2, 1, b)]


def logit_ops(arch: ArchSpec, tokens: int, b: int) -> list[Op]:
    """Element-wise ops on the logits: Granite's division by logits_scaling, Gemma 2's soft-cap c·tanh(x / c)
    (a division, the tanh and a product)."""
    logits = tokens * arch.vocab_size
    ops = [elementwise("lm_head.scale", logits, 2, 1, b)] if arch.logit_scale is not None else []
    if arch.final_logit_softcap is not None:
        ops += [elementwise("lm_head.softcap", logits, 6, 3, b, exps=logits)]
    return ops


def layer_forward_ops(arch: ArchSpec, group: LayerGroup, batch: int, queries: int, keys: int, pairs: int,
                      b: int, attention_kernel: str = "fused", dropout: bool = False, device: str = "cpu") -> list[Op]:
    """One layer, B sequences of `queries` new tokens attending `keys` keys over `pairs` pairs per head; with
    `dropout` (training mode) the arch's attention and residual dropouts as `device` runs them."""
    att, h, tokens = group.attention, arch.hidden_size, batch * queries
    kv_heads = att.kernel_kv_heads

    def norms(*positions: str) -> list[Op]:
        return [norm_op(f"norm.{p}", arch, tokens * h, b) for p in positions if p in arch.norm_positions]

    def residual() -> list[Op]:
        scale = [elementwise("residual.scale", tokens * h, 2, 1, b)] if arch.residual_scale is not None else []
        drop = dropout_ops("residual.dropout", tokens * h, arch.residual_dropout if dropout else 0.0, b, device)
        return scale + drop + [elementwise("residual.add", tokens * h, 3, 1, b)]

    ops = norms("attention_in")
    projections = projection_ops(att, h, tokens, b)
    ops += projections[:-1]
    if att.qk_norm:
        qk_norm = norm_op("attention.qk_norm", arch, tokens * (att.num_heads + kv_heads) * att.head_dim, b)
        ops += [replace(qk_norm, launches=2 * qk_norm.launches)]  # one norm for q, one for k
    if arch.learned_positions == 0 and att.rope_width:
        rope = elementwise("attention.rope", tokens * (att.num_heads + kv_heads) * att.rope_width, ROPE_PASSES,
                           2 * ROPE_LAUNCHES, b)
        ops += [rope]
    ops += attention_ops(att, batch, queries, keys, pairs, b, attention_kernel,
                         arch.attention_dropout if dropout else 0.0, device)
    if att.logit_softcap is not None:  # c·tanh(s / c) on every score the (eager) kernel computes
        scores = batch * att.num_heads * queries * keys
        ops += [elementwise("attention.softcap", scores, 6, 3, b, exps=scores)]
    ops += [projections[-1], *norms("attention_out"), *residual(), *norms("mlp_in")]
    ops += mlp_ops(group, h, tokens, b)
    ops += norms("mlp_out") + residual()
    return ops


def forward_ops(arch: ArchSpec, batch: int, seq_len: int, dtype: str = "float32", with_loss: bool = False,
                attention_kernel: str = "fused", last_only: bool = False, dropout: bool = False,
                device: str = "cpu") -> list[Op]:
    """Every op of one forward pass over B sequences of S tokens (logits for all B·S tokens, as the zoo's
    forward computes them; `with_loss` adds the fp32 log-softmax and NLL of cross-entropy). `last_only`: the LM
    head and logit ops on the last position of each sequence only (B rows), as generation's prefill runs it
    (logits_to_keep=1); the final norm still covers every token, as the zoo applies it before slicing.
    `dropout`: the module in training mode, its dropouts as `device` runs them (module docstring)."""
    if with_loss and last_only:
        raise ValueError("last_only=True needs with_loss=False: the loss needs every position's logits")
    b, tokens, h, vocab = dtype_bytes(dtype), batch * seq_len, arch.hidden_size, arch.vocab_size
    head_tokens = batch if last_only else tokens
    ops = [elementwise("embedding", tokens * h, 2, 1, b)] + embedding_scale_ops(arch, tokens, b)
    if arch.learned_positions:
        ops += [elementwise("position_embedding", tokens * h, 3, 2, b)]
    ops += dropout_ops("embedding.dropout", tokens * h, arch.embedding_dropout if dropout else 0.0, b, device)
    if any(g.mlp.kind == "token_routed" for g in arch.layer_groups):
        ops += [Op("routing", "forward", "memory", 0, tokens * 8 * ROUTING_LAUNCHES, ROUTING_LAUNCHES)]
    for group in arch.layer_groups:
        pairs = F.attended_pairs(seq_len, "causal", group.attention.sliding_window)
        ops += [op.scaled(group.count) for op in layer_forward_ops(arch, group, batch, seq_len, seq_len, pairs, b,
                                                                   attention_kernel, dropout, device)]
    ops += [norm_op("norm.final", arch, tokens * h, b), matmul("lm_head", head_tokens, h, vocab, b, "lm_head")]
    ops += logit_ops(arch, head_tokens, b)
    if with_loss:
        ops += [elementwise("loss.log_softmax", tokens * vocab, 2, 1, 4, exps=tokens * vocab),
                elementwise("loss.nll", tokens, 2, 3, 8)]
    return merge(ops)


def decode_ops(arch: ArchSpec, batch: int, context: int, dtype: str = "float32",
               attention_kernel: str = "fused") -> list[Op]:
    """One decoding step: B new tokens, each attending its own and min(C, W-1) cached keys; the KV cache is read
    once per layer (inside the attention op's bytes) and the new keys/values appended (a copy of the cache, as the
    zoo's torch.cat does)."""
    b, h = dtype_bytes(dtype), arch.hidden_size
    ops = [elementwise("embedding", batch * h, 2, 1, b)] + embedding_scale_ops(arch, batch, b)
    if any(g.mlp.kind == "token_routed" for g in arch.layer_groups):
        ops += [Op("routing", "forward", "memory", 0, batch * 8 * ROUTING_LAUNCHES, ROUTING_LAUNCHES)]
    for group in arch.layer_groups:
        att = group.attention
        keys = att.attended_keys(context)
        cache_elements = batch * keys * att.kernel_kv_heads * (att.head_dim + att.v_head_dim)
        cache_append = elementwise("attention.kv_cache_append", cache_elements, 2, 2, b)
        layer = layer_forward_ops(arch, group, batch, 1, keys, keys, b, attention_kernel) + [cache_append]
        ops += [op.scaled(group.count) for op in layer]
    ops += [norm_op("norm.final", arch, batch * h, b), matmul("lm_head", batch, h, arch.vocab_size, b, "lm_head")]
    return merge(ops + logit_ops(arch, batch, b))


def backward_op(op: Op) -> list[Op]:
    """The backward kernels of one forward op (see the module docstring)."""
    if op.kind == "matmul":
        m, k, n = op.mnk
        linear = op.layout == "nt"
        # dX = dY·Wᵀ: nn.Linear's stored [n, k] weight as it is; a stored [k, n] weight through a transposed view.
        dx = replace(op, name=f"{op.name}.grad_input", phase="backward", mnk=(m, n, k), layout="nn" if linear else "nt")
        # nn.Linear computes dW = dYᵀ·X, [n,m]@[m,k]; a plain x @ W: Xᵀ·dY, [k,m]@[m,n]; the left one transposed.
        dw = replace(op, name=f"{op.name}.grad_weight", phase="backward", mnk=(n, m, k) if linear else (k, m, n),
                     layout="tn")
        return [dx, dw]
    if op.kind == "attention":
        # 5 products instead of 2; reads q, k, v, out, d_out and writes dq, dk, dv: about twice the forward bytes.
        return [replace(op, name=f"{op.name}.backward", phase="backward", flops=op.flops * 5 // 2,
                        bytes=2 * op.bytes)]
    if op.name == "routing":
        return []
    # Backward of an exponential op recomputes or reads it once more: exps as many as the forward.
    bytes_factor, launch_factor = op.backward_factors
    return [replace(op, name=f"{op.name}.backward", phase="backward", flops=op.flops * BACKWARD_ELEMENTWISE_FACTOR,
                    bytes=round(op.bytes * bytes_factor), launches=round(op.launches * launch_factor))]


def backward_extra_ops(arch: ArchSpec, batch: int, seq_len: int, dtype: str) -> list[Op]:
    """Backward-only kernels: gradient sums where the residual stream forks (2 per layer), the embedding's
    gradient (a zeroed V×h table plus an index-add), the NLL loss's gradient (a zeroed fp32 T×V table with one
    entry per row set), the tied head's two gradients summed, and the stacked expert weights' gradients (the
    zoo unbinds each [E, h, I] weight into its experts, so the backward stacks their E gradients once)."""
    b, tokens, h, vocab = dtype_bytes(dtype), batch * seq_len, arch.hidden_size, arch.vocab_size
    ops = [elementwise("residual.grad_sum", tokens * h, 3, 1, b).scaled(2 * arch.num_layers),
           replace(elementwise("embedding.grad_table", 2 * tokens * h, 1, 2, b), zero_filled=vocab * h * b),
           replace(elementwise("loss.nll_grad_table", tokens, 1, 2, 8), zero_filled=tokens * vocab * 4)]
    if arch.tie_word_embeddings:
        ops += [elementwise("lm_head.tied_grad_sum", vocab * h, 3, 1, b)]
    for group in arch.layer_groups:
        mlp = group.mlp
        if mlp.kind == "token_routed":
            stacked = mlp.num_experts * mlp.intermediate_size * h  # one stacked parameter [E, h, I]
            ops += [elementwise("mlp.expert_grad_stack", stacked, 2, 1, b).scaled(3 * group.count)]  # gate, up, down
    return [replace(op, phase="backward") for op in ops]


def multi_tensor_launches(tensor_sizes: list[int], depth: int, scalar_list: bool = False) -> int:
    """Kernel launches of one CUDA `multi_tensor_apply` over tensors of `tensor_sizes` numbers with `depth` tensor
    lists (MultiTensorApply.cuh): every tensor split into chunks of MULTI_TENSOR_CHUNK, one block each; a launch
    whenever a launch's blocks are full or its tensor slots are (a tensor counts as taken once all its chunks are;
    one split over two launches takes a slot in both), and one for the rest."""
    max_tensors = (MULTI_TENSOR_MAX_TENSORS_SCALARLIST if scalar_list else MULTI_TENSOR_MAX_TENSORS)[depth - 1]
    launches = blocks = tensors = 0
    for size in tensor_sizes:  # whole launches' worth of chunks at a time: a 671B-parameter list has 10^7 chunks
        if not size:
            continue
        tensors += 1
        remaining = -(-size // MULTI_TENSOR_CHUNK)
        while remaining > MULTI_TENSOR_MAX_BLOCKS - blocks:  # the launch fills up before this tensor's last chunk
            remaining -= MULTI_TENSOR_MAX_BLOCKS - blocks
            launches, blocks, tensors = launches + 1, 0, 1
        blocks += remaining  # the last chunk lands in the current launch
        if tensors == max_tensors or blocks == MULTI_TENSOR_MAX_BLOCKS:
            launches, blocks, tensors = launches + 1, 0, 0
    return launches + (blocks > 0)


def optimizer_ops(tensor_sizes: list[int], implementation: str = "single_tensor", element_bytes: int = 4) -> list[Op]:
    """AdamW over parameter tensors of `tensor_sizes` numbers of `element_bytes` each, as `implementation`
    (`profiler.workload.OPTIMIZER_IMPLEMENTATIONS`) runs it (module docstring). Single-tensor: one op per distinct
    tensor size so each is priced at its own working set (a 32 MB embedding streams from DRAM while a layer's small
    tensors stay in cache between the 11 kernels). Foreach and fused: one op over the whole list, each kernel
    launched as `multi_tensor_launches` counts."""
    if implementation == "single_tensor":
        ops = []
        for size in sorted(set(tensor_sizes)):
            count = tensor_sizes.count(size)
            ops.append(Op(f"optimizer.adamw[{size}]", "optimizer", "memory", count * size * ADAMW_PASSES // 2,
                          count * size * ADAMW_PASSES * element_bytes, count * ADAMW_LAUNCHES_PER_TENSOR, None, "",
                          count))
        return ops
    total = sum(tensor_sizes)
    if implementation == "foreach":
        launches = sum(multi_tensor_launches(tensor_sizes, depth, scalar_list)
                       for _, depth, scalar_list in FOREACH_ADAMW_KERNELS)
        passes = FOREACH_ADAMW_PASSES
    elif implementation == "fused":  # the step counters' foreach increment (one-number tensors), then the kernel
        launches = (multi_tensor_launches([1] * len(tensor_sizes), 1)
                    + multi_tensor_launches(tensor_sizes, FUSED_ADAMW_DEPTH))
        passes = FUSED_ADAMW_PASSES
    else:
        raise ValueError(f"implementation={implementation!r} must be one of {list(OPTIMIZER_IMPLEMENTATIONS)}")
    return [Op(f"optimizer.adamw_{implementation}[{total}]", "optimizer", "memory", total * passes // 2,
               total * passes * element_bytes, launches, None, "", len(tensor_sizes))]


def gradient_accumulation_op(params: int, dtype: str) -> Op:
    """A later micro-batch's gradient added into the existing .grad tensors: N reads twice, N writes."""
    return Op("grad_accumulate", "backward", "memory", params, 3 * params * dtype_bytes(dtype), 0)


def merge(ops: list[Op]) -> list[Op]:
    """Identical-shape ops of the same name summed into one row (keeps tables short; totals unchanged)."""
    merged: dict[tuple, Op] = {}
    for op in ops:
        key = (op.name, op.phase, op.kind, op.mnk, op.component, op.layout)
        if key in merged:
            old = merged[key]
            op = replace(op, flops=old.flops + op.flops, bytes=old.bytes + op.bytes,
                         launches=old.launches + op.launches, repeats=old.repeats + op.repeats,
                         exps=old.exps + op.exps, zero_filled=old.zero_filled + op.zero_filled)
        merged[key] = op
    return list(merged.values())


def model_ops(arch: ArchSpec, workload: Workload, attention_kernel: str = "fused") -> list[Op]:
    """All ops of the workload: forward; train = forward with loss + backward + AdamW; prefill = forward with the
    head on the last positions; decode = one token step; attention through `attention_kernel`
    (`ATTENTION_KERNELS`); dropout when `workload.dropout`, on `workload.device`'s kernels; AdamW as
    `workload.optimizer_implementation`, in fp32 unless the run is pure 16-bit (`master_weights=False`)."""
    if workload.mode == "decode":
        return decode_ops(arch, workload.batch, workload.seq_len, workload.dtype, attention_kernel)
    if workload.mode == "prefill":
        return forward_ops(arch, workload.batch, workload.seq_len, workload.dtype, attention_kernel=attention_kernel,
                           last_only=True)
    forward = forward_ops(arch, workload.batch, workload.seq_len, workload.dtype, with_loss=workload.mode == "train",
                          attention_kernel=attention_kernel, dropout=workload.dropout, device=workload.device)
    if workload.mode == "forward":
        return forward
    backward = [bw for op in forward for bw in backward_op(op)]
    backward += backward_extra_ops(arch, workload.batch, workload.seq_len, workload.dtype)
    element_bytes = 4 if workload.master_weights else dtype_bytes(workload.dtype)
    optimizer = optimizer_ops(parameter_tensor_sizes(arch), workload.optimizer_implementation, element_bytes)
    return forward + merge(backward) + optimizer
