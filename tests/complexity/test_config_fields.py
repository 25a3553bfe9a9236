"""Config JSON into typed fields: strict ints and bools, complete saved configs, a bounded RoPE table."""

import json

import pytest

from complexity.config import (
    FIELDS_THE_LOGITS_DEPEND_ON,
    MAX_ROPE_TABLE_BYTES,
    ComplexityConfig,
    rope_table_bytes,
)

INT_FIELDS = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "head_dim", "max_position_embeddings", "num_experts", "sliding_window",
              "pad_token_id", "bos_token_id", "eos_token_id"]
BOOL_FIELDS = ["tie_word_embeddings", "use_qk_norm", "use_token_routed_mlp"]
FLOAT_FIELDS = ["rope_theta", "rms_norm_eps", "initializer_range"]
SMALL = dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=256, num_experts=4)


def saved(**overrides) -> dict:
    return {**ComplexityConfig(**SMALL).to_dict(), **overrides}


@pytest.mark.parametrize("field", INT_FIELDS)
@pytest.mark.parametrize("value", ["64", 64.0, True, False, [64], {"v": 64}])
def test_an_int_field_given_another_json_type_is_refused_naming_it(field, value):
    with pytest.raises(ValueError, match=rf"^{field}=.* must be an integer"):
        ComplexityConfig.from_dict(saved(**{field: value}))


@pytest.mark.parametrize("field", BOOL_FIELDS)
@pytest.mark.parametrize("value", ["yes", "true", 1, 0, None, 1.0])
def test_bools_are_only_true_or_false(field, value):
    with pytest.raises(ValueError, match=rf"^{field}=.* must be true or false"):
        ComplexityConfig.from_dict(saved(**{field: value}))


@pytest.mark.parametrize("field", FLOAT_FIELDS)
@pytest.mark.parametrize("value", ["1e4", True, None, float("inf"), float("nan"), 0, -1.0, 10**400, [1.0]])
def test_float_fields_are_finite_positive_numbers(field, value):
    with pytest.raises(ValueError, match=rf"^{field}=.* must be a finite number > 0"):
        ComplexityConfig.from_dict(saved(**{field: value}))


def test_whole_numbers_in_float_fields_become_floats_and_round_trip():
    config = ComplexityConfig.from_dict(saved(rope_theta=500000))
    assert isinstance(config.rope_theta, float) and config.rope_theta == 500000.0
    assert ComplexityConfig.from_dict(json.loads(config.to_json_string()), complete=True) == config


@pytest.mark.parametrize("overrides, message", [
    (dict(head_dim=0), r"head_dim=0 must be an integer >= 1"),
    (dict(num_attention_heads=0), r"num_attention_heads=0 must be an integer >= 1"),
    (dict(num_attention_heads=0, head_dim=None), r"num_attention_heads=0 must be an integer >= 1"),
    (dict(num_key_value_heads=0), r"num_key_value_heads=0 must be an integer >= 1"),
    (dict(hidden_size=0, head_dim=None), r"hidden_size=0 must be an integer >= 1"),
    (dict(eos_token_id=128), r"eos_token_id=128 must be an integer in \[0, 127\]"),
    (dict(pad_token_id=-1), r"pad_token_id=-1"),
    (dict(bos_token_id=10**30), r"bos_token_id="),
    (dict(routing=["range"]), r"routing=\['range'\] is not one of"),
    (dict(torch_dtype=None), r"torch_dtype=None is not one of"),
])
def test_zero_heads_and_out_of_vocabulary_ids_are_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        ComplexityConfig.from_dict(saved(**overrides))


@pytest.mark.parametrize("field", FIELDS_THE_LOGITS_DEPEND_ON)
def test_a_saved_config_must_state_every_field_the_logits_depend_on(field):
    data = saved()
    del data[field]
    with pytest.raises(ValueError, match=rf"lacks field\(s\) \['{field}'\]"):
        ComplexityConfig.from_dict(data, complete=True)
    ComplexityConfig.from_dict(data)  # a partial dict of overrides (not a saved config) takes the default


@pytest.mark.parametrize("field", ["initializer_range", "bos_token_id", "eos_token_id"])
def test_fields_that_do_not_change_the_outputs_may_be_missing(field):
    data = saved()
    del data[field]
    assert ComplexityConfig.from_dict(data, complete=True).to_dict()[field] == ComplexityConfig.__dataclass_fields__[
        field].default


def test_from_json_file_requires_a_complete_config_and_names_the_file(tmp_path):
    path = tmp_path / "config.json"
    data = saved()
    del data["rope_theta"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=rf"^{path}: config lacks field\(s\) \['rope_theta'\]"):
        ComplexityConfig.from_json_file(path)


def test_rope_table_is_capped():
    assert rope_table_bytes(2048, 64) == 2 * 2048 * 64 * 4
    head_dim = 128
    limit = MAX_ROPE_TABLE_BYTES // rope_table_bytes(1, head_dim)
    assert limit == 2**20  # 1 GiB: 1,048,576 positions at head_dim 128
    ComplexityConfig(**{**SMALL, "hidden_size": 512, "head_dim": head_dim, "max_position_embeddings": limit})
    with pytest.raises(ValueError, match=r"max_position_embeddings=10000000 must be an integer in \[1, 1048576\] "
                                         r"\(at head_dim=128 the RoPE table, 2 x positions x head_dim x 4 B, is "
                                         r"capped at 1 GiB\)"):
        ComplexityConfig(**{**SMALL, "hidden_size": 512, "head_dim": head_dim, "max_position_embeddings": 10**7})
    with pytest.raises(ValueError, match="max_position_embeddings"):
        ComplexityConfig(**{**SMALL, "max_position_embeddings": MAX_ROPE_TABLE_BYTES // rope_table_bytes(1, 16) + 1})
    with pytest.raises(ValueError, match="max_position_embeddings"):
        ComplexityConfig(**{**SMALL, "max_position_embeddings": 10**400})
