import dataclasses

import pytest
from profiler_testing import SHIPPED

from profiler.arch import ArchSpec, AttentionSpec, LayerGroup, MLPSpec, from_size
from profiler.formulas import memory as M
from profiler.formulas.params import count_params, embedding_params, parameter_tensor_sizes
from profiler.source import resolve


def test_bytes_per_parameter_for_training():
    n = 1000
    # mixed precision with AdamW: 2 (weights) + 2 (grads) + 4 (master) + 8 (moments) = 16 bytes (ZeRO §3.1)
    assert M.weight_bytes(n, "bfloat16") + M.gradient_bytes(n, "bfloat16") + M.optimizer_bytes(n, "adamw", "bfloat16") \
        == 16 * n
    assert M.master_weight_bytes(n, "bfloat16") == 4 * n and M.master_weight_bytes(n, "float32") == 0
    assert M.optimizer_bytes(n, "adamw", "float32") == 8 * n
    assert M.optimizer_bytes(n, "sgd", "float32") == 0 and M.optimizer_bytes(n, "sgd_momentum", "float16") == 8 * n
    with pytest.raises(ValueError, match="optimizer='lion'"):
        M.optimizer_bytes(n, "lion", "float32")
    with pytest.raises(ValueError, match="dtype='int8'"):
        M.weight_bytes(n, "int8")


def test_korthikanti_formula_on_gpt2_small():
    """s=1024, b=2, h=768, a=12: sbh(34 + 5as/h) = 1,572,864 · (34 + 80) = 179,306,496 bytes per layer."""
    assert M.korthikanti_layer_bytes(2, 1024, 768, 12) == 179_306_496
    assert M.korthikanti_layer_bytes(2, 1024, 768, 12, "selective") == 34 * 1024 * 2 * 768
    assert M.korthikanti_layer_bytes(2, 1024, 768, 12, "full") == 2 * 1024 * 2 * 768
    arch = resolve("gpt2").arch
    assert M.korthikanti_activation_bytes(arch, 2, 1024) == 12 * 179_306_496


def test_implementation_activations_hand_computed():
    """One zoo-like layer: h=8, H=2, KV=1, d=4, QK-norm, token-routed SwiGLU of width 4, bf16, V=10, T=3.
    Per token: elements 4h (norms) + q,k,v,out 8+4+4+8 + qk-norm inputs 8+4 + 4·4 (SwiGLU) + 8 (dispatch) = 92
    → 184 bytes; fp32 stats: lse 2 + qk-norm 3 + two norms 2 = 7 → 28 bytes; head: 2h·2 + V·(2+4) = 92 bytes."""
    att = AttentionSpec(num_heads=2, num_kv_heads=1, head_dim=4, v_head_dim=4, qk_norm=True)
    mlp = MLPSpec(kind="token_routed", intermediate_size=4, num_experts=4)
    arch = ArchSpec(name="hand", model_type="test", vocab_size=10, hidden_size=8,
                    layer_groups=(LayerGroup(1, att, mlp),), tie_word_embeddings=True)
    assert M.layer_saved_bytes_per_token(arch.layer_groups[0], 8, 2) == 184 + 28
    assert M.implementation_activation_bytes(arch, 1, 3, "bfloat16") == 3 * (212 + 92)


def test_recomputation_and_micro_batches_shrink_activations():
    arch = from_size("small")
    none = M.implementation_activation_bytes(arch, 4, 256, "bfloat16")
    assert M.implementation_activation_bytes(arch, 4, 256, "bfloat16", "selective") == none  # SDPA keeps no S×S
    head = M.head_saved_bytes(arch, 4 * 256, 2)  # logits and log-softmax: 6 bytes x V per token, not recomputed
    full = M.implementation_activation_bytes(arch, 4, 256, "bfloat16", "full")
    assert head < full < head + (none - head) / 2
    assert M.implementation_activation_bytes(arch, 2, 256, "bfloat16") * 2 == none  # linear in the micro-batch
    assert M.implementation_activation_bytes(arch, 4, 256, "float32") > none


def test_kv_cache_gqa_window_and_mla():
    llama = resolve("llama_7b").arch
    assert M.kv_cache_bytes(llama, 1, 4096, "float16") == 2 * 32 * 4096 * 4096 * 2  # 2 GiB
    mistral = resolve("mistral_7b").arch  # GQA 8 of 32 heads, window 4096
    assert M.kv_cache_bytes(mistral, 1, 4000, "bfloat16") == M.kv_cache_bytes(llama, 1, 4000, "bfloat16") // 4
    assert M.kv_cache_bytes(mistral, 1, 100_000, "bfloat16") == M.kv_cache_bytes(mistral, 1, 4095, "bfloat16")
    deepseek = resolve("deepseek_v3").arch  # latent 512 + RoPE key 64 per token and layer
    assert M.kv_cache_bytes(deepseek, 2, 1000, "bfloat16") == 2 * 1000 * 61 * 576 * 2


def test_prefill_working_set_grows_with_tokens():
    arch = from_size("tiny")
    one, four = (M.prefill_working_bytes(arch, 1, s, "bfloat16") for s in (64, 256))
    logits = arch.vocab_size * 4
    assert four - logits == 4 * (one - logits)


def test_training_timeline_terms_by_hand():
    arch = from_size("tiny")  # tied head: V = 32000, h = 256
    params, b, s = count_params(arch).total, 2, 64
    t, v, h = b * s, arch.vocab_size, arch.hidden_size
    timeline = M.training_timeline(arch, b, s, "float32", device="cpu")
    assert tuple(timeline) == M.TRAINING_PHASES
    rope = 2 * arch.max_position_embeddings * 64 * 4  # the zoo's cached fp32 cos and sin
    assert M.rope_table_bytes(arch) == rope and M.rope_table_bytes(resolve("gpt2").arch) == 0
    assert M.rope_table_bytes(resolve("llama_7b").arch) == 0  # transformers computes cos/sin per call
    assert timeline["between_steps"] == 4 * params + 8 * params + rope  # weights + AdamW's two moments + RoPE
    forward_end = (timeline["between_steps"] + M.layers_activation_bytes(arch, b, s, "float32")
                   + 2 * t * h * 4 + t * v * 4)
    assert timeline["forward_end"] == forward_end
    assert timeline["loss"] == forward_end + t * v * 4  # the logits, alive while the log-softmax is computed
    assert timeline["backward_start"] == forward_end + 2 * t * v * 4
    assert timeline["backward_end"] == timeline["between_steps"] + 4 * params + 2 * v * h * 4  # tied tables
    largest = max(parameter_tensor_sizes(arch))
    assert largest == v * h and timeline["optimizer_step"] == timeline["between_steps"] + 4 * params + 8 * largest


def test_a_cached_rope_table_is_a_field_not_a_family():
    """`ArchSpec.rope_table_cached` alone decides: the zoo's adapter sets it, HF adapters leave it off."""
    tiny, llama = from_size("tiny"), resolve("llama_7b").arch
    assert tiny.rope_table_cached and not any(resolve(name).arch.rope_table_cached for name in SHIPPED)
    assert M.rope_table_bytes(dataclasses.replace(tiny, rope_table_cached=False)) == 0
    cached = dataclasses.replace(llama, rope_table_cached=True)
    assert M.rope_table_bytes(cached) == 2 * 4096 * 128 * 4  # fp32 cos and sin, 4096 positions, head_dim 128
    assert M.model_state_bytes(cached, "bfloat16") - M.model_state_bytes(llama, "bfloat16") == 2 * 4096 * 128 * 4


def test_training_state_is_the_timelines_between_steps():
    arch = from_size("tiny")
    params, rope = count_params(arch).total, M.rope_table_bytes(arch)
    for dtype, master_weights in (("float32", True), ("bfloat16", True), ("bfloat16", False)):
        timeline = M.training_timeline(arch, 1, 32, dtype, device="cpu", master_weights=master_weights)
        state = M.training_state_bytes(arch, dtype, master_weights=master_weights)
        assert state == timeline["between_steps"]
        grads = M.training_state_bytes(arch, dtype, master_weights=master_weights, gradients=True) - state
        assert grads == params * M.dtype_bytes(dtype)
    # fp32: weights 4 + moments 8; mixed bf16: weights 2 + master 4 + moments 8 (+ gradients 4 or 2)
    assert M.training_state_bytes(arch, "float32", gradients=True) == 16 * params + rope
    assert M.training_state_bytes(arch, "bfloat16", gradients=True) == 16 * params + rope
    assert M.training_state_bytes(arch, "float32", "sgd") == M.model_state_bytes(arch, "float32") == 4 * params + rope


@pytest.mark.parametrize("implementation, sizes", [
    *((implementation, [1000, 50_000, 20_000]) for implementation in M.OPTIMIZER_IMPLEMENTATIONS),
    ("single_tensor", [50_000, 1000, 20_000]), ("single_tensor", [30_000, 30_000, 30_000]),
])
def test_optimizer_temporaries_are_what_the_cpu_allocator_hands_out(implementation, sizes):
    """One AdamW step over fp32 tensors, measured with the CPU allocator's own events (setup and the first step,
    which allocates the state, inside the profile): the single-tensor loop's 2·sᵢ + sᵢ₋₁ at its worst tensor
    (so the order matters: three equal tensors need 3 x one, not 2 x), foreach's copy of every parameter, the fused
    kernel's nothing — each plus a few bytes of scalar tensors."""
    import torch

    from profiler.measuring.memory_check import allocator_peak

    flags = {"single_tensor": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
    held = {}

    def setup():
        params = [torch.nn.Parameter(torch.randn(n)) for n in sizes]
        for p in params:
            p.grad = torch.randn_like(p)
        held["optimizer"] = torch.optim.AdamW(params, lr=1e-3, **flags[implementation])
        held["optimizer"].step()  # the moments and step counters exist from here on

    stats = allocator_peak(lambda: held["optimizer"].step(), setup)
    transient = stats.peak_bytes - stats.start_bytes
    expected = M.optimizer_temporary_bytes(sizes, "adamw", implementation)
    assert expected <= transient <= expected + 64 and stats.end_bytes == stats.start_bytes


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
@pytest.mark.parametrize("name", ("tiny", "small", *SHIPPED))
def test_single_tensor_temporaries_follow_the_modules_order(name):
    """The single-tensor loop's worst 2·sᵢ + sᵢ₋₁ depends on which tensors are neighbours: `parameter_tensor_sizes`
    keeps the modules' order where it matters. Exact for the zoo and most families; DeepSeek-V2/V3 and Qwen3-MoE
    register the router after the experts, not before as Mixtral, OLMoE and Qwen2-MoE do: within 1 %."""
    pytest.importorskip("transformers")
    source = resolve(name)
    module = source.build("meta")  # full size: the meta device holds no numbers
    order = [p.numel() for p in module.parameters() if p.numel()]
    order += [b.numel() for n, b in module.named_buffers() if n.endswith("e_score_correction_bias")]
    ours = M.optimizer_temporary_bytes(parameter_tensor_sizes(source.arch), "adamw", "single_tensor")
    theirs = M.optimizer_temporary_bytes(order, "adamw", "single_tensor")
    if name in ("deepseek_v2_lite", "deepseek_v3", "qwen3_30b_a3b"):
        assert ours == pytest.approx(theirs, rel=0.01)
    else:
        assert ours == theirs


def test_training_timeline_options():
    arch = from_size("tiny")
    params = count_params(arch).total
    cpu, cuda = (M.training_timeline(arch, 1, 32, device=d) for d in ("cpu", "cuda"))
    assert {k for k in cpu if cpu[k] != cuda[k]} == {"optimizer_step"}
    assert cuda["optimizer_step"] - cpu["optimizer_step"] == 4 * params - 8 * max(parameter_tensor_sizes(arch))
    fused = M.training_timeline(arch, 1, 32, device="cuda", implementation="fused")
    assert {k for k in cpu if cpu[k] != fused[k]} == {"optimizer_step"}
    assert fused["optimizer_step"] == fused["between_steps"] + 4 * params  # in place: gradients only
    assert M.training_timeline(arch, 1, 32, device="cpu", implementation="foreach") == cuda
    with pytest.raises(ValueError, match=r"path='lion' is not one of \('single_tensor', 'foreach', 'fused'\)"):
        M.training_timeline(arch, 1, 32, implementation="lion")
    sgd = M.training_timeline(arch, 1, 32, optimizer="sgd", device="cpu")
    assert sgd["optimizer_step"] == sgd["between_steps"] + 4 * params  # in place: gradients only
    accumulating = M.training_timeline(arch, 1, 32, grad_accum=4, device="cpu")
    assert accumulating["loss"] - cpu["loss"] == 4 * params and accumulating["backward_end"] == cpu["backward_end"]
    full = M.training_timeline(arch, 1, 32, recompute="full", device="cpu")
    assert full["forward_end"] < cpu["forward_end"]
    half = M.training_timeline(arch, 1, 32, dtype="bfloat16", device="cpu")
    tv = 32 * arch.vocab_size
    assert half["loss"] - half["forward_end"] == tv * 2 + tv * 4  # 16-bit logits and their fp32 copy
    untied_arch = dataclasses.replace(arch, tie_word_embeddings=False)
    untied = M.training_timeline(untied_arch, 1, 32, device="cpu")
    assert untied["backward_end"] - untied["between_steps"] == 4 * count_params(untied_arch).total  # no tables
    for bad, match in ((dict(device="tpu"), "device='tpu'"), (dict(grad_accum=0), "grad_accum=0"),
                       (dict(optimizer="lion"), "optimizer='lion'")):
        with pytest.raises(ValueError, match=match):
            M.training_timeline(arch, 1, 32, **bad)


def test_forward_and_generate_peaks():
    arch = from_size("tiny")
    weights = 4 * count_params(arch).total + M.rope_table_bytes(arch)
    t = 4 * 512
    assert M.forward_peak_bytes(arch, 4, 512, "float32") == weights + t * (arch.hidden_size + arch.vocab_size) * 4
    generate = M.generate_timeline(arch, 2, 100, 28, "float32")
    assert tuple(generate) == M.GENERATE_PHASES
    logits = 2 * arch.vocab_size * 8
    assert generate["prefill"] == (weights + M.kv_cache_bytes(arch, 2, 100, "float32")
                                   + M.layer_working_bytes(arch, 200, "float32") + logits)
    one_layer = M.kv_cache_bytes(arch, 2, 128, "float32") // arch.num_layers
    assert generate["last_decode_step"] == (weights + M.kv_cache_bytes(arch, 2, 128, "float32") + one_layer
                                            + M.layer_working_bytes(arch, 2, "float32") + logits)
    fp8 = M.generate_timeline(arch, 2, 100, 28, "float32", kv_dtype="float8")  # a 1-byte cache, 4x smaller
    assert generate["prefill"] - fp8["prefill"] == 3 * M.kv_cache_bytes(arch, 2, 100, "float8")
    assert generate["last_decode_step"] - fp8["last_decode_step"] == 3 * (M.kv_cache_bytes(arch, 2, 128, "float8")
                                                                           + one_layer // 4)
    with pytest.raises(ValueError, match="new_tokens=0"):
        M.generate_timeline(arch, 1, 8, 0, "float32")


def test_autocast_timeline_terms():
    arch = from_size("tiny")
    params, b, s = count_params(arch).total, 2, 64
    t, v, h = b * s, arch.vocab_size, arch.hidden_size
    fp32 = M.training_timeline(arch, b, s, "float32", device="cpu")
    mixed = M.training_timeline(arch, b, s, "float32", device="cpu", autocast="bfloat16")
    assert mixed["between_steps"] == fp32["between_steps"]  # fp32 weights and moments: no master copy
    layers = sum(g.count * t * M.autocast_layer_bytes_per_token(g, h, 2) for g in arch.layer_groups)
    assert layers < M.layers_activation_bytes(arch, b, s, "float32")
    copies = 2 * (params - embedding_params(arch) - count_params(arch).components["norms"] + v * h)
    assert mixed["forward_end"] == mixed["between_steps"] + layers + copies + t * h * (4 + 2) + t * v * 4
    assert mixed["loss"] - mixed["forward_end"] == t * v * 2 + t * v * 4  # bf16 logits and their fp32 copy
    assert mixed["backward_end"] == fp32["backward_end"] - v * h * 4  # one tied table, not two
    for bad in (dict(dtype="bfloat16", autocast="bfloat16"), dict(autocast="float32")):
        with pytest.raises(ValueError, match="autocast="):
            M.training_timeline(arch, b, s, device="cpu", **{"dtype": "float32", **bad})


def test_pure_16bit_keeps_its_moments_in_16_bits():
    arch = from_size("tiny")
    params = count_params(arch).total
    mixed = M.training_timeline(arch, 1, 32, "bfloat16", device="cpu")
    pure = M.training_timeline(arch, 1, 32, "bfloat16", device="cpu", master_weights=False)
    assert mixed["between_steps"] - pure["between_steps"] == (4 + 8) * params - 4 * params  # master and fp32 moments
    largest = max(parameter_tensor_sizes(arch))
    assert (pure["optimizer_step"] - pure["between_steps"]) - 2 * params == 2 * 2 * largest  # 16-bit temporaries
    assert M.training_timeline(arch, 1, 32, "float32", device="cpu", master_weights=False) == \
        M.training_timeline(arch, 1, 32, "float32", device="cpu")  # fp32 has no master copy either way


def _layer(arch):
    return M.layers_activation_bytes(arch, 1, 1, "bfloat16")


def test_norm_positions_and_parallel_blocks_change_the_saved_norm_tensors():
    """Per token and layer, each norm keeps its output (h) and 1/rms (fp32), and its input unless another norm
    reads the same tensor: 2 pre-norms 4h + 2 stats; Gemma's four 8h + 4; Falcon-7B's one shared 2h + 1; a
    parallel block's two input norms over one input 3h + 2."""
    base = resolve("llama_7b").arch
    h = base.hidden_size
    four = dataclasses.replace(base, norm_positions=("attention_in", "attention_out", "mlp_in", "mlp_out"))
    one = dataclasses.replace(base, norm_positions=("attention_in",), parallel_block=True)
    parallel = dataclasses.replace(base, parallel_block=True)
    layers = base.num_layers
    assert _layer(four) - _layer(base) == layers * (4 * h * 2 + 2 * 4)
    assert _layer(base) - _layer(one) == layers * (2 * h * 2 + 1 * 4)
    assert _layer(base) - _layer(parallel) == layers * h * 2


def test_full_width_qk_norm_keeps_one_statistic_per_token():
    arch = resolve("olmo2_1b").arch  # H = KV = 16
    head = dataclasses.replace(arch, layer_groups=tuple(dataclasses.replace(
        g, attention=dataclasses.replace(g.attention, qk_norm_scope="head")) for g in arch.layer_groups))
    assert _layer(head) - _layer(arch) == arch.num_layers * (16 + 16 - 2) * 4


def test_shared_expert_gate_and_logit_softcap_keep_their_products():
    qwen = resolve("qwen1.5_moe_a2.7b").arch
    ungated = dataclasses.replace(qwen, layer_groups=tuple(dataclasses.replace(
        g, mlp=dataclasses.replace(g.mlp, shared_expert_gate=False)) for g in qwen.layer_groups))
    assert _layer(qwen) - _layer(ungated) == qwen.num_layers * (2048 + 1) * 2  # shared output and sigmoid, bf16
    gemma = resolve("gemma2_2b").arch
    uncapped = dataclasses.replace(gemma, final_logit_softcap=None)
    assert M.head_saved_bytes(gemma, 3, 2) - M.head_saved_bytes(uncapped, 3, 2) == 3 * 256000 * 2  # tanh output


def test_kv_cache_of_new_families():
    gemma2 = resolve("gemma2_2b").arch  # 13 global layers cache all, 13 sliding ones W - 1 = 4095 tokens
    per_token = 4 * 2 * 256 * 2  # KV heads x (k + v) x d x bf16
    assert M.kv_cache_bytes(gemma2, 1, 8192, "bfloat16") == 13 * (8192 + 4095) * per_token
    falcon = resolve("falcon_7b").arch  # multi-query: one key/value head of 64
    assert M.kv_cache_bytes(falcon, 1, 2048, "bfloat16") == 32 * 2048 * 2 * 64 * 2
    lite = resolve("deepseek_v2_lite").arch  # MLA latent 512 + RoPE key 64
    assert M.kv_cache_bytes(lite, 1, 1000, "bfloat16") == 27 * 1000 * 576 * 2
