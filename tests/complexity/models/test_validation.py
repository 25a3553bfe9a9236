"""Tensors and settings into forward and generate: a clear ValueError naming the argument, or correct behaviour."""

import re

import pytest
import torch

import complexity.models.modeling as modeling
from complexity import ComplexityConfig, ComplexityForCausalLM
from complexity.models.validation import MIN_TEMPERATURE

# The shared tiny config of tests/complexity/conftest.py (not importable by name: several conftest modules exist).
TINY = dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, num_experts=4)


def _model(**overrides) -> ComplexityForCausalLM:
    torch.manual_seed(0)
    model = ComplexityForCausalLM(ComplexityConfig(**{**TINY, **overrides}))
    model.init_weights()
    return model.eval()


@pytest.fixture(scope="module")
def model():
    return _model()


IDS = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bool, torch.uint8, torch.int16, torch.int8])
def test_token_ids_of_a_non_index_dtype_are_refused_naming_dtype_and_allowed(model, dtype):
    with pytest.raises(ValueError, match=rf"input_ids has dtype {dtype}; allowed: torch.int64, torch.int32"):
        model(IDS.to(dtype))
    with pytest.raises(ValueError, match="input_ids has dtype"):
        model.generate(IDS.to(dtype), 2)


def test_int32_ids_give_the_int64_logits(model):
    torch.testing.assert_close(model(IDS.int()).logits, model(IDS).logits, rtol=0, atol=0)


@pytest.mark.parametrize("ids, message", [
    (torch.zeros(2, 0, dtype=torch.long), "empty"),
    (torch.zeros(0, 3, dtype=torch.long), "empty"),
    (torch.zeros(3, dtype=torch.long), r"\[batch, seq\]"),
    (torch.zeros(1, 2, 3, dtype=torch.long), r"\[batch, seq\]"),
    ([[1, 2]], "must be a torch.Tensor"),
])
def test_token_ids_of_a_bad_shape_or_type_are_refused(model, ids, message):
    with pytest.raises(ValueError, match=message):
        model(ids)


@pytest.fixture(scope="module", params=[True, False], ids=["token_routed", "dense"])
def routed_or_dense(request):
    return _model(use_token_routed_mlp=request.param)


@pytest.mark.parametrize("ids, seen", [
    (torch.tensor([[0, 128]]), "[0, 128]"),  # id == vocab_size
    (torch.tensor([[127, 128]]), "[127, 128]"),  # the largest id next to one past it
    (torch.tensor([[-1, 3]]), "[-1, 3]"),  # negative
    (torch.tensor([[5, 10**6]], dtype=torch.int32), "[5, 1000000]"),  # far out, in the other allowed dtype
])
def test_token_ids_outside_the_vocabulary_are_refused(routed_or_dense, ids, seen):
    """Checked at the model's boundary (complexity/models/validation.py), outside compiled graphs, for dense and
    token-routed models alike: the routed MLP's dispatch must not read ids back to the host to check them."""
    message = re.escape(f"input_ids must lie in [0, vocab_size=128), got values in {seen}")
    with pytest.raises(ValueError, match=message):
        routed_or_dense(ids)
    with pytest.raises(ValueError, match=message):
        routed_or_dense.generate(ids, 2)


@pytest.mark.parametrize("value", [2, -1, 0.5, float("nan")])
def test_mask_values_other_than_0_and_1_are_refused(model, value):
    mask = torch.ones(2, 4)
    mask[1, 2] = value
    with pytest.raises(ValueError, match="attention_mask must hold only 0"):
        model(IDS, attention_mask=mask)
    with pytest.raises(ValueError, match="attention_mask must hold only 0"):
        model.generate(IDS, 2, attention_mask=mask)


@pytest.mark.parametrize("dtype", [torch.long, torch.int32, torch.bool, torch.float32, torch.float64])
def test_0_1_masks_of_any_real_dtype_give_the_same_logits(model, dtype):
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    torch.testing.assert_close(model(IDS, attention_mask=mask.to(dtype)).logits,
                               model(IDS, attention_mask=mask).logits, rtol=0, atol=0)


@pytest.mark.parametrize("mask, message", [
    (torch.ones(2, 3), r"attention_mask must be \[batch=2"),
    (torch.ones(1, 4), r"attention_mask must be \[batch=2"),
    (torch.ones(2, 4, 1), r"attention_mask must be \[batch=2"),
    (torch.ones(2, 4, dtype=torch.complex64), "complex64"),
    ("ones", "must be a torch.Tensor"),
])
def test_mask_of_a_wrong_shape_or_type(model, mask, message):
    with pytest.raises(ValueError, match=message):
        model(IDS, attention_mask=mask)


@pytest.mark.parametrize("labels, message", [
    (IDS.float(), "labels has dtype torch.float32; allowed: torch.int64"),
    (IDS.int(), "labels has dtype torch.int32"),
    (IDS[:, :3], "labels shape"),
    (torch.tensor([[1, 2, 3, 128], [5, 6, 7, 8]]), r"labels must lie in \[0, vocab_size=128\) or be -100, found 128"),
    (torch.tensor([[1, 2, 3, -5], [5, 6, 7, 8]]), "found -5"),
    (torch.full((2, 4), -100), "every next-token target"),
    (torch.tensor([[1, -100, -100, -100], [5, -100, -100, -100]]), "every next-token target"),  # only position 0 set
])
def test_bad_labels(model, labels, message):
    with pytest.raises(ValueError, match=message):
        model(IDS, labels=labels)


def test_partly_ignored_labels_give_the_mean_over_the_real_targets(model):
    labels = IDS.clone()
    labels[0, 1:] = -100  # row 0 contributes nothing
    full = model(IDS[1:], labels=IDS[1:]).loss
    torch.testing.assert_close(model(IDS, labels=labels).loss, full)


@pytest.mark.parametrize("kwargs, message", [
    ({"max_new_tokens": 0}, "max_new_tokens=0 must be an integer >= 1"),
    ({"max_new_tokens": 2.0}, "max_new_tokens"),
    ({"max_new_tokens": True}, "max_new_tokens"),
    ({"temperature": 1e-45}, "temperature=1e-45 must be 0 .greedy. or a finite number >= 0.0001"),
    ({"temperature": float("inf")}, "temperature"),
    ({"temperature": float("nan")}, "temperature"),
    ({"temperature": -0.5}, "temperature"),
    ({"temperature": True}, "temperature"),
    ({"temperature": "1"}, "temperature"),
    ({"temperature": 1.0, "top_k": True}, "top_k=True must be an integer >= 1"),
    ({"temperature": 1.0, "top_k": 0}, "top_k"),
    ({"temperature": 1.0, "top_k": 2.0}, "top_k"),
    ({"temperature": 1.0, "top_p": 0}, r"top_p=0 must be a number in \(0, 1\]"),
    ({"temperature": 1.0, "top_p": 1.01}, "top_p"),
    ({"temperature": 1.0, "top_p": float("nan")}, "top_p"),
    ({"temperature": 1.0, "top_p": True}, "top_p"),
    ({"eos_token_id": 128}, r"eos_token_id=128 must be an integer in \[0, 127\]"),
    ({"eos_token_id": -1}, "eos_token_id"),
    ({"eos_token_id": 1.0}, "eos_token_id"),
])
def test_bad_generate_settings(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        model.generate(IDS, **{"max_new_tokens": 2, **kwargs})


def test_smallest_temperature_samples_like_greedy(model):
    got = model.generate(IDS, 4, temperature=MIN_TEMPERATURE, generator=torch.Generator().manual_seed(0))
    assert torch.equal(got, model.generate(IDS, 4))


def test_prompt_plus_new_tokens_past_the_positions_fails_before_generating(monkeypatch):
    short = _model(max_position_embeddings=16)
    assert short.generate(IDS, 12).shape == (2, 16)  # up to the limit: generates
    calls = []
    monkeypatch.setattr(modeling.ComplexityModel, "forward", lambda *a, **k: calls.append(1))
    with pytest.raises(ValueError, match=r"prompt length 4 \+ max_new_tokens=13 = 17 exceeds "
                                         "max_position_embeddings=16"):
        short.generate(IDS, 13)
    assert calls == []  # nothing was computed


def test_generate_refuses_empty_prompts_and_right_padding(model):
    with pytest.raises(ValueError, match="input_ids is empty"):
        model.generate(IDS[:, :0], 2)
    right = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    with pytest.raises(ValueError, match="row 0 has padding after a token: generate needs prompts padded on the left"):
        model.generate(IDS, 2, attention_mask=right)
    middle = torch.tensor([[1, 1, 1, 1], [0, 1, 0, 1]])
    with pytest.raises(ValueError, match="row 1 has padding after a token"):
        model.generate(IDS, 2, attention_mask=middle)
    with pytest.raises(ValueError, match="row 1 is all padding"):
        model.generate(IDS, 2, attention_mask=torch.tensor([[1, 1, 1, 1], [0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="prompt's shape"):
        model.generate(IDS, 2, attention_mask=torch.ones(2, 5))


def test_left_padded_bool_mask_generates_each_row_as_alone(model):
    mask = torch.tensor([[False, False, True, True], [True, True, True, True]])
    together = model.generate(IDS, 5, attention_mask=mask)
    assert torch.equal(together[0, 4:], model.generate(IDS[:1, 2:], 5)[0, 2:])
    assert torch.equal(together[1], model.generate(IDS[1:], 5)[0])


def test_value_checks_are_skipped_while_compiling(model, monkeypatch):
    """The checks read tensors back to the host, so a traced forward must not call them (no graph break)."""
    def refuse(*args, **kwargs):
        raise AssertionError("check_model_inputs ran inside the traced graph")

    one_layer = _model(num_hidden_layers=1, use_token_routed_mlp=False)
    torch._dynamo.reset()
    monkeypatch.setattr(modeling, "check_model_inputs", refuse)
    with pytest.raises(AssertionError):
        one_layer(IDS)  # eager: the checks run
    try:
        torch.compile(one_layer, backend="eager")(IDS)  # traced: they do not
    finally:
        torch._dynamo.reset()


def test_meta_tensors_are_checked_for_dtype_and_shape_only():
    with torch.device("meta"):
        meta = ComplexityForCausalLM(ComplexityConfig(**TINY, use_token_routed_mlp=False))
        assert meta(torch.zeros(2, 4, dtype=torch.long), labels=torch.zeros(2, 4, dtype=torch.long)).logits.shape \
            == (2, 4, 128)
        with pytest.raises(ValueError, match="dtype"):
            meta(torch.zeros(2, 4))
