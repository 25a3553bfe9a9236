"""Packing architectures into the zero-padded array the formulas read, and back."""

import numpy as np

from simulator import DEFAULT_CONFIG, pack, simulate_many
from simulator.architecture import check_packed, unpack
from simulator.bench import random_packed


def test_pack_layout_and_round_trip():
    archs = [[[64, 128], [512]], ([2048] * 5,) * 5, [(100,)]]
    widths = pack(archs, DEFAULT_CONFIG)
    assert widths.shape == (3, 5, 5) and widths.dtype == np.int64
    assert widths[0].tolist() == [[64, 128, 0, 0, 0], [512, 0, 0, 0, 0]] + [[0] * 5] * 3
    assert [unpack(w) for w in widths] == [((64, 128), (512,)), ((2048,) * 5,) * 5, ((100,),)]


def test_numpy_integers_are_widths():
    assert pack([[[np.int32(64), np.int64(70)]]], DEFAULT_CONFIG)[0, 0, :2].tolist() == [64, 70]


def test_narrow_packed_arrays_are_padded():
    narrow = np.array([[[64, 128], [512, 0]]], dtype=np.int16)
    assert np.array_equal(check_packed(narrow, DEFAULT_CONFIG), pack([[[64, 128], [512]]], DEFAULT_CONFIG))
    assert simulate_many(narrow, 5)[0] == simulate_many([[[64, 128], [512]]], 5)[0]


def test_random_architectures_are_valid_and_span_the_ranges():
    widths = random_packed(2000, np.random.default_rng(0))
    assert np.array_equal(check_packed(widths, DEFAULT_CONFIG), widths)
    counts = (widths[:, :, 0] > 0).sum(axis=1)
    depths = (widths > 0).sum(axis=2)
    assert set(counts.tolist()) == {1, 2, 3, 4, 5} and set(depths[depths > 0].tolist()) == {1, 2, 3, 4, 5}
    assert widths[widths > 0].min() == 64 and widths.max() == 2048
