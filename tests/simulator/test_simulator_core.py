"""simulate / simulate_many against values worked out by hand from seed 000's formulas (issue 6's reading)."""

import dataclasses
import math

import numpy as np
import pytest

from simulator import DEFAULT_CONFIG, pack, simulate, simulate_many

# ---- by hand: parameters of a tower 512 -> widths -> 10, Σ(prev·cur + cur) ----
P_MIN = 512 * 64 + 64 + 64 * 10 + 10                                               # [64]: 33,482
P_MAX = 512 * 2048 + 2048 + 4 * (2048 * 2048 + 2048) + 2048 * 10 + 10              # [2048]*5: 17,856,522
P_2048x2 = 512 * 2048 + 2048 + 2048 * 2048 + 2048 + 2048 * 10 + 10                 # 5,267,466
P_1024x2 = 512 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10                 # 1,585,162
P_512x2 = 512 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10                        # 530,442
P_64x2 = 512 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10                               # 37,642
P_512 = 512 * 512 + 512 + 512 * 10 + 10                                            # 267,786


def d_flops(p):
    return (p - P_MIN) / (P_MAX - P_MIN)


def d_flax(w):
    return (w - 64) / (2048 - 64)


# NETWORK_MODIFIERS rows (λ_ne, λ_qps, λ_flops, λ_flax, λ_depth), copied from the seed's table
ROWS = [(0.2, 0.2, 1.0, 0.1, 0.1), (0.4, 0.2, 0.7, 0.0, 0.05), (0.1, 0.1, 0.6, 0.4, 0.05),
        (0.2, 0.4, 0.7, 0.3, 0.05), (0.1, 0.1, 0.9, 0.1, 0.1)]


def term_ne(row, dfl, dfx, ddp):
    ne, _, lf, lx, ld = ROWS[row]
    return ne * (dfl * lf + dfx * lx + ddp * ld)


# LARGE: five [2048, 2048] -> Δ_flax = 1, Δ_depth = 1/4
RAW_NE_LARGE = sum(term_ne(i, d_flops(P_2048x2), 1.0, 0.25) for i in range(5))
RAW_QPS_LARGE = (0.2 + 0.2 + 0.1 + 0.4 + 0.1) * d_flops(P_2048x2)
# MEDIUM: [64,64], [512,512], [1024,1024] x 3
RAW_NE_MEDIUM = (term_ne(0, d_flops(P_64x2), 0.0, 0.25) + term_ne(1, d_flops(P_512x2), d_flax(512), 0.25)
                 + sum(term_ne(i, d_flops(P_1024x2), d_flax(1024), 0.25) for i in (2, 3, 4)))
RAW_QPS_MEDIUM = 0.2 * d_flops(P_64x2) + 0.2 * d_flops(P_512x2) + (0.1 + 0.4 + 0.1) * d_flops(P_1024x2)
C_M = RAW_NE_MEDIUM / RAW_NE_LARGE  # SMALL's raw complexities are 0


def small(t):
    return 0.62 - 0.04 / (1 + math.exp(-10 * (t - 0.2)))


def medium(t):
    return 0.65 - 0.16 / (1 + math.exp(-8 * (t - 0.3)))


def large(t):
    return 0.68 - 0.20 / (1 + math.exp(-8 * (t - 0.3)))


def qps_of(scaled):
    return 2.5e12 / (5e7 + scaled * (5e9 - 5e7))


MEDIUM_ARCH = [[64, 64], [512, 512], [1024, 1024], [1024, 1024], [1024, 1024]]


def test_hand_computed_parameter_counts():
    assert (P_MIN, P_MAX, P_2048x2, P_1024x2) == (33_482, 17_856_522, 5_267_466, 1_585_162)
    assert simulate(MEDIUM_ARCH, 10).params == (P_64x2, P_512x2, P_1024x2, P_1024x2, P_1024x2)
    assert DEFAULT_CONFIG.references.params_min == P_MIN and DEFAULT_CONFIG.references.params_max == P_MAX


def test_small_network_is_zero_and_50000_qps():
    r = simulate([[64]], 60)
    assert r.complexity_ne_raw == 0 and r.complexity_qps_raw == 0
    assert r.complexity_ne == 0 and r.complexity_qps == 0 and r.qps == 50_000
    assert r.ne == pytest.approx(small(1.0), rel=1e-14)
    assert not (r.complexity_ne_clipped or r.complexity_qps_clipped)


def test_large_network_is_one_and_500_qps():
    r = simulate([[2048, 2048]] * 5, 60)
    assert r.complexity_ne_raw == pytest.approx(RAW_NE_LARGE, rel=1e-14)
    assert r.complexity_qps_raw == pytest.approx(RAW_QPS_LARGE, rel=1e-14)
    assert r.complexity_ne == 1 and r.complexity_qps == 1 and r.qps == 500
    assert r.ne == pytest.approx(large(1.0), rel=1e-14)


def test_medium_network_where_defined():
    r = simulate(MEDIUM_ARCH, 30)
    assert r.complexity_ne == pytest.approx(C_M, rel=1e-13)
    assert 0.27 < C_M < 0.28  # medium sits at 0.2755 of the SMALL..LARGE NE scale
    assert r.complexity_qps == pytest.approx(RAW_QPS_MEDIUM / RAW_QPS_LARGE, rel=1e-13)
    assert r.ne == pytest.approx(medium(0.5), rel=1e-14)  # c = c_m: exactly the medium curve
    assert r.qps == pytest.approx(qps_of(RAW_QPS_MEDIUM / RAW_QPS_LARGE), rel=1e-13)


def test_below_medium_by_hand():
    """[[64, 64], [512]] after 30 days: between the small and medium curves."""
    raw_ne = term_ne(0, d_flops(P_64x2), 0.0, 0.25) + term_ne(1, d_flops(P_512), d_flax(512), 0.0)
    raw_qps = 0.2 * d_flops(P_64x2) + 0.2 * d_flops(P_512)
    c = raw_ne / RAW_NE_LARGE
    r = simulate([[64, 64], [512]], 30)
    assert r.params == (37_642, 267_786) and r.training_sufficiency == 0.5
    assert r.complexity_ne_raw == pytest.approx(raw_ne, rel=1e-13)
    assert r.complexity_ne == pytest.approx(c, rel=1e-13)
    assert r.ne == pytest.approx(small(0.5) + c / C_M * (medium(0.5) - small(0.5)), rel=1e-13)
    assert r.qps == pytest.approx(qps_of(raw_qps / RAW_QPS_LARGE), rel=1e-13)
    assert r.ne == pytest.approx(0.5763649281826977, rel=1e-12) and r.qps == pytest.approx(26_286.7087, rel=1e-9)


def test_above_medium_by_hand():
    """Four of LARGE's five sub-architectures after 15 days: between the medium and large curves."""
    raw_ne = RAW_NE_LARGE - term_ne(4, d_flops(P_2048x2), 1.0, 0.25)
    c = raw_ne / RAW_NE_LARGE
    r = simulate([[2048, 2048]] * 4, 15)
    t = 0.25
    assert C_M < c < 1 and r.complexity_ne == pytest.approx(c, rel=1e-13)
    assert r.ne == pytest.approx(medium(t) + (c - C_M) / (1 - C_M) * (large(t) - medium(t)), rel=1e-13)
    assert r.complexity_qps == pytest.approx(0.9, rel=1e-13)  # λ_qps of rows 0..3 sum to 0.9 of LARGE's 1.0
    assert r.qps == pytest.approx(qps_of(0.9), rel=1e-13)


def test_beyond_large_is_clipped_and_reported():
    r = simulate([[2048] * 5] * 5, 60)
    assert r.complexity_ne_raw > RAW_NE_LARGE and r.complexity_qps_raw == pytest.approx(1.0, rel=1e-14)
    assert r.complexity_ne == 1 and r.complexity_qps == 1
    assert r.complexity_ne_clipped and r.complexity_qps_clipped
    assert r.qps == 500 and r.ne == pytest.approx(large(1.0), rel=1e-14)


@pytest.mark.parametrize("arch", [[[64]], MEDIUM_ARCH, [[2048, 2048]] * 5, [[64, 64], [512]], [[100, 2000, 64]]])
def test_ne_falls_with_training_then_plateaus_after_max_days(arch):
    days = np.linspace(0, 60, 61)
    ne = simulate_many([arch] * len(days), days).ne
    assert np.all(np.diff(ne) < 0)
    after = [simulate(arch, d).ne for d in (60, 61, 90, 1e6)]
    assert after == [ne[-1]] * 4
    assert simulate(arch, 90).training_sufficiency == 1.0


def test_noise_is_reproducible_by_seed():
    arch = [[64, 64], [512]]
    a, b = simulate(arch, 12, noise=True, seed=7), simulate(arch, 12, noise=True, seed=7)
    assert a == b and a.noise and a.ne != a.ne_without_noise
    assert simulate(arch, 12, noise=True, seed=8).ne != a.ne
    batch1, batch2 = simulate_many([arch] * 50, 12, noise=True, seed=3), simulate_many([arch] * 50, 12, True, 3)
    assert np.array_equal(batch1.ne, batch2.ne) and np.array_equal(batch1.qps, batch2.qps)


def test_noise_mean_and_spread_match_the_formula():
    arch, n = [[64, 64], [512]], 20_000
    batch = simulate_many([arch] * n, 0, noise=True, seed=2026)
    sigma = 0.02 * (0.01 + 0.7 * (1 - 0))  # t = 0: the largest noise
    ne0, qps0 = simulate(arch, 0).ne, simulate(arch, 0).qps
    assert np.all(batch.noise_scale == pytest.approx(sigma, rel=1e-15))
    assert abs(batch.ne.mean() - ne0) < 4 * sigma / math.sqrt(n)
    assert batch.ne.std() == pytest.approx(sigma, rel=0.03)
    assert abs(batch.qps.mean() - qps0) < 4 * qps0 * sigma / math.sqrt(n)
    assert batch.qps.std() == pytest.approx(qps0 * sigma, rel=0.03)
    trained = simulate_many([arch] * n, 60, noise=True, seed=2026)
    assert trained.ne.std() == pytest.approx(0.02 * 0.01, rel=0.03)


def test_noise_bounds_floor_qps_and_clip_ne():
    config = dataclasses.replace(DEFAULT_CONFIG, GLOBAL_NOISE_SCALE=5.0)
    batch = simulate_many([[[2048, 2048]] * 5] * 2000, 0, noise=True, seed=1, config=config)
    assert batch.qps.min() == 500 and batch.ne.min() == 0 and batch.ne.max() == 1


def random_architectures(rng, n):
    return [[rng.integers(64, 2049, rng.integers(1, 6)).tolist() for _ in range(rng.integers(1, 6))]
            for _ in range(n)]


def test_simulate_many_equals_simulate_bit_for_bit():
    rng = np.random.default_rng(11)
    archs = random_architectures(rng, 300)
    days = rng.uniform(0, 90, len(archs))
    batch = simulate_many(archs, days)
    assert len(batch) == 300
    assert all(batch[n] == simulate(a, float(d)) for n, (a, d) in enumerate(zip(archs, days)))
    packed = simulate_many(pack(archs, DEFAULT_CONFIG), days)
    assert all(packed[n] == batch[n] for n in range(len(archs)))


def test_simulate_many_with_noise_equals_simulate_drawing_from_one_generator():
    """Documented mapping: architecture n uses draws 2n (NE) and 2n + 1 (QPS) of default_rng(seed)."""
    rng = np.random.default_rng(5)
    archs = random_architectures(rng, 100)
    batch = simulate_many(archs, 20, noise=True, seed=42)
    gen = np.random.default_rng(42)
    assert [simulate(a, 20, noise=True, seed=gen) for a in archs] == list(batch)
    assert simulate(archs[0], 20, noise=True, seed=42) == batch[0]


def test_results_round_trip_through_dict():
    r = simulate([[64, 64], [512]], 30, noise=True, seed=0)
    d = r.to_dict()
    assert d["architecture"] == [[64, 64], [512]] and d["params"] == [37_642, 267_786]
    assert set(d) == {f.name for f in dataclasses.fields(r)}


def test_empty_batch():
    assert len(simulate_many([], 3)) == 0


@pytest.mark.parametrize("arch, message", [
    ([], "architecture has 0 sub-architectures; allowed 1..5"),
    ([[64]] * 6, "architecture has 6 sub-architectures; allowed 1..5"),
    ([[]], "architecture[0] has 0 layers; allowed 1..5 (DEPTH_RANGE)"),
    ([[64], [64] * 6], "architecture[1] has 6 layers; allowed 1..5"),
    ([[64, 63]], "architecture[0][1]=63 is outside FLAX_RANGE: a width must be an integer in [64, 2048]"),
    ([[2049]], "architecture[0][0]=2049 is outside FLAX_RANGE"),
    ([[-64]], "architecture[0][0]=-64 is outside FLAX_RANGE"),
    ([[0]], "architecture[0][0]=0 is outside FLAX_RANGE"),
    ([[64, 64.0]], "architecture[0][1]=64.0 must be an integer width in [64, 2048]"),
    ([[64, True]], "architecture[0][1]=True must be an integer width"),
    ([[np.float32(64)]], "must be an integer width"),
    ([["64"]], "architecture[0][0]='64' must be an integer width"),
    ([64], "architecture[0] must be a list of layer widths, got int"),
    ("[[64]]", "architecture must be a list of sub-architectures"),
    ([[2 ** 70]], "does not fit in 64 bits"),
])
def test_bad_architecture(arch, message):
    with pytest.raises(ValueError) as err:
        simulate(arch, 10)
    assert message in str(err.value)


@pytest.mark.parametrize("days", [-1, -0.001, math.nan, math.inf, "3", True, None])
def test_bad_days(days):
    with pytest.raises(ValueError, match=r"training_days=.* must be a finite number of days >= 0"):
        simulate([[64]], days)


def test_bad_days_in_a_batch():
    with pytest.raises(ValueError, match=r"training_days\[2\]=nan must be a finite number of days >= 0"):
        simulate_many([[[64]]] * 3, [1, 2, math.nan])
    for days in ([1, 2], [True, False, True], [1j, 2, 3]):
        with pytest.raises(ValueError, match="one number or a list of 3 numbers"):
            simulate_many([[[64]]] * 3, days)
    with pytest.raises(ValueError, match=r"architectures\[1\]\[0\]\[0\]=9 is outside FLAX_RANGE"):
        simulate_many([[[64]], [[9]]], 1)


@pytest.mark.parametrize("packed, message", [
    (np.array([[[64, 64]]], dtype=float), "must be an integer numpy array"),
    (np.array([[64, 64]]), "must be an integer numpy array"),
    (np.full((1, 6, 1), 64), "at most 5 sub-architectures"),
    (np.full((1, 1, 6), 64), "of at most 5 layers"),
    (np.array([[[64, 0, 64]]]), "architectures[0][0][1] is 0 (no layer) but layer 2 follows"),
    (np.array([[[64]], [[0]]]), "architectures[1] has 0 sub-architectures; allowed 1..5"),
    (np.array([[[0], [64]]]), "architectures[0][0] is empty but sub-architecture 1 follows"),
    (np.array([[[64], [3000]]]), "architectures[0][1][0]=3000 is outside FLAX_RANGE"),
])
def test_bad_packed_architectures(packed, message):
    with pytest.raises(ValueError) as err:
        simulate_many(packed, 1)
    assert message in str(err.value)


def test_config_must_be_a_simulator_config():
    with pytest.raises(ValueError, match="config must be a SimulatorConfig"):
        simulate([[64]], 1, config={"MIN_QPS": 1})
