"""Fuzz the zoo's boundaries: random config dicts and config files, random tensors into forward, random prompts
and settings into generate. The outcome must be success or a ValueError whose message is one line naming what
was wrong; any other exception fails the test. Each test runs its examples itself, counts their outcomes and fails
unless it reached both success and a ValueError (a strategy that never builds a valid input, or never a bad one,
fails rather than passing untested). Derandomized; note that Hypothesis also draws constants from the modules
loaded, so a run of one file and a run of the whole suite may see different examples.
"""

import json
import math
from collections import Counter

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from complexity.config import ComplexityConfig
from complexity.models.modeling import ComplexityForCausalLM

SMALL = dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=32, num_experts=4)
VOCAB, POSITIONS = 128, 32
FUZZ = settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
FUZZ_MODEL = settings(FUZZ, max_examples=80)  # a forward or a generate per example

WILD = st.one_of(
    st.integers(-3, 300), st.integers(-10**30, 10**30), st.just(10**400), st.booleans(), st.none(),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 1.0, 64.0, -0.0, 1e-300]),
    st.text(max_size=6), st.sampled_from(["64", "true", "range", "modulo", "float32", "bfloat16", ""]),
    st.lists(st.integers(0, 4), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)


PLAUSIBLE = st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128, 256, None, True, False, "range", "modulo", "float32",
                             "bfloat16", 0.5, 1e-5, 10000.0])


def mostly(valid, wild=WILD):
    """Draw from `valid` three times in four, else from `wild`: enough valid draws that whole calls succeed."""
    return st.integers(0, 3).flatmap(lambda r: wild if r == 3 else valid)


def expect_value_error_naming(call, names) -> tuple[object, str]:
    """Run `call`: (its result, "success"), or (None, "ValueError") for a ValueError that is one line and names one
    of `names`."""
    try:
        return call(), "success"
    except ValueError as err:
        message = str(err)
        assert "\n" not in message, message
        assert any(name in message for name in names), f"{message!r} names none of {sorted(names)}"
        return None, "ValueError"


def outcomes_of(fuzz: settings, strategy: st.SearchStrategy, run_example) -> Counter:
    """Run `run_example` on each example that `fuzz` draws from `strategy`; count the outcome class each returns
    (run here rather than by pytest, so that the calling test can require every class)."""
    outcomes = Counter()

    @fuzz
    @given(strategy)
    def check(case):
        outcomes[run_example(case)] += 1

    check()
    return outcomes


@st.composite
def config_dicts(draw):
    data = {**ComplexityConfig(**SMALL).to_dict()}
    fields = sorted(k for k in data if k not in ("model_type", "architectures"))
    touched = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique=True))
    for name in touched:
        if draw(st.integers(0, 5)) == 5:
            del data[name]
        else:
            data[name] = draw(mostly(PLAUSIBLE))
    if draw(st.integers(0, 9)) == 0:
        extra = draw(st.text(min_size=1, max_size=5))
        data[extra] = 1
        touched.append(extra)
    return data, touched, draw(st.booleans())


def test_fuzz_config_dicts():
    def run(case) -> str:
        data, touched, complete = case
        config, outcome = expect_value_error_naming(lambda: ComplexityConfig.from_dict(data, complete=complete),
                                                    [*touched, "unknown config field", "lacks field"])
        if config is not None:
            assert ComplexityConfig.from_dict(json.loads(config.to_json_string()), complete=True) == config
            with torch.device("meta"):
                ComplexityForCausalLM(config)  # every accepted config builds
        return outcome

    outcomes = outcomes_of(FUZZ, config_dicts(), run)
    assert set(outcomes) == {"success", "ValueError"}, outcomes


@FUZZ
@given(st.one_of(st.binary(max_size=40), st.text(max_size=40).map(str.encode),
                 st.builds(lambda d: json.dumps(d).encode(), st.dictionaries(st.text(max_size=4), WILD, max_size=3))))
def test_fuzz_config_files(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("cfg") / "config.json"
    path.write_bytes(content)
    # Nothing here is a complete config, so every file is refused with its path in the message (one outcome class,
    # asserted in every example).
    assert expect_value_error_naming(lambda: ComplexityConfig.from_json_file(path), [str(path)]) == (None, "ValueError")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = ComplexityForCausalLM(ComplexityConfig(**SMALL))
    m.init_weights()
    return m.eval()


DTYPES = [torch.int64, torch.int32, torch.int16, torch.uint8, torch.bool, torch.float32, torch.float16,
          torch.float64, torch.complex64]
shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)


@st.composite
def tensors(draw, values, shape=None):
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(shapes) if shape is None or draw(st.integers(0, 4)) == 0 else shape
    flat = draw(st.lists(values, min_size=math.prod(shape), max_size=math.prod(shape)))
    return torch.tensor(flat, dtype=torch.float64).reshape(shape).to(dtype) if dtype.is_complex or \
        dtype.is_floating_point else torch.tensor([int(v) for v in flat]).reshape(shape).to(dtype)


@st.composite
def forward_inputs(draw):
    shape = (draw(mostly(st.integers(1, 3), st.just(0))), draw(mostly(st.integers(1, 5), st.just(0))))
    ids = draw(mostly(
        st.builds(lambda v: torch.tensor(v).reshape(shape) if math.prod(shape) else torch.zeros(shape, dtype=torch.long),
                  st.lists(st.integers(0, VOCAB - 1), min_size=math.prod(shape), max_size=math.prod(shape))),
        tensors(st.integers(-2, VOCAB + 2), shape)))
    mask = draw(st.one_of(st.none(), st.just(torch.ones(shape, dtype=torch.long)),
                          tensors(st.sampled_from([0, 1, 1, 1, 2, -1, 0.5]), shape)))
    labels = draw(st.one_of(st.none(), st.just(ids), tensors(st.sampled_from([0, 5, VOCAB - 1, VOCAB, -100, -1]),
                                                                shape)))
    return ids, mask, labels


def test_fuzz_forward_tensors(model):
    def run(case) -> str:
        ids, mask, labels = case
        out, outcome = expect_value_error_naming(lambda: model(ids, attention_mask=mask, labels=labels),
                                                 ["input_ids", "attention_mask", "labels"])
        if out is not None:
            assert torch.isfinite(out.logits).all()
            assert labels is None or torch.isfinite(out.loss)
        return outcome

    outcomes = outcomes_of(FUZZ_MODEL, forward_inputs(), run)
    assert set(outcomes) == {"success", "ValueError"}, outcomes


@st.composite
def generate_inputs(draw):
    batch, length = draw(st.integers(1, 3)), draw(mostly(st.integers(1, 6), st.just(0)))
    ids = torch.tensor(draw(st.lists(st.integers(0, VOCAB - 1), min_size=batch * length, max_size=batch * length)),
                       dtype=torch.long).reshape(batch, length)
    if length and draw(st.integers(0, 3)) == 3:
        ids[draw(st.integers(0, batch - 1)), draw(st.integers(0, length - 1))] = draw(st.sampled_from([-1, VOCAB]))
    mask = None
    if draw(st.booleans()):
        starts = draw(st.lists(mostly(st.integers(0, max(length - 1, 0)), st.just(length)), min_size=batch,
                               max_size=batch))
        mask = torch.stack([torch.arange(length) >= s for s in starts]).long()  # left padding (rows may be empty)
        if length and draw(st.integers(0, 3)) == 3:
            mask[draw(st.integers(0, batch - 1)), draw(st.integers(0, length - 1))] = draw(
                st.sampled_from([0, 1, 2]))  # may right-pad or break the 0/1 rule
    settings_ = dict(
        max_new_tokens=draw(mostly(st.integers(1, 3), st.one_of(st.integers(-1, 0), st.integers(20, 40), WILD))),
        temperature=draw(mostly(st.sampled_from([0, 0.0, 1.0, 0.7, 1e-4]), st.one_of(st.just(1e-45), WILD))),
        top_k=draw(mostly(st.one_of(st.none(), st.integers(1, 200)), st.one_of(st.integers(-1, 0), WILD))),
        top_p=draw(mostly(st.one_of(st.none(), st.floats(0.01, 1.0)), st.one_of(st.floats(-0.5, 1.5), WILD))),
        eos_token_id=draw(mostly(st.one_of(st.none(), st.integers(0, VOCAB - 1)), st.one_of(st.just(VOCAB), WILD))),
    )
    return ids, mask, settings_


def test_fuzz_generate(model):
    def run(case) -> str:
        ids, mask, kwargs = case
        out, outcome = expect_value_error_naming(
            lambda: model.generate(ids, attention_mask=mask, generator=torch.Generator().manual_seed(0), **kwargs),
            ["input_ids", "attention_mask", *kwargs])
        if out is not None:
            assert out.shape[0] == ids.shape[0]
            assert ids.shape[1] < out.shape[1] <= ids.shape[1] + kwargs["max_new_tokens"]
            assert torch.equal(out[:, :ids.shape[1]], ids) and int(out.min()) >= 0 and int(out.max()) < VOCAB
        return outcome

    outcomes = outcomes_of(FUZZ_MODEL, generate_inputs(), run)
    assert set(outcomes) == {"success", "ValueError"}, outcomes
