"""Accumulator and default_accumulator: exact grid, never overflows at k_max, and minimal."""
from __future__ import annotations

import itertools
from fractions import Fraction

import fewbits.sim as S
import pytest
import torch

from . import oracles as O
from .helpers import model_of


def value_range(fmt):
    """(lo, hi) of the finite values of an operand format, exactly."""
    m = model_of(fmt)
    if isinstance(m, O.FixedModel):
        return m.value(m.min_code), m.value(m.max_code)
    return -m.max, m.max


def grid_exp(fmt) -> int:
    """frac of the format's own finest grid (2**-frac)."""
    m = model_of(fmt)
    return m.frac if isinstance(m, O.FixedModel) else -m.q0


def worst_case(a_fmt, b_fmt, k, bias_fmt, frac):
    """(lo, hi): the extreme sums of up to k products (+ an optional bias) in grid units."""
    (a0, a1), (b0, b1) = value_range(a_fmt), value_range(b_fmt)
    prods = [x * y for x in (a0, a1) for y in (b0, b1)]
    scale = O.pow2(frac)
    pmin, pmax = min(prods) * scale, max(prods) * scale
    assert pmin.denominator == 1 and pmax.denominator == 1
    lo, hi = min(0, k * pmin), max(0, k * pmax)
    if bias_fmt is not None:
        b0, b1 = (v * scale for v in value_range(bias_fmt))
        assert b0.denominator == 1 and b1.denominator == 1
        lo, hi = lo + min(0, b0), hi + max(0, b1)
    return int(lo), int(hi)


def fits(lo, hi, width):
    return -(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1


FMTS = [S.Fixed(8, 0), S.Fixed(8, 4, signed=False), S.Fixed(1, 0), S.Fixed(1, 3, signed=False), S.Fixed(2, 0),
        S.Fixed(11, 5, symmetric=True), S.Fixed(16, -3), S.Fixed(32, 30), S.Fixed(5, 2, signed=False),
        S.DynamicFixed(6).with_frac(2),
        S.fp16, S.bf16, S.fp8_e4m3, S.fp8_e5m2, S.Float(4, 3, subnormals=False), S.Float(3, 2, special=S.Special.SAT),
        S.Float(5, 4, bias=3), S.fp32]
PAIRS = [(a, b) for a, b in itertools.product(FMTS, FMTS) if (a.kind == "float") == (b.kind == "float")]
KS = [1, 2, 3, 7, 100, 1024, 1025, 1 << 20]


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("a,b", PAIRS, ids=lambda f: str(f))
def test_default_accumulator_exact_safe_minimal(a, b, k):
    acc = S.default_accumulator(a, b, k)
    assert isinstance(acc, S.Accumulator)
    assert acc.frac == grid_exp(a) + grid_exp(b)  # fixed: fa + fb; float: -(q0a + q0b), the Kulisch grid
    lo, hi = worst_case(a, b, k, None, acc.frac)
    assert fits(lo, hi, acc.width), f"{acc} overflows on [{lo}, {hi}]"
    assert acc.width == 2 or not fits(lo, hi, acc.width - 1), f"{acc} is not minimal: {acc.width - 1} bits hold [{lo}, {hi}]"


BIASES = [S.Fixed(8, 0), S.Fixed(16, 2, signed=False), S.Fixed(20, 12), S.fp16, S.fp8_e4m3]


@pytest.mark.parametrize("k", [1, 5, 1024])
@pytest.mark.parametrize("bias", BIASES, ids=str)
@pytest.mark.parametrize("a,b", [(S.Fixed(8, 3), S.Fixed(8, 4)), (S.Fixed(4, 0), S.Fixed(6, 1, signed=False)),
                                 (S.fp8_e4m3, S.fp8_e4m3), (S.fp16, S.fp16)], ids=str)
def test_default_accumulator_with_bias(a, b, k, bias):
    acc = S.default_accumulator(a, b, k, bias_fmt=bias)
    pf = grid_exp(a) + grid_exp(b)
    assert acc.frac >= pf and acc.frac >= grid_exp(bias)  # the bias must land exactly on the grid
    if grid_exp(bias) <= pf:
        assert acc.frac == pf
    lo, hi = worst_case(a, b, k, bias, acc.frac)
    assert fits(lo, hi, acc.width) and (acc.width == 2 or not fits(lo, hi, acc.width - 1)), (acc, lo, hi)


CORNER_FMTS = [(S.Fixed(8, 0), S.Fixed(8, 0)), (S.Fixed(5, 2), S.Fixed(7, 1, signed=False)),
               (S.Fixed(6, 0, symmetric=True), S.Fixed(6, 0)), (S.Fixed(1, 0), S.Fixed(1, 0)),
               (S.Fixed(3, 0, signed=False), S.Fixed(4, 0)), (S.fp8_e4m3, S.fp8_e4m3), (S.Float(3, 1), S.fp8_e5m2)]


@pytest.mark.parametrize("k", [1, 3, 64])
@pytest.mark.parametrize("a_fmt,b_fmt", CORNER_FMTS, ids=str)
def test_worst_case_operands_through_mac_reference(a_fmt, b_fmt, k):
    """At k_max with every corner (most-negative x most-negative, ...) the default accumulator
    gives the exact sum; the same accumulator one bit narrower (wrapping) gets some corner wrong."""
    acc = S.default_accumulator(a_fmt, b_fmt, k)
    ma, mb = model_of(a_fmt), model_of(b_fmt)

    def extremes(m):
        if isinstance(m, O.FixedModel):
            return [m.pattern(m.min_code), m.pattern(m.max_code)]
        top = m.pack(False, m.max)
        return [top | (1 << (m.exp + m.man)), top]

    out = S.Fixed(min(acc.width + 1, 62), acc.frac)  # shift 0: the output is the accumulator value
    narrow = S.Accumulator(max(acc.width - 1, 2), acc.frac, overflow=S.WRAP)
    wrong = 0
    for ca, cb in itertools.product(extremes(ma), extremes(mb)):
        A = torch.full((1, k), ca, dtype=torch.int64)
        B = torch.full((k, 1), cb, dtype=torch.int64)
        want = k * O.operand_value(ma, ca) * O.operand_value(mb, cb) * O.pow2(acc.frac)
        z, ovf = S.mac_reference(A, B, a_fmt, b_fmt, acc, out)
        assert z.tolist() == [[int(want)]] and ovf.tolist() == [[False]], (hex(ca), hex(cb))
        z2, _ = S.mac_reference(A, B, a_fmt, b_fmt, narrow, out)
        wrong += z2.tolist() != [[int(want)]]
    assert wrong > 0 or acc.width == 2  # (2 bits is the least accumulator width)


# ---------------------------------------------------------------- the Accumulator object
@pytest.mark.parametrize("w,f", [(2, 0), (16, 8), (64, 0), (65, -3), (300, 48), (65536, 1000)])
def test_accumulator_object(w, f):
    acc = S.Accumulator(w, f)
    assert (acc.width, acc.frac) == (w, f)
    # defaults: SAT claims 'wide enough' (MacSpec checks it against k_max); a narrower one says overflow=wrap
    assert acc.round == S.RNE and acc.overflow == S.SAT
    assert str(acc) == f"acc:{w}:{f}"
    assert S.parse_format(str(acc)) == acc and hash(S.Accumulator(w, f)) == hash(acc)
    assert acc != S.Accumulator(w, f, overflow=S.WRAP) and acc != S.Accumulator(w, f, round=S.RNA)


@pytest.mark.parametrize("w", [0, 1, -5, 65537])
def test_accumulator_width_rejected(w):
    with pytest.raises(S.FormatError) as e:
        S.Accumulator(w, 0)
    assert "\n" not in str(e.value) and str(w) in str(e.value)


def test_fraction_helper_sanity():
    """The worst-case model itself: (-128)**2 * k needs 16 bits at k=1, 17 at k=2..3, 18 at k=4..7."""
    for k, w in ((1, 16), (2, 17), (3, 17), (4, 18), (5, 18), (7, 18), (8, 19)):
        lo, hi = worst_case(S.Fixed(8, 0), S.Fixed(8, 0), k, None, 0)
        assert fits(lo, hi, w) and not fits(lo, hi, w - 1), (k, w)
    assert Fraction(hi) == 8 * 128 * 128
