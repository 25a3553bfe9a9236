"""Workload and the one list of modes each command draws its choices from."""

import pytest

from profiler.cli import build_parser
from profiler.workload import (
    COMPARED_MODES,
    MEASURED_MODES,
    MODES,
    PREDICTED_MODES,
    Workload,
)


def test_every_command_s_modes_come_from_the_one_list():
    assert set(PREDICTED_MODES) | set(MEASURED_MODES) == set(MODES)
    assert set(COMPARED_MODES) == set(PREDICTED_MODES)  # prefill and decode are measured within generate
    parser = build_parser()
    for command, modes in (("predict", PREDICTED_MODES), ("measure", MEASURED_MODES)):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "tiny", "--mode", "backward", "--hardware", "cpu_generic"])
        for mode in modes:
            assert parser.parse_args([command, "tiny", "--mode", mode, "--hardware", "cpu_generic"]).mode == mode


def test_tokens_of_a_step():
    assert Workload("train", 4, 128).tokens == 512 and Workload("decode", 4, 128).tokens == 4


@pytest.mark.parametrize("field,kwargs", [("mode", dict(mode="backward")), ("batch", dict(batch=0)),
                                          ("seq_len", dict(seq_len=2**30)), ("dtype", dict(dtype="int4"))])
def test_bad_workload_names_the_field(field, kwargs):
    args = {"mode": "train", "batch": 1, "seq_len": 8, **kwargs}
    with pytest.raises(ValueError, match=rf"{field}=.* (must be|is not one of)"):
        Workload(**args)
