"""DEFAULT_CONFIG holds seed 000's constants; overrides (replace, JSON) are validated as a whole."""

import dataclasses
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import DEFAULT_CONFIG, SimulatorConfig, config_from_dict, load_config, simulate
from simulator.config import CURVE_KEYS, CURVE_NAMES, MODIFIER_KEYS


def test_defaults_are_the_seeds_constants():
    c = DEFAULT_CONFIG
    assert (c.MAX_TRAINING_DAYS, c.INPUT_DIMENSIONS, c.OUTPUT_DIMENSIONS) == (60, 512, 10)
    assert (c.MACHINE_EFFICIENCY, c.MIN_QPS, c.QPS_MODEL_MIN_FLOPS, c.QPS_MODEL_MAX_FLOPS) == (2.5e12, 500, 5e7, 5e9)
    assert (c.DEPTH_RANGE, c.FLAX_RANGE, c.MIN_SUBARCHES, c.MAX_SUBARCHES) == ((1, 5), (64, 2048), 1, 5)
    assert c.SMALL_NETWORK == ((64,),)
    assert c.MEDIUM_NETWORK == ((64, 64), (512, 512), (1024, 1024), (1024, 1024), (1024, 1024))
    assert c.LARGE_NETWORK == ((2048, 2048),) * 5
    assert (c.GLOBAL_NOISE_SCALE, c.NOISE_TRAINING_FACTOR_MIN, c.NOISE_TRAINING_FACTOR_MAX) == (0.02, 0.01, 0.7)
    assert (c.MIN_PERFORMANCE, c.MAX_PERFORMANCE) == (0.0, 1.0)
    assert [dataclasses.astuple(row) for row in c.NETWORK_MODIFIERS] == [
        (0.2, 0.2, 1.0, 0.1, 0.1), (0.4, 0.2, 0.7, 0.0, 0.05), (0.1, 0.1, 0.6, 0.4, 0.05),
        (0.2, 0.4, 0.7, 0.3, 0.05), (0.1, 0.1, 0.9, 0.1, 0.1)]
    assert {k: dataclasses.astuple(v) for k, v in c.NE_CURVES.items()} == {
        "small": (0.62, 0.04, 10, 0.2), "medium": (0.65, 0.16, 8, 0.3), "large": (0.68, 0.20, 8, 0.3)}


def test_config_is_read_only():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_CONFIG.MIN_QPS = 1
    with pytest.raises(TypeError):
        DEFAULT_CONFIG.NE_CURVES["small"] = None


def test_override_with_replace():
    short = dataclasses.replace(DEFAULT_CONFIG, MAX_TRAINING_DAYS=30, MACHINE_EFFICIENCY=5e12)
    assert simulate([[64, 128]], 30, config=short).ne == simulate([[64, 128]], 60).ne
    assert simulate([[64]], 30, config=short).qps == 100_000  # twice the operations per second
    assert simulate([[64]], 30).qps == 50_000  # the default is untouched


def test_json_file_overrides_some_constants(tmp_path):
    path = tmp_path / "sim.json"
    path.write_text(json.dumps({"MIN_QPS": 1000, "FLAX_RANGE": [32, 2048], "SMALL_NETWORK": [[32]],
                                "MEDIUM_NETWORK": [[512, 512]], "LARGE_NETWORK": [[2048, 2048]],
                                "NETWORK_MODIFIERS": [{"ne": 1, "qps": 1, "flops": 1, "flax": 0, "depth": 0}]}))
    config = load_config(path)
    assert config.MIN_QPS == 1000 and config.FLAX_RANGE == (32, 2048) and config.MAX_SUBARCHES == 1
    assert config.MAX_TRAINING_DAYS == 60 and config.SMALL_NETWORK == ((32,),)
    assert simulate([[32]], 5, config=config).complexity_ne == 0
    with pytest.raises(ValueError, match="architecture has 2 sub-architectures; allowed 1..1"):
        simulate([[64], [64]], 5, config=config)


def test_to_dict_round_trips_through_json():
    data = json.loads(json.dumps(DEFAULT_CONFIG.to_dict()))
    assert config_from_dict(data) == DEFAULT_CONFIG
    assert SimulatorConfig() == DEFAULT_CONFIG


@pytest.mark.parametrize("override, message", [
    ({"MAX_TRAINING_DAYS": 0}, "MAX_TRAINING_DAYS=0 must be a finite number > 0"),
    ({"MAX_TRAINING_DAYS": math.nan}, "MAX_TRAINING_DAYS=nan must be a finite number > 0"),
    ({"MAX_TRAINING_DAYS": True}, "MAX_TRAINING_DAYS=True must be a finite number"),
    ({"INPUT_DIMENSIONS": 0}, "INPUT_DIMENSIONS=0 must be an integer in [1, 1048576]"),
    ({"OUTPUT_DIMENSIONS": 10.5}, "OUTPUT_DIMENSIONS=10.5 must be an integer in [1, 1048576]"),
    ({"INPUT_DIMENSIONS": True}, "INPUT_DIMENSIONS=True must be an integer in [1, 1048576]"),
    ({"QPS_MODEL_MAX_FLOPS": 1e7}, "QPS_MODEL_MAX_FLOPS=10000000.0 must be a finite number > QPS_MODEL_MIN_FLOPS=5e+07"),
    ({"MIN_QPS": -1}, "MIN_QPS=-1 must be a finite number >= 0"),
    ({"GLOBAL_NOISE_SCALE": "big"}, "GLOBAL_NOISE_SCALE='big' must be a finite number >= 0"),
    ({"MAX_PERFORMANCE": 0.0}, "MAX_PERFORMANCE=0.0 must be a finite number > MIN_PERFORMANCE=0"),
    ({"DEPTH_RANGE": [5, 1]}, "DEPTH_RANGE=[5, 1] must be [low, high], integers with 1 <= low < high"),
    ({"FLAX_RANGE": [64]}, "FLAX_RANGE=[64] must be [low, high]"),
    ({"MIN_SUBARCHES": 6}, "MIN_SUBARCHES=6 must be an integer in [1, 5] (len(NETWORK_MODIFIERS) = 5)"),
    ({"MIN_SUBARCHES": 0}, "MIN_SUBARCHES=0 must be an integer in [1, 5] (len(NETWORK_MODIFIERS) = 5)"),
    ({"DEPTH_RANGE": [1, True]}, "DEPTH_RANGE=[1, True] must be [low, high], integers with 1 <= low < high"),
    ({"NETWORK_MODIFIERS": []}, "NETWORK_MODIFIERS must be a non-empty list of rows"),
    ({"NETWORK_MODIFIERS": [{"ne": 1}]}, "NETWORK_MODIFIERS[0] must be an object with exactly the keys ne, qps"),
    ({"NETWORK_MODIFIERS": [{"ne": -1, "qps": 1, "flops": 1, "flax": 0, "depth": 0}]},
     "NETWORK_MODIFIERS[0].ne=-1 must be a finite number >= 0"),
    ({"NE_CURVES": {"small": {}}}, "NE_CURVES must be an object with exactly the keys small, medium, large"),
    ({"SMALL_NETWORK": [[32]]}, "SMALL_NETWORK[0][0]=32 is outside FLAX_RANGE"),
    ({"LARGE_NETWORK": [[64]]}, "raw complexity_ne of SMALL_NETWORK, MEDIUM_NETWORK, LARGE_NETWORK must increase"),
    ({"MEDIUM_NETWORK": [[2048, 2048]] * 5}, "must increase strictly"),
    ({"FOO": 1, "BAR": 2}, "unknown simulator config key(s) BAR, FOO; known: MAX_TRAINING_DAYS"),
])
def test_bad_config_values(override, message):
    with pytest.raises(ValueError) as err:
        config_from_dict(override)
    assert message in str(err.value)


def test_bad_config_files(tmp_path):
    (tmp_path / "bad.json").write_text('{"MIN_QPS": ')
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="malformed JSON"):
        load_config(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="must be a JSON object of constants, got list"):
        load_config(tmp_path / "list.json")
    with pytest.raises(ValueError, match="cannot be read"):
        load_config(tmp_path / "missing.json")


@pytest.mark.parametrize("content, message", [
    (b'{"MIN_QPS": 5\xff}', "not UTF-8 text"),
    (b'{"MIN_QPS": NaN}', "malformed JSON (NaN is not a JSON number)"),
    (b'{"MIN_QPS": -Infinity}', "malformed JSON (-Infinity is not a JSON number)"),
    (b'{"MIN_QPS": 1e400}', "MIN_QPS=inf must be a finite number >= 0"),
    (b"[" * 100_000, "malformed JSON"),
])
def test_config_files_that_are_not_strict_json_are_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "sim.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="sim.json") as err:
        load_config(path)
    assert message in str(err.value)


FIELDS = [f.name for f in dataclasses.fields(SimulatorConfig) if f.init]
NUMBERS = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                    st.sampled_from([0, 1, 5, 64, 2048, 0.5, 1e308, -1e308, 1e-320]))
JSON_VALUES = st.recursive(st.one_of(NUMBERS, st.none(), st.text(max_size=3)),
                           lambda children: st.one_of(st.lists(children, max_size=6),
                                                      st.dictionaries(st.sampled_from(MODIFIER_KEYS + CURVE_KEYS
                                                                                      + CURVE_NAMES), children,
                                                                      max_size=6)),
                           max_leaves=40)


def near_default(name: str) -> st.SearchStrategy:
    """A value of field `name`: the default with one number replaced, or anything JSON can hold."""
    default = DEFAULT_CONFIG.to_dict()[name]
    if isinstance(default, list) and default and isinstance(default[0], dict):  # NETWORK_MODIFIERS
        return st.one_of(JSON_VALUES, st.lists(st.fixed_dictionaries({k: NUMBERS for k in MODIFIER_KEYS}),
                                               min_size=1, max_size=6))
    if isinstance(default, dict):  # NE_CURVES
        return st.one_of(JSON_VALUES, st.fixed_dictionaries(
            {curve: st.fixed_dictionaries({k: st.one_of(st.just(default[curve][k]), NUMBERS) for k in CURVE_KEYS})
             for curve in CURVE_NAMES}))
    return st.one_of(JSON_VALUES, NUMBERS, st.lists(NUMBERS, min_size=2, max_size=2))


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(st.lists(st.sampled_from(FIELDS), unique=True, min_size=1, max_size=4).flatmap(
    lambda names: st.fixed_dictionaries({name: near_default(name) for name in names})))
def test_random_config_overrides_are_a_config_or_a_value_error(override):
    """Whatever a JSON config file holds: a valid config whose results are finite, or a ValueError."""
    try:
        config = config_from_dict(override)
    except ValueError:
        return
    for noise in (False, True):
        try:
            result = simulate(config.SMALL_NETWORK, config.MAX_TRAINING_DAYS / 2, noise=noise, seed=0, config=config)
        except ValueError as err:
            assert "out of floating-point range" in str(err)
            continue
        assert all(math.isfinite(v) for v in (result.ne, result.qps, result.ne_without_noise, result.qps_without_noise))
