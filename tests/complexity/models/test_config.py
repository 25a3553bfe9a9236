import json

import pytest

from complexity import SIZES, ComplexityConfig, config_for_size

BAD_VALUES = [
    ("hidden_size", dict(hidden_size=65, head_dim=None), "hidden_size"),
    ("num_key_value_heads", dict(num_key_value_heads=3), "num_key_value_heads"),
    ("vocab_size", dict(vocab_size=0), "vocab_size"),
    ("num_hidden_layers", dict(num_hidden_layers=-1), "num_hidden_layers"),
    ("intermediate_size", dict(intermediate_size=2.5), "intermediate_size"),
    ("sliding_window", dict(sliding_window=0), "sliding_window"),
    ("routing", dict(routing="random"), "routing"),
    ("num_experts", dict(num_experts=3), "num_experts"),
    ("head_dim", dict(head_dim=15), "head_dim"),
    ("rope_theta", dict(rope_theta=-1.0), "rope_theta"),
    ("rms_norm_eps", dict(rms_norm_eps=float("nan")), "rms_norm_eps"),
    ("use_qk_norm", dict(use_qk_norm="yes"), "use_qk_norm"),
    ("eos_token_id", dict(eos_token_id=128), "eos_token_id"),
    ("torch_dtype", dict(torch_dtype="int8"), "torch_dtype"),
    ("num_attention_heads bool", dict(num_attention_heads=True), "num_attention_heads"),
]


@pytest.mark.parametrize("field,overrides,name", BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_each_bad_value_raises_naming_the_field(make_config, field, overrides, name):
    with pytest.raises(ValueError, match=name):
        make_config(**overrides)


@pytest.mark.parametrize("overrides, message", [
    (dict(num_hidden_layers=0), r"num_hidden_layers=0 must be an integer >= 1"),
    (dict(sliding_window=0), r"sliding_window=0 must be an integer >= 1 \(or null"),
    (dict(eos_token_id=128), r"eos_token_id=128 must be an integer in \[0, 127\] \(an id below vocab_size=128"),
    (dict(rope_theta=0.0), r"rope_theta=0.0 must be a finite number > 0"),
])
def test_messages_give_the_allowed_range(make_config, overrides, message):
    with pytest.raises(ValueError, match=message):
        make_config(**overrides)


def test_json_round_trip_is_hf_style(make_config, tmp_path):
    config = make_config(sliding_window=8, routing="modulo", eos_token_id=2)
    data = json.loads(config.to_json_string())
    assert data["model_type"] == "complexity" and data["architectures"] == ["ComplexityForCausalLM"]
    path = tmp_path / "config.json"
    path.write_text(config.to_json_string())
    assert ComplexityConfig.from_json_file(path) == config


def test_from_dict_rejects_unknown_fields_wrong_type_and_bad_json(tmp_path):
    with pytest.raises(ValueError, match="hiden_size"):
        ComplexityConfig.from_dict({"hiden_size": 64})
    with pytest.raises(ValueError, match="model_type"):
        ComplexityConfig.from_dict({"model_type": "llama"})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        ComplexityConfig.from_json_file(bad)


def test_sizes_by_name():
    assert set(SIZES) == {"tiny", "20m", "small", "base", "medium", "large", "1b"}
    assert config_for_size("base", sliding_window=128).sliding_window == 128
    with pytest.raises(ValueError, match="size"):
        config_for_size("huge")
