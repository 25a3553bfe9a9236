import pytest
from profiler_testing import MODELS_DIR, SHIPPED, shipped_config

from complexity.config import SIZES, config_for_size
from profiler.arch import NORM_POSITIONS, SUPPORTED_MODEL_TYPES, detect_model_type, from_hf_dict, from_size
from profiler.formulas.params import count_params, router_bias_params
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


@pytest.mark.parametrize("name", ["tiny", "llama_7b", "qwen3_0.6b", "mistral_7b", "deepseek_v3", "gemma2_2b",
                                  "gemma3_1b", "phi3_mini_4k", "qwen1.5_moe_a2.7b", "qwen3_30b_a3b", "olmoe_1b_7b",
                                  "olmo2_1b", "deepseek_v2_lite", "granite_3.0_2b", "starcoder2_3b"])
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


def test_new_families_describe_their_structure():
    arch = {name: resolve(name).arch for name in SHIPPED}
    gemma2 = arch["gemma2_2b"]
    assert [(g.count, g.attention.sliding_window) for g in gemma2.layer_groups] == [(1, 4096), (1, None)] * 13
    assert gemma2.norm_positions == NORM_POSITIONS and gemma2.final_logit_softcap == 30.0
    assert gemma2.layer_groups[0].attention.logit_softcap == 50.0 and gemma2.embedding_scale == 2304 ** 0.5
    gemma3 = arch["gemma3_1b"]  # sliding_window_pattern 6: five local layers, then a global one
    assert [(g.count, g.attention.sliding_window) for g in gemma3.layer_groups] == [(5, 512), (1, None)] * 4 + [(2, 512)]
    assert gemma3.layer_groups[0].attention.qk_norm and gemma3.layer_groups[0].attention.head_dim == 256
    phi3 = arch["phi3_mini_4k"].layer_groups[0]
    assert phi3.attention.fused_qkv and phi3.mlp.fused_gate_up and phi3.attention.sliding_window == 2047
    qwen2_moe = arch["qwen1.5_moe_a2.7b"].layer_groups[0].mlp
    assert qwen2_moe.shared_expert_gate and qwen2_moe.num_shared_experts == 1 and qwen2_moe.num_experts == 60
    olmo2, olmoe = arch["olmo2_1b"], arch["olmoe_1b_7b"]
    assert olmo2.norm_positions == ("attention_out", "mlp_out")
    assert olmo2.layer_groups[0].attention.weight_shapes(2048)["q_norm"] == (2048,)
    assert olmoe.layer_groups[0].attention.qk_norm_scope == "full" and olmoe.layer_groups[0].mlp.num_experts == 64
    dense, moe = arch["deepseek_v2_lite"].layer_groups
    assert (dense.count, moe.count) == (1, 26) and moe.attention.q_lora_rank is None and not moe.mlp.router_bias
    falcon = arch["falcon_7b"]
    assert falcon.layer_groups[0].attention.kind == "mqa" and falcon.shared_input_norm and falcon.norm == "layernorm"
    pythia = arch["pythia_1b"]
    assert pythia.parallel_block and pythia.layer_groups[0].attention.rope_width == 64  # 0.25 of head_dim 256
    assert arch["granite_3.0_2b"].logit_scale == 1 / 8 and arch["granite_3.0_2b"].residual_scale == 0.22
    starcoder2 = arch["starcoder2_3b"].layer_groups[0]
    assert not starcoder2.mlp.gated and starcoder2.mlp.bias and starcoder2.attention.sliding_window == 4096


def test_qwen_moe_sparse_step_and_mlp_only_layers():
    data = dict(shipped_config("qwen3_30b_a3b"), num_hidden_layers=6, decoder_sparse_step=2, mlp_only_layers=[3])
    kinds = [(g.count, g.mlp.kind) for g in from_hf_dict(data).layer_groups]
    assert kinds == [(1, "dense"), (1, "moe"), (3, "dense"), (1, "moe")]  # moe where (i + 1) % 2 == 0, not 3


def test_deepseek_v2_moe_layer_freq_and_first_dense():
    data = dict(shipped_config("deepseek_v2_lite"), num_hidden_layers=6, first_k_dense_replace=2, moe_layer_freq=2)
    kinds = [(g.count, g.mlp.kind) for g in from_hf_dict(data).layer_groups]
    assert kinds == [(2, "dense"), (1, "moe"), (1, "dense"), (1, "moe"), (1, "dense")]


def test_mla_attention_bias_is_on_the_input_projections(hf_meta_count):
    """attention_bias gives q_a_proj, kv_a_proj_with_mqa and o_proj biases in transformers, never q_proj."""
    for name, q_lora in (("deepseek_v3", 1536), ("deepseek_v2_lite", None)):
        config = dict(shipped_config(name), attention_bias=True, num_hidden_layers=2, q_lora_rank=q_lora)
        shapes = from_hf_dict(config).layer_groups[0].attention.weight_shapes(config["hidden_size"])
        biased = {n for n in shapes if n.endswith(".bias")}
        assert biased == ({"q_a_proj.bias"} if q_lora else set()) | {"kv_a_proj_with_mqa.bias", "o_proj.bias"}
        arch = from_hf_dict(config)
        assert count_params(arch).total - router_bias_params(arch) == hf_meta_count(config)


def test_falcon_decoder_architectures():
    base = shipped_config("falcon_7b")
    old_sequential = from_hf_dict(dict(base, parallel_attn=False))
    assert old_sequential.norm_positions == ("attention_in", "mlp_in") and not old_sequential.parallel_block
    new = from_hf_dict(dict(base, new_decoder_architecture=True, num_kv_heads=8, num_attention_heads=64,
                            hidden_size=8192))
    assert new.norm_positions == ("attention_in", "mlp_in") and new.parallel_block and not new.shared_input_norm
    assert new.layer_groups[0].attention.num_kv_heads == 8 and new.distinct_norm_inputs == 1
    with pytest.raises(ValueError, match="parallel_attn=false is not supported with new_decoder_architecture"):
        from_hf_dict(dict(base, new_decoder_architecture=True, parallel_attn=False))
    assert from_hf_dict(dict(base, alibi=True)).layer_groups[0].attention.rope_width == 0


def test_architectures_detect_an_ambiguous_model_type():
    data = dict(shipped_config("falcon_7b"), model_type="RefinedWebModel")
    assert detect_model_type(data) == "falcon" and from_hf_dict(data).model_type == "falcon"
    gemma3 = dict(shipped_config("gemma3_1b"))
    del gemma3["model_type"]
    assert from_hf_dict(gemma3).model_type == "gemma3_text"
    with pytest.raises(ValueError, match="model_type='RefinedWeb' is not supported; supported: .*'starcoder2'"):
        from_hf_dict(dict(shipped_config("falcon_7b"), model_type="RefinedWeb", architectures=["RWForCausalLM"]))


@pytest.mark.parametrize("name, field, value, message", [
    ("llama_7b", "hidden_size", True, "hidden_size=True must be an integer in \\[1, 2147483647\\]"),
    ("llama_7b", "hidden_size", "4096", "hidden_size='4096' must be an integer in \\[1, 2147483647\\]"),
    ("llama_7b", "num_hidden_layers", 32.0, "num_hidden_layers=32.0 must be an integer in \\[1, 10000\\]"),
    ("llama_7b", "num_hidden_layers", 10**30, f"num_hidden_layers={10**30} must be an integer in \\[1, 10000\\]"),
    ("llama_7b", "hidden_size", 2**31, "hidden_size=2147483648 must be an integer in \\[1, 2147483647\\]"),
    ("qwen3_0.6b", "head_dim", 0, "head_dim=0 must be an integer in \\[1, 2147483647\\]"),
    ("gpt2", "n_positions", -1024, "n_positions=-1024 must be an integer in \\[1, 2147483647\\]"),
    ("llama_7b", "num_key_value_heads", 0, "num_key_value_heads=0 must be an integer in \\[1, 2147483647\\]"),
    ("qwen3_0.6b", "tie_word_embeddings", "yes", "tie_word_embeddings='yes' must be true or false"),
    ("llama_7b", "attention_bias", 1, "attention_bias=1 must be true or false"),
    ("gemma2_2b", "attn_logit_softcapping", -50.0, "attn_logit_softcapping=-50.0 must be a finite number > 0"),
    ("pythia_1b", "rotary_pct", 1.5, "rotary_pct=1.5 must be a number in \\(0, 1\\]"),
    ("qwen3_30b_a3b", "mlp_only_layers", [1, "2"], "mlp_only_layers=\\[1, '2'\\] must be a list of integers >= 0"),
])
def test_config_fields_are_typed(name, field, value, message):
    with pytest.raises(ValueError, match=f"^config.json field {message}") as err:
        from_hf_dict(dict(shipped_config(name), **{field: value}))
    assert "\n" not in str(err.value)


def test_layer_types_must_match_the_layers():
    data = dict(shipped_config("gemma2_2b"), layer_types=["sliding_attention", "full_attention"])
    with pytest.raises(ValueError, match="layer_types has 2 entries but num_hidden_layers=26"):
        from_hf_dict(data)
    data["layer_types"] = ["sliding_attention"] * 25 + ["chunked_attention"]
    with pytest.raises(ValueError, match="layer_types\\[25\\]='chunked_attention' must be one of "
                                         "\\['full_attention', 'sliding_attention'\\]"):
        from_hf_dict(data)
    data["layer_types"] = ["full_attention"] * 26  # given types override the family's default pattern
    assert [g.count for g in from_hf_dict(data).layer_groups] == [26]


def test_dropout_probabilities_and_activations_are_the_configs():
    """Each family's dropout fields and activation as its config (or transformers' default) states them; the zoo
    has no dropout."""
    arch = {name: resolve(name).arch for name in SHIPPED}
    gpt2 = arch["gpt2"]
    assert (gpt2.embedding_dropout, gpt2.attention_dropout, gpt2.residual_dropout) == (0.1, 0.1, 0.1)
    assert gpt2.layer_groups[0].mlp.activation == "gelu_new"
    bare = from_hf_dict({"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 1, "n_positions": 8,
                         "vocab_size": 10, "attn_pdrop": 0.0, "activation_function": "gelu"})
    assert (bare.embedding_dropout, bare.attention_dropout) == (0.1, 0.0)  # GPT2Config's default 0.1 where absent
    assert bare.layer_groups[0].mlp.activation == "gelu"
    starcoder2 = arch["starcoder2_3b"]
    assert (starcoder2.embedding_dropout, starcoder2.attention_dropout, starcoder2.residual_dropout) == (0.1,) * 3
    assert starcoder2.layer_groups[0].mlp.activation == "gelu_pytorch_tanh"
    granite = arch["granite_3.0_2b"]
    assert (granite.embedding_dropout, granite.attention_dropout, granite.residual_dropout) == (0.0, 0.1, 0.0)
    assert {g.mlp.activation for name in ("llama_7b", "mixtral_8x7b", "qwen3_30b_a3b", "deepseek_v3", "olmo2_1b")
            for g in arch[name].layer_groups} == {"silu"}
    assert arch["pythia_1b"].layer_groups[0].mlp.activation == "gelu"
    assert arch["gemma_2b"].layer_groups[0].mlp.activation == "gelu_pytorch_tanh"  # GemmaConfig: legacy "gelu"
    assert arch["gemma2_2b"].layer_groups[0].mlp.activation == "gelu_pytorch_tanh"
    assert from_hf_dict(dict(shipped_config("llama_7b"), hidden_act="gelu")).layer_groups[0].mlp.activation == "gelu"
    for size in SIZES:
        zoo = from_size(size)
        assert (zoo.embedding_dropout, zoo.attention_dropout, zoo.residual_dropout) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("name, field, value", [
    ("gpt2", "resid_pdrop", 1.0), ("gpt2", "embd_pdrop", -0.1), ("starcoder2_3b", "residual_dropout", "0.1"),
    ("falcon_7b", "hidden_dropout", True), ("llama_7b", "attention_dropout", 2),
])
def test_dropout_probabilities_must_be_in_zero_one(name, field, value):
    with pytest.raises(ValueError, match=f"^config.json field {field}={value!r} must be a probability in "
                                         r"\[0, 1\)$"):
        from_hf_dict(dict(shipped_config(name), **{field: value}))
