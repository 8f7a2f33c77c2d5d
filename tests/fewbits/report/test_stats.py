"""Interval arithmetic of the report against numbers computed by hand (t and z quantiles from tables)."""

from __future__ import annotations

import math

import pytest

from fewbits.report import stats as S

T975_2 = 4.302652729749464  # Student t, 97.5 % quantile, 2 degrees of freedom
T95_2, T95_3, T95_4 = 2.919985580355516, 2.3533634348018264, 2.131846786326649
Z975 = 1.959963984540054


def test_three_seeds_student_t():
    iv = S.interval([5.0, 6.0, 7.0])
    assert (iv.n, iv.mean, iv.std, iv.method) == (3, 6.0, 1.0, S.T_OVER_SEEDS)
    assert iv.lo == pytest.approx(6 - T975_2 / math.sqrt(3), abs=1e-9)
    assert iv.hi == pytest.approx(6 + T975_2 / math.sqrt(3), abs=1e-9)


def test_equal_errors_give_a_zero_width_interval():
    iv = S.interval([4.53, 4.53, 4.53])
    assert iv.std == 0.0 and iv.lo == iv.hi == pytest.approx(4.53)


def test_one_seed_is_the_wilson_interval_of_the_error_count():
    iv = S.interval([5.0], n_test=400)
    assert iv.method == S.WILSON and iv.std is None and iv.n == 1
    # 20 errors in 400 images: 3.2597 % .. 7.5964 % (Wilson 1927; hand computation with z = 1.95996)
    assert (iv.lo, iv.hi) == (pytest.approx(3.259742983714726, abs=1e-9), pytest.approx(7.5963635063719614, abs=1e-9))
    lo, hi = S.wilson(0.0, 400)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(100 * Z975 ** 2 / (400 + Z975 ** 2), abs=1e-9)


def test_one_seed_without_a_test_set_size_says_so():
    iv = S.interval([5.0])
    assert math.isnan(iv.lo) and "unknown" in iv.method


def test_paired_difference_uses_only_shared_seeds_and_a_one_sided_t():
    cand = {0: 5.5, 1: 5.1, 2: 5.3}
    base = {0: 5.0, 1: 5.0, 2: 5.0, 3: 9.9}  # seed 3 has no partner: not paired, not an error
    d = S.paired_difference(cand, base)
    assert d.n == 3 and d.mean == pytest.approx(0.3)
    assert d.upper == pytest.approx(0.3 + T95_2 * 0.2 / math.sqrt(3), abs=1e-9)


def test_a_configuration_missing_a_seed_is_reported_with_n_2():
    cand = {0: 5.5, 2: 5.3}  # seed 1 failed
    d = S.paired_difference(cand, {0: 5.0, 1: 5.0, 2: 5.0})
    assert d.n == 2 and d.mean == pytest.approx(0.4)
    assert S.interval(list(cand.values())).n == 2


def test_one_seed_difference_is_newcombes_interval():
    d = S.paired_difference({0: 6.0}, {0: 5.0}, n_test=400)
    lo1, hi1 = S.wilson(6.0, 400, 0.90)
    lo2, hi2 = S.wilson(5.0, 400, 0.90)
    assert d.n == 1 and d.upper == pytest.approx(1.0 + math.sqrt((hi1 - 6.0) ** 2 + (5.0 - lo2) ** 2))
    assert S.paired_difference({0: 6.0}, {0: 5.0}) is None
    assert S.paired_difference({0: 6.0}, {1: 5.0}) is None


def test_seeds_needed():
    # mean 0.3, sd 0.2: upper bound 0.3 + t(0.95, n-1) * 0.2 / sqrt(n) <= 0.5 first at n = 5
    assert 0.3 + T95_3 * 0.2 / 2 > 0.5 and 0.3 + T95_4 * 0.2 / math.sqrt(5) <= 0.5
    assert S.seeds_needed([0.5, 0.1, 0.3], 0.5) == 5
    assert S.seeds_needed([0.6, 0.7], 0.5) is None  # worse than the budget on average
    assert S.seeds_needed([0.1], 0.5) is None
