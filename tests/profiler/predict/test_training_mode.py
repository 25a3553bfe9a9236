"""Dropout, activation implementations and AdamW implementations in the op list, against the real kernels: each
count below is taken with a TorchDispatchMode on CPU from torch's and transformers' own modules."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.activations import ACT2FN

from profiler.arch import from_hf_dict, from_size
from profiler.formulas.params import count_params, parameter_tensor_sizes
from profiler.predict.ops import (
    ACTIVATIONS,
    DROPOUT_BACKWARD,
    DROPOUT_LAUNCHES,
    DROPOUT_PASSES,
    EAGER_LAYERNORM_BACKWARD,
    EAGER_LAYERNORM_LAUNCHES,
    EAGER_LAYERNORM_PASSES,
    FOREACH_ADAMW_KERNELS,
    FOREACH_ADAMW_PASSES,
    FUSED_ADAMW_DEPTH,
    MULTI_TENSOR_CHUNK,
    MULTI_TENSOR_MAX_BLOCKS,
    MULTI_TENSOR_MAX_TENSORS,
    MULTI_TENSOR_MAX_TENSORS_SCALARLIST,
    activation_op,
    backward_op,
    model_ops,
    multi_tensor_launches,
    norm_op,
    optimizer_ops,
)
from profiler.workload import Workload

# Allocations and views move no data: not kernels (as ops.py counts launches).
FREE = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "view", "_unsafe_view", "t",
        "transpose", "permute", "expand", "split", "slice", "select", "unsqueeze", "squeeze", "as_strided",
        "detach", "alias", "_reshape_alias", "lift_fresh", "unbind", "split_with_sizes",
        "_record_function_enter_new", "_record_function_exit"}  # and the profiler's markers around optimizer.step
GENERATORS = {"bernoulli_", "normal_", "uniform_", "fill_", "zero_"}  # in place, but they read nothing


class Kernels(TorchDispatchMode):
    """Every aten call that is not an allocation or a view: (name, numbers it reads and writes)."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[str, int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name not in FREE:
            read = [a for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
            if name in GENERATORS:
                read = read[1:]
            if name.endswith("_"):  # in place: writes its first argument, a tensor or a list of them
                written = [args[0]] if isinstance(args[0], torch.Tensor) else list(args[0])
            else:
                written = [o for o in tree_leaves(out) if isinstance(o, torch.Tensor)]
            self.calls.append((name, sum(t.numel() for t in read + written if t.dim())))  # 0-d: scalars
        return out


def _count(fn, *args):
    with Kernels() as mode:
        result = fn(*args)
    return result, mode.calls


def _backward(output, inputs):
    """The kernels of the backward from `output` to `inputs` (a gradient of ones, made outside the count)."""
    grad = torch.ones_like(output)
    return _count(lambda: torch.autograd.grad(output, inputs, grad, allow_unused=True))[1]


# ------------------------------------------------------------------------------------------------ dropout
def test_cpu_dropout_kernels_and_passes_are_the_op_s():
    x = torch.randn(64, 32, requires_grad=True)
    y, forward = _count(lambda t: F.dropout(t, 0.1, training=True), x)
    assert [name for name, _ in forward] == ["bernoulli_", "div_", "mul"]
    assert len(forward) == DROPOUT_LAUNCHES and sum(n for _, n in forward) == DROPOUT_PASSES * x.numel()
    backward = _backward(y, x)
    assert len(backward) == round(DROPOUT_LAUNCHES * DROPOUT_BACKWARD[1])
    assert sum(e for _, e in backward) == round(DROPOUT_PASSES * DROPOUT_BACKWARD[0]) * x.numel()
    _, none = _count(lambda t: F.dropout(t, 0.0, training=True), x)
    assert none == []  # p = 0: no kernel, as the op list (no op)


# ------------------------------------------------------------------------------------------------ activations
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_kernels_are_the_implementation_s(name):
    x = torch.randn(16, 48, requires_grad=True)
    y, forward = _count(ACT2FN[name], x)
    act = ACTIVATIONS[name]
    assert len(forward) == act.launches and sum(n for _, n in forward) == act.passes * x.numel()
    backward = _backward(y, x)
    counted = (len(backward), sum(e for _, e in backward) // x.numel())
    op = activation_op("mlp.act", name, x.numel(), False, 4)
    if act.backward is None:  # silu: the generic factor of today's pricing, not the counted silu_backward
        assert counted == (1, 3) and op.backward_factors == (2, 2)
    else:
        assert counted == act.backward
        assert op.backward_factors == (act.backward[1] / act.passes, act.backward[0] / act.launches)


# ------------------------------------------------------------------------------------------------ norms
def _layer_norm_as_tensor_code(x, weight, bias, eps=1e-5):
    """LayerNorm over the last dimension written with tensor ops, as a model written from scratch does."""
    centred = x - x.mean(dim=-1, keepdim=True)
    return weight * (centred / torch.sqrt(x.var(dim=-1, keepdim=True, unbiased=False) + eps)) + bias


def test_eager_layernorm_kernels_are_the_tensor_code_s():
    x = torch.randn(4, 16, 48, requires_grad=True)
    weight, bias = torch.ones(48, requires_grad=True), torch.zeros(48, requires_grad=True)
    y, forward = _count(_layer_norm_as_tensor_code, x, weight, bias)
    assert torch.allclose(y, F.layer_norm(x, (48,), weight, bias), atol=1e-5)
    assert len(forward) == EAGER_LAYERNORM_LAUNCHES
    assert sum(n for _, n in forward) // x.numel() == EAGER_LAYERNORM_PASSES  # the row statistics add 1/h each
    backward = _backward(y, [x, weight, bias])
    passes, launches = EAGER_LAYERNORM_BACKWARD
    assert len(backward) == round(launches * EAGER_LAYERNORM_LAUNCHES)
    assert sum(n for _, n in backward) // x.numel() == round(passes * EAGER_LAYERNORM_PASSES)
    arch = from_hf_dict(GPT2)
    eager = replace(arch, norm="layernorm_eager")
    native_op, eager_op = norm_op("norm.x", arch, x.numel(), 4), norm_op("norm.x", eager, x.numel(), 4)
    assert (native_op.launches, eager_op.launches) == (1, EAGER_LAYERNORM_LAUNCHES)
    assert eager_op.bytes == EAGER_LAYERNORM_PASSES * x.numel() * 4
    # the same parameters, however the norm is written
    assert count_params(eager) == count_params(arch) and parameter_tensor_sizes(eager) == parameter_tensor_sizes(arch)


def test_gated_activation_adds_the_product_and_its_two_gradients():
    gate, up = (torch.randn(8, 24, requires_grad=True) for _ in range(2))
    y, forward = _count(lambda g, u: ACT2FN["gelu_new"](g) * u, gate, up)
    op = activation_op("mlp.act_mul", "gelu_new", gate.numel(), True, 4)
    assert op.launches == len(forward) and op.bytes == 4 * sum(n for _, n in forward)
    backward = _backward(y, (gate, up))
    assert round(op.launches * op.backward_factors[1]) == len(backward)
    assert round(op.bytes * op.backward_factors[0]) == 4 * sum(e for _, e in backward)


def test_zoo_silu_gate_is_priced_as_before():
    """The zoo's SwiGLU keeps its forward count and the generic backward factor (its counted autograd backward is
    3 kernels and 9 passes, as docs/estimating.md says)."""
    op = activation_op("mlp.act_mul", "silu", 100, True, 4)
    assert (op.launches, op.bytes, op.exps, op.backward_factors) == (2, 5 * 100 * 4, 100, (2, 2))
    gate, up = (torch.randn(10, 10, requires_grad=True) for _ in range(2))
    y, forward = _count(lambda g, u: F.silu(g) * u, gate, up)
    assert (len(forward), sum(n for _, n in forward)) == (2, 5 * 100)
    backward = _backward(y, (gate, up))
    assert (len(backward), sum(e for _, e in backward)) == (3, 9 * 100)
    with pytest.raises(ValueError, match="activation='swiglu_fast' has no kernel count"):
        activation_op("mlp.act", "swiglu_fast", 10, False, 4)


# ------------------------------------------------------------------------------------------------ a real GPT-2
GPT2 = dict(model_type="gpt2", n_embd=32, n_head=2, n_layer=2, n_positions=16, vocab_size=64)


def _gpt2_kernels(training: bool, activation: str = "gelu_new") -> tuple[list, list]:
    """Kernels of a tiny transformers GPT-2 (eager attention) forward and backward on CPU."""
    torch.manual_seed(0)
    config = GPT2Config(**{k: v for k, v in GPT2.items() if k != "model_type"}, activation_function=activation,
                        attn_implementation="eager")
    model = GPT2LMHeadModel(config).train(training)
    ids = torch.randint(0, 64, (2, 16))
    logits, forward = _count(lambda i: model(i, use_cache=False).logits, ids)
    return forward, _backward(logits, list(model.parameters()))


def test_gpt2_in_training_mode_runs_the_op_list_s_dropout_kernels():
    """Train-mode kernels less eval-mode kernels of the real model = the op list's dropout launches, forward and
    backward: one embedding dropout, and per layer the probabilities' (math path) and two residual ones."""
    arch = from_hf_dict(GPT2)
    train_forward, train_backward = _gpt2_kernels(True)
    eval_forward, eval_backward = _gpt2_kernels(False)
    ops = model_ops(arch, Workload("train", 2, 16, dropout=True), "math")
    dropouts = [op for op in ops if op.name.endswith(".dropout")]
    assert {op.name: op.repeats for op in dropouts} == {"embedding.dropout": 1, "attention.dropout": 2,
                                                        "residual.dropout": 4}
    assert len(train_forward) - len(eval_forward) == sum(op.launches for op in dropouts)
    assert sum(c[0] == "bernoulli_" for c in train_forward) == sum(op.repeats for op in dropouts)
    backward = [op for op in ops if op.name.endswith(".dropout.backward")]
    assert len(train_backward) - len(eval_backward) == sum(op.launches for op in backward)


def test_gpt2_gelu_new_runs_the_op_list_s_kernels():
    """gelu_new less F.gelu on the real model: (8 − 1) kernels per layer forward, (11 − 1) backward."""
    new_forward, new_backward = _gpt2_kernels(False, "gelu_new")
    plain_forward, plain_backward = _gpt2_kernels(False, "gelu")
    layers = GPT2["n_layer"]
    for activation, forward, backward in (("gelu_new", new_forward, new_backward),
                                          ("gelu", plain_forward, plain_backward)):
        ops = model_ops(from_hf_dict({**GPT2, "activation_function": activation}), Workload("train", 2, 16),
                        "math")
        act = next(op for op in ops if op.name == "mlp.act")
        assert act.launches == layers * ACTIVATIONS[activation].launches
        assert next(op for op in ops if op.name == "mlp.act.backward").launches == \
            layers * ACTIVATIONS[activation].backward[0]
    assert len(new_forward) - len(plain_forward) == layers * (8 - 1)
    assert len(new_backward) - len(plain_backward) == layers * (11 - 1)


def test_dropout_is_off_unless_asked_and_changes_nothing_for_the_zoo():
    gpt2 = from_hf_dict(GPT2)
    assert not any(".dropout" in op.name for op in model_ops(gpt2, Workload("train", 2, 16)))
    fused = model_ops(gpt2, Workload("train", 2, 16, dropout=True))
    assert "attention.dropout" not in {op.name for op in fused}  # inside the fused kernel
    for size in ("tiny", "small"):
        arch = from_size(size)
        for mode in ("forward", "train"):
            assert model_ops(arch, Workload(mode, 2, 32, dropout=True), "math") == \
                model_ops(arch, Workload(mode, 2, 32), "math")


def test_cuda_dropout_is_one_native_kernel_with_a_byte_mask():
    ops = model_ops(from_hf_dict(GPT2), Workload("forward", 2, 16, "bfloat16", device="cuda", dropout=True))
    embedding = next(op for op in ops if op.name == "embedding.dropout")
    assert embedding.launches == 1 and embedding.bytes == 2 * 16 * 32 * (2 * 2 + 1)
    assert backward_op(embedding)[0].launches == 1 and backward_op(embedding)[0].bytes == embedding.bytes


# ------------------------------------------------------------------------------------------------ AdamW
def test_multi_tensor_launches_fill_blocks_and_tensor_slots():
    full = MULTI_TENSOR_CHUNK * MULTI_TENSOR_MAX_BLOCKS
    assert multi_tensor_launches([full], 1) == 1 and multi_tensor_launches([full + 1], 1) == 2
    assert multi_tensor_launches([1] * 770, 1) == 1 and multi_tensor_launches([1] * 771, 1) == 2
    assert multi_tensor_launches([1] * 672, 1, scalar_list=True) == 1
    assert multi_tensor_launches([1] * 673, 1, scalar_list=True) == 2
    assert multi_tensor_launches([1] * 253, 4) == 2 and multi_tensor_launches([0, 0], 1) == 0
    # a tensor split over two launches takes a slot in the second: 251 more tensors fill it exactly
    assert multi_tensor_launches([full + 1] + [1] * 251, 4) == 2
    assert multi_tensor_launches([full + 1] + [1] * 252, 4) == 3


def _chunk_by_chunk(tensor_sizes, depth, scalar_list=False):
    """multi_tensor_apply's launch rule walked one chunk at a time, as MultiTensorApply.cuh's loop does."""
    max_tensors = (MULTI_TENSOR_MAX_TENSORS_SCALARLIST if scalar_list else MULTI_TENSOR_MAX_TENSORS)[depth - 1]
    launches = blocks = tensors = 0
    for size in tensor_sizes:
        if not size:
            continue
        tensors += 1
        chunks = -(-size // MULTI_TENSOR_CHUNK)
        for chunk in range(chunks):
            blocks += 1
            last = chunk == chunks - 1
            if (tensors == max_tensors and last) or blocks == MULTI_TENSOR_MAX_BLOCKS:
                launches, blocks, tensors = launches + 1, 0, 0 if last else 1
    return launches + (blocks > 0)


@given(st.lists(st.integers(0, 3 * MULTI_TENSOR_CHUNK * MULTI_TENSOR_MAX_BLOCKS), max_size=400),
       st.integers(1, 5), st.booleans())
@settings(max_examples=150, deadline=None, derandomize=True)
def test_multi_tensor_launches_equal_the_chunk_by_chunk_walk(sizes, depth, scalar_list):
    """Whole launches at a time (a 671B-parameter list has 10^7 chunks) give the same count as walking them."""
    assert multi_tensor_launches(sizes, depth, scalar_list) == _chunk_by_chunk(sizes, depth, scalar_list)


def _optimizer_calls(**kwargs):
    params = [torch.nn.Parameter(torch.randn(n)) for n in (10, 300, 7)]
    for p in params:
        p.grad = torch.randn_like(p)
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.1, **kwargs)
    optimizer.step()  # the first step initialises the state
    _, calls = _count(optimizer.step)
    return params, calls


def test_foreach_adamw_runs_the_listed_kernels():
    params, calls = _optimizer_calls(foreach=True)
    total = sum(p.numel() for p in params)
    # the step counters are host tensors: one increment of the list and two reads (.item()) each, not priced
    assert [n for n, e in calls if not e] == ["_foreach_add_"] + ["_local_scalar_dense"] * 2 * len(params)
    device_calls = [(n, e) for n, e in calls if e]
    assert [n for n, _ in device_calls] == ["_foreach_" + k.split()[0] for k, _, _ in FOREACH_ADAMW_KERNELS]
    assert sum(e for _, e in device_calls) == FOREACH_ADAMW_PASSES * total
    op, = optimizer_ops([p.numel() for p in params], "foreach")
    assert op.bytes == FOREACH_ADAMW_PASSES * total * 4
    assert op.launches == sum(multi_tensor_launches([10, 300, 7], d, s) for _, d, s in FOREACH_ADAMW_KERNELS) == 8


def test_fused_adamw_is_a_step_increment_and_one_kernel():
    params, calls = _optimizer_calls(fused=True)
    assert [n for n, _ in calls] == ["_foreach_add_", "_fused_adamw_"]
    op, = optimizer_ops([p.numel() for p in params], "fused", element_bytes=2)
    assert op.launches == 2 and op.bytes == 7 * sum(p.numel() for p in params) * 2
    assert FUSED_ADAMW_DEPTH == 4  # params, grads, exp_avgs, exp_avg_sqs


def test_the_device_picks_the_default_optimizer_and_a_workload_can_override_it():
    arch = from_size("tiny")
    names = {device: {op.name.split("[")[0] for op in model_ops(arch, Workload("train", 1, 16, device=device))
                      if op.phase == "optimizer"} for device in ("cpu", "mps", "cuda")}
    assert names == {"cpu": {"optimizer.adamw"}, "mps": {"optimizer.adamw"}, "cuda": {"optimizer.adamw_foreach"}}
    fused = [op for op in model_ops(arch, Workload("train", 1, 16, "bfloat16", device="cuda", optimizer="fused",
                                                   master_weights=False)) if op.phase == "optimizer"]
    sizes = parameter_tensor_sizes(arch)
    assert [op.name for op in fused] == [f"optimizer.adamw_fused[{sum(sizes)}]"]
    assert fused[0].bytes == 7 * sum(sizes) * 2  # pure bf16: the parameters' dtype


@pytest.mark.parametrize("kwargs, message", [
    (dict(mode="decode", dropout=True), r"dropout=True needs mode in \('forward', 'train'\)"),
    (dict(optimizer="fused"), r"optimizer='fused' is priced as CUDA's .* needs device='cuda'"),
    (dict(optimizer="lion", device="cuda"), r"optimizer='lion' is not one of"),
    (dict(device="tpu"), r"device='tpu' is not one of"),
    (dict(dropout=1), r"dropout=1 must be true or false"),
])
def test_bad_run_settings_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Workload(**{"mode": "train", "batch": 1, "seq_len": 8, **kwargs})


def test_predict_command_takes_the_run_settings(capsys):
    from profiler.cli import main

    def optimizer_rows(*flags):
        assert main(["predict", "tiny", "--mode", "train", "--format", "json", *flags]) == 0
        return {row["name"].split("[")[0] for row in json.loads(capsys.readouterr().out)["ops"]
                if row["phase"] == "optimizer"}

    assert optimizer_rows("--hardware", "cpu_generic") == {"optimizer.adamw"}
    assert optimizer_rows("--hardware", "nvidia_a100") == {"optimizer.adamw_foreach"}  # the profile's device
    assert optimizer_rows("--hardware", "nvidia_a100", "--optimizer", "fused", "--dtype", "bfloat16",
                          "--no-master-weights") == {"optimizer.adamw_fused"}
    assert main(["predict", "gpt2", "--hardware", "apple_m4_pro", "--mode", "forward", "--dropout",
                 "--attention-kernel", "math", "--format", "json"]) == 0
    names = {row["name"] for row in json.loads(capsys.readouterr().out)["ops"]}
    assert {"embedding.dropout", "attention.dropout", "residual.dropout"} <= names
    assert main(["predict", "tiny", "--hardware", "cpu_generic", "--mode", "train", "--optimizer", "fused"]) == 2
    assert "needs device='cuda'" in capsys.readouterr().err
