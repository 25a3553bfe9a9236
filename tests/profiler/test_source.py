"""ModelSource: a MODEL resolved once (zoo size, shipped name, config.json path) and the one module factory."""

import json
import subprocess
import sys

import pytest
from profiler_testing import SHIPPED, shipped_config

from complexity.config import SIZES, config_for_size
from profiler.arch import from_size
from profiler.formulas.params import count_params
from profiler.source import MODELS_DIR, from_config_dict, resolve, shipped_model_names


def test_shipped_names_are_the_package_data_configs():
    assert sorted(SHIPPED) == shipped_model_names()
    assert all((MODELS_DIR / f"{name}.json").is_file() for name in shipped_model_names())


@pytest.mark.parametrize("size", list(SIZES))
def test_a_zoo_size_resolves_to_its_arch_and_config(size):
    source = resolve(size)
    assert source.name == size and source.origin == "zoo size" and source.is_zoo
    assert source.arch == from_size(size)
    assert source.zoo_config() == config_for_size(size)


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_name_resolves_like_its_file(name):
    by_name, by_path = resolve(name), resolve(str(MODELS_DIR / f"{name}.json"))
    assert by_name.origin == "shipped config" and by_path.origin == str(MODELS_DIR / f"{name}.json")
    assert by_name.arch == by_path.arch and by_name.name == name == by_name.arch.name
    assert dict(by_name.config) == shipped_config(name) and not by_name.is_zoo


def test_a_zoo_config_file_is_a_zoo_model(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(config_for_size("small").to_dict()))
    source = resolve(str(path))
    assert source.is_zoo and source.name == "mine"
    assert source.arch.layer_groups == from_size("small").layer_groups


def test_bad_models_are_value_errors_naming_the_choices(tmp_path):
    with pytest.raises(ValueError, match=r"neither a zoo size \(tiny, .*\), a shipped config \(.*llama_7b.*\)"):
        resolve("no-such-model")
    with pytest.raises(ValueError, match="must be a zoo size"):
        resolve("")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        resolve(str(bad))
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must be a JSON object, got list"):
        resolve(str(bad))
    bad.write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="model_type='bert' is not supported"):
        resolve(str(bad))


def test_scaled_down_keeps_the_family_and_shrinks_the_sizes():
    mixtral = resolve("mixtral_8x7b")
    small = mixtral.scaled_down()
    assert small.has_routed_experts and small.arch.model_type == "mixtral"
    assert small.arch.hidden_size == 64 and small.arch.num_layers == 2 and small.arch.vocab_size == 256
    (group,) = small.arch.layer_groups
    assert group.attention.num_kv_heads == 2 and group.mlp.num_experts == 4 and group.mlp.experts_per_token == 2
    assert resolve("mistral_7b").scaled_down().arch.layer_groups[0].attention.sliding_window == 8
    assert resolve("gpt2").scaled_down().arch.layer_groups[0].attention.kind == "mha"
    with pytest.raises(ValueError, match="scaled_down is for HuggingFace configs"):
        resolve("tiny").scaled_down()


def test_scaled_down_new_families_keep_their_structure():
    qwen3_moe = resolve("qwen3_30b_a3b").scaled_down().arch.layer_groups[0].mlp
    assert (qwen3_moe.num_experts, qwen3_moe.experts_per_token, qwen3_moe.intermediate_size) == (8, 8, 32)
    qwen2_moe = resolve("qwen1.5_moe_a2.7b").scaled_down().arch.layer_groups[0].mlp
    assert qwen2_moe.shared_expert_gate and qwen2_moe.shared_intermediate_size == 64
    lite = resolve("deepseek_v2_lite").scaled_down().arch.layer_groups[-1].attention
    assert lite.q_lora_rank is None and lite.kv_lora_rank == 16  # a null rank stays null
    falcon = resolve("falcon_7b").scaled_down()
    assert falcon.arch.layer_groups[0].mlp.intermediate_size == 256 and falcon.arch.shared_input_norm  # 4 x 64
    gemma2 = from_config_dict(dict(shipped_config("gemma2_2b"), layer_types=["full_attention"] * 26), "g")
    assert [g.attention.sliding_window for g in gemma2.scaled_down().arch.layer_groups] == [None]  # types cut to 2
    phi3 = resolve("phi3_mini_4k").scaled_down().config
    assert phi3["pad_token_id"] is None and phi3["eos_token_id"] is None and phi3["bos_token_id"] == 1


def test_build_hf_uses_eager_attention_where_transformers_has_no_sdpa():
    pytest.importorskip("transformers")
    gemma2 = resolve("gemma2_2b").scaled_down().build("meta")
    assert gemma2.config._attn_implementation == "eager"
    assert resolve("gemma3_1b").scaled_down().build("meta").config._attn_implementation == "sdpa"


def test_build_for_counting_swaps_the_routed_mlp_for_one_expert_on_meta():
    torch = pytest.importorskip("torch")
    from complexity.core.token_routed_mlp import TokenRoutedMLP

    source = resolve("tiny")
    counted, real = source.build("meta", for_counting=True), source.build("meta")
    assert not any(isinstance(m, TokenRoutedMLP) for m in counted.modules())
    assert any(isinstance(m, TokenRoutedMLP) for m in real.modules())
    width = source.zoo_config().expert_intermediate_size
    assert counted.model.layers[0].mlp.gate_proj.weight.shape == (width, source.arch.hidden_size)
    assert sum(p.numel() for p in real.parameters()) == count_params(source.arch).total
    assert next(real.parameters()).device == torch.device("meta")


def test_build_on_cpu_initialises_the_zoo_weights():
    module = resolve("tiny").build("cpu")
    std = module.config.initializer_range
    weight = module.model.layers[0].self_attn.q_proj.weight
    assert abs(weight.std().item() - std) < 0.1 * std
    assert (module.model.norm.weight == 1).all()


def test_build_hf_is_transformers_own_class():
    pytest.importorskip("transformers")
    source = resolve("llama_7b").scaled_down()
    module = source.build("meta")
    assert type(module).__name__ == "LlamaForCausalLM" and not module.training
    assert sum(p.numel() for p in module.parameters()) == count_params(source.arch).total
    with pytest.raises(ValueError, match="device='tpu' must be one of"):
        source.build("tpu")


def test_resolving_imports_no_torch():
    code = ("import sys; from profiler.source import resolve; [resolve(m) for m in ('tiny', 'llama_7b')]; "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
