import pytest
from conftest import MODELS_DIR, SHIPPED, shipped_config

from complexity.config import SIZES, config_for_size
from profiler.arch import SUPPORTED_MODEL_TYPES, from_hf_dict, from_size
from profiler.source import resolve


@pytest.mark.parametrize("size", list(SIZES))
def test_zoo_sizes_map_every_field(size):
    config, arch = config_for_size(size), from_size(size)
    (group,) = arch.layer_groups
    assert arch.num_layers == config.num_hidden_layers and arch.hidden_size == config.hidden_size
    assert group.attention.num_kv_heads == config.num_key_value_heads and group.attention.qk_norm
    assert group.mlp.kind == "token_routed" and group.mlp.experts_per_token == 1
    assert group.mlp.intermediate_size * group.mlp.num_experts == config.intermediate_size
    assert arch.tie_word_embeddings and arch.norm == "rmsnorm"


def test_shipped_configs_describe_their_families():
    arch = {name: resolve(name).arch for name in SHIPPED}
    assert arch["llama_7b"].layer_groups[0].attention.kind == "mha"
    assert arch["mistral_7b"].layer_groups[0].attention.kind == "gqa"
    assert arch["mistral_7b"].layer_groups[0].attention.sliding_window == 4096
    assert arch["mixtral_8x7b"].layer_groups[0].mlp.num_experts == 8
    assert arch["qwen3_0.6b"].layer_groups[0].attention.qk_norm and arch["qwen3_0.6b"].tie_word_embeddings
    dense, moe = arch["deepseek_v3"].layer_groups
    assert (dense.count, moe.count) == (3, 58) and dense.mlp.kind == "dense" and moe.mlp.kind == "moe"
    assert moe.attention.kind == "mla" and moe.mlp.router_bias and moe.mlp.num_shared_experts == 1
    assert arch["gpt2"].norm == "layernorm" and arch["gpt2"].learned_positions == 1024


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_load_in_transformers(name):
    transformers = pytest.importorskip("transformers")
    config = transformers.AutoConfig.from_pretrained(str(MODELS_DIR / f"{name}.json"))
    assert config.model_type == shipped_config(name)["model_type"]


def test_qwen_sliding_window_only_on_layers_past_max_window_layers():
    data = dict(model_type="qwen2", vocab_size=10, hidden_size=8, intermediate_size=8, num_hidden_layers=5,
                num_attention_heads=2, use_sliding_window=True, sliding_window=3, max_window_layers=2)
    groups = from_hf_dict(data).layer_groups
    assert [(g.count, g.attention.sliding_window) for g in groups] == [(2, None), (3, 3)]
    data["use_sliding_window"] = False
    assert [g.attention.sliding_window for g in from_hf_dict(data).layer_groups] == [None]


def test_absent_sliding_window_follows_transformers_defaults():
    mistral = {k: v for k, v in shipped_config("mistral_7b").items() if k != "sliding_window"}
    mixtral = {k: v for k, v in shipped_config("mixtral_8x7b").items() if k != "sliding_window"}
    assert from_hf_dict(mistral).layer_groups[0].attention.sliding_window == 4096
    assert from_hf_dict(mixtral).layer_groups[0].attention.sliding_window is None


def test_unknown_model_type_lists_supported():
    with pytest.raises(ValueError, match="model_type='bert' is not supported") as err:
        from_hf_dict({"model_type": "bert"})
    for model_type in SUPPORTED_MODEL_TYPES:
        assert model_type in str(err.value)


def test_missing_field_is_named():
    data = shipped_config("llama_7b")
    del data["hidden_size"]
    with pytest.raises(ValueError, match="lacks field 'hidden_size'"):
        from_hf_dict(data)


def test_invalid_values_are_rejected():
    data = dict(shipped_config("mixtral_8x7b"), num_experts_per_tok=9)
    with pytest.raises(ValueError, match="experts_per_token=9 must be in \\[1, num_experts=8\\]"):
        from_hf_dict(data)
    with pytest.raises(ValueError, match="num_kv_heads=3 must divide num_heads=32"):
        from_hf_dict(dict(shipped_config("llama_7b"), num_key_value_heads=3))
    with pytest.raises(ValueError, match="must be a JSON object"):
        from_hf_dict([1, 2])


@pytest.mark.parametrize("name", ["tiny", "llama_7b", "qwen3_0.6b", "mistral_7b", "deepseek_v3"])
def test_attention_weight_shapes_are_the_real_modules_tensors(name):
    """AttentionSpec.weight_shapes names and shapes every tensor of the layer's attention as transformers (or the
    zoo) stores it; the parameter, FLOP and optimizer formulas all read it."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    source = resolve(name) if name == "tiny" else resolve(name).scaled_down()
    module = source.build("meta")
    attention = module.model.layers[0].self_attn
    real = {n.removesuffix(".weight"): tuple(p.shape) for n, p in attention.named_parameters()}
    group = source.arch.layer_groups[0]
    assert group.attention.weight_shapes(source.arch.hidden_size) == real
