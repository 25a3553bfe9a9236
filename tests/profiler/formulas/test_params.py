import dataclasses
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from profiler_testing import SHIPPED, HypothesisChoices, hf_configs, shipped_config

from complexity.config import SIZES, ComplexityConfig, config_for_size
from profiler.arch import from_complexity_config, from_hf_dict, from_size
from profiler.checks.published import validate_published
from profiler.formulas.params import count_params, parameter_tensor_sizes, router_bias_params
from profiler.source import resolve

FAMILIES = ("gpt2", "llama", "mistral", "qwen2", "qwen3", "mixtral", "deepseek_v3", "gemma", "gemma2", "gemma3_text",
            "phi3", "qwen2_moe", "qwen3_moe", "olmoe", "olmo2", "deepseek_v2", "falcon", "gpt_neox", "granite",
            "starcoder2")


def zoo_tensor_shapes(c: ComplexityConfig) -> dict[str, tuple[int, ...]]:
    """Every stored tensor of the zoo model, written out from its documented layout (names and shapes)."""
    h, hd, heads, kv, inter, e = (c.hidden_size, c.head_dim, c.num_attention_heads, c.num_key_value_heads,
                                  c.intermediate_size, c.num_experts)
    shapes = {"model.embed_tokens.weight": (c.vocab_size, h), "model.norm.weight": (h,)}
    if not c.tie_word_embeddings:
        shapes["lm_head.weight"] = (c.vocab_size, h)
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        shapes.update({p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
                       p + "self_attn.q_proj.weight": (heads * hd, h), p + "self_attn.k_proj.weight": (kv * hd, h),
                       p + "self_attn.v_proj.weight": (kv * hd, h), p + "self_attn.o_proj.weight": (h, heads * hd)})
        if c.use_qk_norm:
            shapes.update({p + "self_attn.q_norm.weight": (hd,), p + "self_attn.k_norm.weight": (hd,)})
        if c.use_token_routed_mlp:
            shapes.update({p + "mlp.gate_proj": (e, h, inter // e), p + "mlp.up_proj": (e, h, inter // e),
                           p + "mlp.down_proj": (e, inter // e, h)})
        else:
            shapes.update({p + "mlp.gate_proj.weight": (inter, h), p + "mlp.up_proj.weight": (inter, h),
                           p + "mlp.down_proj.weight": (h, inter)})
    return shapes


def zoo_hand_count(c: ComplexityConfig) -> int:
    return sum(math.prod(shape) for shape in zoo_tensor_shapes(c).values())


def _module_tensor_sizes(module) -> list[int]:
    """Numbers in each of a module's parameter tensors, and in DeepSeek-V3's score-correction biases (buffers in
    transformers, tensors of the checkpoint, counted by `parameter_tensor_sizes` as by `count_params`); without
    the empty tensors of the shared expert transformers builds for DeepSeek's n_shared_experts = 0."""
    sizes = [p.numel() for p in module.parameters() if p.numel()]
    return sorted(sizes + [b.numel() for n, b in module.named_buffers() if n.endswith("e_score_correction_bias")])


@st.composite
def zoo_configs(draw: st.DrawFn) -> ComplexityConfig:
    """Hypothesis strategy: small valid zoo configs (dense or token-routed, GQA, QK-norm, tying, window)."""
    rng = HypothesisChoices(draw)
    kv = rng.choice([1, 2, 3])
    experts = rng.choice([1, 2, 4])
    return ComplexityConfig(
        vocab_size=rng.randint(experts, 300), hidden_size=rng.choice([8, 16, 40]), num_hidden_layers=rng.randint(1, 5),
        num_attention_heads=kv * rng.choice([1, 2, 4]), num_key_value_heads=kv, head_dim=rng.choice([2, 4, 8]),
        intermediate_size=experts * rng.randint(1, 20), num_experts=experts,
        use_token_routed_mlp=rng.random() < 0.7, use_qk_norm=rng.random() < 0.5,
        tie_word_embeddings=rng.random() < 0.5, sliding_window=rng.choice([None, 3]))


@pytest.mark.parametrize("size", list(SIZES))
def test_zoo_sizes_match_the_layout(size):
    config = config_for_size(size)
    counts = count_params(from_size(size))
    assert counts.total == zoo_hand_count(config)
    layers, h, e = config.num_hidden_layers, config.hidden_size, config.num_experts
    inactive_experts = layers * (e - 1) * 3 * h * config.intermediate_size // e
    assert counts.active == counts.total - inactive_experts
    assert counts.components["router"] == 0 and counts.components["head"] == 0  # tied, no router


@settings(max_examples=60, deadline=None)
@given(config=zoo_configs())
def test_random_zoo_configs_match_the_layout(config):
    counts = count_params(from_complexity_config(config))
    assert counts.total == zoo_hand_count(config)
    per_layer_mlp = 3 * config.hidden_size * config.expert_intermediate_size
    assert counts.active_components["mlp"] == config.num_hidden_layers * per_layer_mlp


@settings(max_examples=25, deadline=None)
@given(config=zoo_configs())
def test_random_zoo_configs_match_the_module(config):
    torch = pytest.importorskip("torch")
    modeling = pytest.importorskip("complexity.models.modeling")
    with torch.device("meta"):
        model = modeling.ComplexityForCausalLM(config)
    arch = from_complexity_config(config)
    assert count_params(arch).total == sum(p.numel() for p in model.parameters())
    assert sorted(parameter_tensor_sizes(arch)) == _module_tensor_sizes(model)  # token-routed: [E, in, out] stacks


@pytest.mark.parametrize("size", list(SIZES))
def test_zoo_sizes_match_the_module(size):
    torch = pytest.importorskip("torch")
    modeling = pytest.importorskip("complexity.models.modeling")
    with torch.device("meta"):
        model = modeling.ComplexityForCausalLM(config_for_size(size))
    assert count_params(from_size(size)).total == sum(p.numel() for p in model.parameters())
    assert sorted(parameter_tensor_sizes(from_size(size))) == _module_tensor_sizes(model)


def test_published_exact_counts():
    total = {name: count_params(resolve(name).arch).total for name in SHIPPED}
    assert total["llama_7b"] == 6_738_415_616
    assert total["mixtral_8x7b"] == 46_702_792_704
    assert total["deepseek_v3"] == 671_026_419_200  # includes 58 x 256 score-correction biases
    assert total["gpt2"] == 124_439_808
    assert total["mistral_7b"] == 7_241_732_096
    assert total["qwen3_0.6b"] == 596_049_920
    assert total["gemma3_1b"] == 999_885_952  # keras-hub's preset metadata
    assert total["phi3_mini_4k"] == 3_821_079_552  # keras-hub's preset metadata
    assert total["pythia_1b"] == 1_011_781_632  # Pythia paper, Table 1
    assert total["gemma_2b"] == 2_506_172_416  # keras-hub's preset metadata
    assert total["gemma2_2b"] == 2_614_341_888  # keras-hub's preset metadata
    assert total["qwen1.5_moe_a2.7b"] == 14_315_784_192  # safetensors index: 28,631,568,384 bytes of bf16
    assert total["qwen3_30b_a3b"] == 30_532_122_624  # safetensors index: 61,064,245,248 bytes of bf16
    assert total["olmoe_1b_7b"] == 6_919_161_856  # safetensors index: 13,838,323,712 bytes of bf16
    assert count_params(resolve("pythia_1b").arch).non_embedding == 805_736_448
    assert count_params(resolve("gemma_2b").arch).non_embedding == 1_981_884_416  # Gemma report, Table 2


def test_every_shipped_config_matches_its_published_figures():
    """Each figure in published.json (its rounding stated there; SOURCES.md explains the ones a card rounds or
    counts differently) is met by the analytic count, and every shipped config has at least one."""
    rows = validate_published()
    assert {row["model"] for row in rows} == set(SHIPPED)
    assert [row for row in rows if not row["match"]] == []


def test_falcon_hub_count_stores_the_tied_head_twice():
    counts = count_params(resolve("falcon_7b").arch)
    assert round((counts.total + counts.tied_head) / 1e7) == 722  # the Hub's 7.22B


def test_deepseek_v3_active_and_bias():
    arch = resolve("deepseek_v3").arch
    counts = count_params(arch)
    assert router_bias_params(arch) == 58 * 256
    assert round(counts.active_compute / 1e8) == 366  # README_WEIGHTS: 36.6B activated incl. the 0.9B head
    assert 36e9 < counts.active < 38e9  # the paper's "37B"
    per_expert = 3 * 7168 * 2048
    assert counts.total - counts.active == 58 * (256 - 8) * per_expert


def test_mixtral_active_and_qwen3_non_embedding():
    mixtral = count_params(resolve("mixtral_8x7b").arch)
    assert round(mixtral.active / 1e8) == 129  # "12.9B parameters per token"
    assert mixtral.components["router"] == 32 * 8 * 4096
    qwen3 = count_params(resolve("qwen3_0.6b").arch)
    assert qwen3.embedding == 151936 * 1024 and qwen3.components["head"] == 0
    assert round(qwen3.non_embedding / 1e7) == 44


def test_tying_stores_the_head_once():
    tied = config_for_size("tiny")
    untied = dataclasses.replace(tied, tie_word_embeddings=False)
    a, b = count_params(from_complexity_config(tied)), count_params(from_complexity_config(untied))
    assert b.total - a.total == tied.vocab_size * tied.hidden_size == b.components["head"]
    assert a.active_compute == b.active_compute  # the head matmul is used either way


@pytest.mark.parametrize("name", [n for n in SHIPPED if n != "deepseek_v3"])
def test_shipped_configs_match_transformers(name, hf_meta_count):
    assert count_params(resolve(name).arch).total == hf_meta_count(shipped_config(name))


def test_deepseek_v3_matches_transformers_on_fewer_layers(hf_meta_count):
    """Full-width DeepSeek-V3 with 3 dense + 2 MoE layers; transformers keeps the score-correction bias as a buffer."""
    config = dict(shipped_config("deepseek_v3"), num_hidden_layers=5)
    arch = from_hf_dict(config)
    assert count_params(arch).total - router_bias_params(arch) == hf_meta_count(config)


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")  # DeepSeek with no shared expert
@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_hf_configs_match_transformers(family, data, hf_meta_count):
    config = data.draw(hf_configs(family))
    arch = from_hf_dict(config)
    assert count_params(arch).total - router_bias_params(arch) == hf_meta_count(config)


@pytest.mark.parametrize("name", SHIPPED)
def test_hf_parameter_tensors_are_the_modules(name):
    """One size per tensor of transformers' module: a MoE layer's routed experts are two stacked tensors
    (experts.gate_up_proj [E, 2I, h], experts.down_proj [E, h, I]), DeepSeek's shared experts one MLP, Phi-3's
    gate_up one matrix; the AdamW op list launches per tensor."""
    pytest.importorskip("transformers")
    source = resolve(name).scaled_down()
    assert sorted(parameter_tensor_sizes(source.arch)) == _module_tensor_sizes(source.build("meta"))


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")  # DeepSeek with no shared expert
@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_random_hf_parameter_tensors_are_the_modules(family, data):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = data.draw(hf_configs(family))
    with torch.device("meta"):
        module = transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.for_model(**config))
    assert sorted(parameter_tensor_sizes(from_hf_dict(config))) == _module_tensor_sizes(module)
