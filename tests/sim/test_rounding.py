"""Every rounding mode on constructed exact ties, for Fixed and Float, both signs.

Expected results here come from the definitions of the modes (which neighbour of a tie each
picks), not from the Fraction model, so these tests also cross-check oracles.round_int.
"""
from __future__ import annotations

import math
import random
from fractions import Fraction

import fewbits.sim as S
import pytest
from fewbits.sim.rounding import round_to_integer
from hypothesis import given, settings
from hypothesis import strategies as st

from . import oracles as O
from .helpers import f64, hexes, ints

ROUND = {"rne": S.RNE, "rna": S.RNA, "rtz": S.RTZ, "rdn": S.RDN}


def pick(mode, lo, hi, x_positive, lo_even):
    """The neighbour (lo < hi in value) of an exact tie that `mode` picks."""
    if mode == "rne":
        return lo if lo_even else hi
    if mode == "rna":
        return hi if x_positive else lo
    if mode == "rtz":
        return lo if x_positive else hi
    return lo  # rdn: floor


@pytest.mark.parametrize("mode", O.MODES)
@pytest.mark.parametrize("w,f,signed", [(1, 0, True), (2, 0, True), (4, 1, False), (8, 4, True), (12, -3, True),
                                        (12, 15, False), (40, 7, True)])
def test_fixed_ties(w, f, signed, mode):
    fmt = S.Fixed(w, f, signed=signed, round=ROUND[mode])
    lo_c, hi_c = fmt.min_code, fmt.max_code
    rng = random.Random(w * 100 + f)
    cs = list(range(lo_c, hi_c)) if hi_c - lo_c < 5000 else [rng.randint(lo_c, hi_c - 1) for _ in range(3000)]
    xs = [(c + 0.5) * 2.0 ** -f for c in cs]
    assert all(Fraction(x) == (c + Fraction(1, 2)) * O.pow2(-f) for x, c in zip(xs, cs))
    got = ints(fmt.encode(f64(xs)))
    want = [pick(mode, c, c + 1, x > 0, c % 2 == 0) for c, x in zip(cs, xs)]
    assert got == want
    assert want == [O.round_int(c + Fraction(1, 2), mode) for c in cs]  # the oracle agrees


def test_modes_differ_on_ties():
    """The four modes are four different functions (both signs): a swapped mode cannot pass."""
    x = f64([2.5, 3.5, -2.5, -3.5, 0.5, -0.5])
    res = {m: tuple(ints(S.Fixed(8, 0, round=r).encode(x))) for m, r in ROUND.items()}
    assert len(set(res.values())) == 4


FLOATS = [(2, 1, "ieee"), (3, 2, "ieee"), (4, 3, "fn"), (5, 2, "ieee"), (3, 3, "sat"), (4, 7, "ieee")]  # fp16 ties: test_floating (numpy)


@pytest.mark.parametrize("mode", O.MODES)
@pytest.mark.parametrize("e,m,special", FLOATS)
def test_float_ties(e, m, special, mode):
    sp = {"ieee": S.Special.IEEE, "fn": S.Special.FN, "sat": S.Special.SAT}[special]
    fmt = S.Float(e, m, special=sp, round=ROUND[mode])
    model = O.FloatModel(e, m, special=special)
    vals = [Fraction(0)] + model.positive_values()
    xs, want = [], []
    for v1, v2 in zip(vals, vals[1:]):
        t = (v1 + v2) / 2
        c1, c2 = model.pack(False, v1), model.pack(False, v2)
        even1 = c1 % 2 == 0
        for sgn in (1, -1):
            x = float(sgn * t)
            assert Fraction(x) == sgn * t
            if sgn > 0:
                code = pick(mode, c1, c2, True, even1)
            else:  # on the negative axis -v2 < -v1
                n1, n2 = model.pack(True, v2), model.pack(True, v1)
                code = pick(mode, n1, n2, False, n1 % 2 == 0)
            xs.append(x)
            want.append(code)
    assert ints(fmt.encode(f64(xs))) == want
    assert [model.encode(x, mode)[0] for x in xs] == want  # the oracle agrees


@settings(derandomize=True, database=None, deadline=None, max_examples=300)
@given(st.fractions(max_denominator=1 << 20), st.sampled_from(O.MODES))
def test_oracle_round_int(q, mode):
    """oracles.round_int against Python's own definitions."""
    want = {"rne": round(q), "rdn": math.floor(q), "rtz": math.trunc(q),
            "rna": (math.floor(q + Fraction(1, 2)) if q >= 0 else -math.floor(-q + Fraction(1, 2)))}[mode]
    assert O.round_int(q, mode) == want


@settings(derandomize=True, database=None, deadline=None, max_examples=200)
@given(st.lists(st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                          st.integers(-1000, 1000).map(lambda k: k / 2)), min_size=1, max_size=50),
       st.sampled_from(O.MODES))
def test_round_to_integer(xs, mode):
    """sim.rounding.round_to_integer: exact integer rounding of float64, sign of zero kept."""
    got = round_to_integer(f64(xs), ROUND[mode])
    want = []
    for x in xs:
        r = float(O.round_int(Fraction(x), mode))
        want.append(math.copysign(r, x) if r == 0 else r)
    assert hexes(got) == hexes(want)
