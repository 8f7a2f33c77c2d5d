"""Float formats against numpy float16, ml_dtypes and the exact Fraction model."""
from __future__ import annotations

import math
from fractions import Fraction

import fewbits.sim as S
import ml_dtypes
import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                                        "ignore:invalid value encountered:RuntimeWarning")

from . import oracles as O
from .helpers import bools, f64, first_mismatch, hexes, i64, ints, model_of

SETTINGS = settings(derandomize=True, database=None, deadline=None, max_examples=120)
ROUND = {"rne": S.RNE, "rna": S.RNA, "rtz": S.RTZ, "rdn": S.RDN}
SPECIAL = {"ieee": S.Special.IEEE, "fn": S.Special.FN, "sat": S.Special.SAT}


def make(exp, man, bias=None, subnormals=True, special="ieee", rnd="rne"):
    fmt = S.Float(exp, man, bias=bias, subnormals=subnormals, special=SPECIAL[special], round=ROUND[rnd])
    return fmt, O.FloatModel(exp, man, bias, subnormals, special, rnd)


def fid(p):
    exp, man, bias, sub, special = p
    return f"e{exp}m{man}{'' if bias is None else f'b{bias}'}{'' if sub else 'nosub'}-{special}"


def check_encode(fmt, model, xs, flags=True):
    codes, ovf = fmt.encode_ovf(f64(xs))
    assert codes.dtype == torch.int64
    want = [model.encode(x) for x in xs]
    got_c, want_c = ints(codes), [model.pattern(c) for c, _ in want]
    assert got_c == want_c, f"{fmt}: {first_mismatch(xs, got_c, want_c)}"
    assert ints(fmt.encode(f64(xs))) == want_c
    if flags:
        fin = [i for i, x in enumerate(xs) if math.isfinite(x)]
        flags_got = bools(ovf)
        got_o, want_o = [flags_got[i] for i in fin], [want[i][1] for i in fin]
        assert got_o == want_o, f"{fmt} overflow flag: {first_mismatch([xs[i] for i in fin], got_o, want_o)}"


# every (exp, man) of at most 12 bits, each with subnormals on/off and the three special-value conventions
SMALL = [(e, m) for e in range(2, 11) for m in range(1, 12 - e)]
SMALL_FORMATS = [(e, m, None, sub, sp) for e, m in SMALL for sub in (True, False) for sp in ("ieee", "fn", "sat")]
SMALL_FORMATS += [(4, 3, 3, True, "ieee"), (4, 3, 10, False, "fn"), (5, 2, 20, True, "sat"), (3, 4, -2, True, "ieee")]


@pytest.mark.parametrize("p", SMALL_FORMATS, ids=fid)
def test_every_code(p):
    """decode == exact value; encode(decode(c)) == c; quantize(decode(c)) == decode(c)."""
    fmt, m = make(*p)
    codes = [c for c in m.codes() if m.canonical(c)]
    vals = fmt.decode(i64(codes))
    assert vals.dtype == torch.float64
    assert hexes(vals) == hexes(O.to_float(m.value(c)) for c in codes)
    fin = [c for c in codes if not m.is_nan(c)]
    got = fmt.decode(i64(fin))
    assert ints(fmt.encode(got)) == fin
    assert hexes(fmt.quantize(got)) == hexes(got)
    assert bools(fmt.is_nan(i64(codes))) == [m.is_nan(c) for c in codes]
    assert bools(fmt.is_inf(i64(codes))) == [m.is_inf(c) for c in codes]
    sign, mant, expo = fmt.decompose(i64(fin))
    for c, s, mi, e in zip(fin, ints(sign), ints(mant), ints(expo)):
        if m.is_inf(c):
            continue
        ws, wm, we = m.decompose(c)
        if wm == 0:
            assert (s, mi) == (ws, 0), f"{fmt} decompose zero code {c:#x}"
        else:
            assert (s, mi, e) == (ws, wm, we), f"{fmt} decompose code {c:#x}"


@pytest.mark.parametrize("p", SMALL_FORMATS, ids=fid)
def test_attributes(p):
    fmt, m = make(*p)
    assert fmt.kind == "float"
    assert (fmt.width, fmt.bits_man, fmt.emin, fmt.emax) == (m.width, m.man + 1, m.emin, m.emax)
    assert (fmt.max, fmt.min) == (float(m.max), -float(m.max))
    assert fmt.min_normal == float(m.min_normal)
    if m.subnormals:  # without subnormals see test_ulp_is_the_finest_spacing
        assert fmt.min_subnormal == fmt.ulp == float(m.min_subnormal)


@pytest.mark.parametrize("p", [(2, 1, None, False, "ieee"), (5, 2, None, False, "sat"), (8, 7, None, False, "fn")],
                         ids=fid)
def test_ulp_is_the_finest_spacing(p):
    """SIM_API: ulp is "the finest spacing"; without subnormals that is min_normal * 2**-man
    (between min_normal and its successor), not min_normal."""
    fmt, m = make(*p)
    assert fmt.ulp == float(O.pow2(m.q0))


def probe_points(m: O.FloatModel):
    """Exact ties, quarter points and near-ties between consecutive values, +-, and past max."""
    pos = [Fraction(0)] + m.positive_values()
    step = pos[-1] - pos[-2]
    pos += [pos[-1] + step, pos[-1] + 2 * step, 2 * pos[-1], 4 * pos[-1]]
    pts = []
    for lo, hi in zip(pos, pos[1:]):
        for f in (Fraction(1, 4), Fraction(1, 2), Fraction(3, 4)):
            pts.append(lo + (hi - lo) * f)
    pts += pos[1:]
    xs = [float(p) for p in pts]
    assert all(Fraction(x) == p for x, p in zip(xs, pts))
    near = [math.nextafter(x, math.inf) for x in xs[::3]] + [math.nextafter(x, 0) for x in xs[1::3]]
    out = xs + near
    return out + [-x for x in out] + [0.0, -0.0, 1e300, -1e300, 5e-324, -5e-324]


TIE_FORMATS = [(2, 1, None, True, "ieee"), (3, 2, None, False, "ieee"), (4, 3, None, True, "fn"),
               (4, 3, None, False, "fn"), (5, 2, None, True, "ieee"), (3, 3, None, True, "sat"),
               (3, 1, None, False, "sat"), (5, 6, None, True, "ieee"), (2, 4, None, True, "fn"),
               (4, 2, 1, True, "ieee"), (6, 1, None, False, "ieee")]


@pytest.mark.parametrize("rnd", O.MODES)
@pytest.mark.parametrize("p", TIE_FORMATS, ids=fid)
def test_every_mode_on_ties_and_overflow(p, rnd):
    fmt, m = make(*p, rnd=rnd)
    xs = probe_points(m)
    check_encode(fmt, m, xs)
    assert hexes(fmt.quantize(f64(xs))) == hexes(m.quantize(x) for x in xs)


@pytest.mark.parametrize("p", [(4, 3, None, True, "ieee"), (4, 3, None, True, "fn"), (4, 3, None, True, "sat")],
                         ids=fid)
def test_non_finite_inputs(p):
    fmt, m = make(*p)
    xs = [math.nan, -math.nan, math.inf, -math.inf]
    got = ints(fmt.encode(f64(xs)))
    want = [m.pattern(m.encode(x)[0]) for x in xs]
    want[1] = want[0]  # any NaN encodes as the one positive NaN pattern
    assert got == want
    q = fmt.quantize(f64(xs))
    assert hexes(q) == hexes(O.to_float(m.value(c)) for c in want)


# ---------------------------------------------------------------- numpy float16 for fp16
F16 = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)


def test_fp16_every_code_vs_numpy():
    codes = torch.arange(1 << 16, dtype=torch.int64)
    got = S.fp16.decode(codes).numpy()
    want = F16.astype(np.float64)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan)
    assert np.array_equal(got[~nan].view(np.int64), want[~nan].view(np.int64))  # bit-exact, signed zeros
    back = S.fp16.encode(torch.from_numpy(want[~nan])).numpy()
    assert np.array_equal(back, np.arange(1 << 16)[~nan])
    assert int(S.fp16.encode(f64([math.nan]))[0]) == int(np.float16(np.nan).view(np.uint16)) == 0x7E00


def numpy_probes(values: np.ndarray, lo_dtype) -> np.ndarray:
    """Midpoints/quarter points between consecutive finite values of a small dtype, and
    their float64 neighbours, both signs, plus values beyond max (float64 inputs)."""
    v = np.unique(values[np.isfinite(values)].astype(np.float64))
    v = v[v >= 0]
    top = np.array([v[-1] + (v[-1] - v[-2]) * k for k in (1, 2, 3)] + [v[-1] * 4])
    v = np.concatenate([v, top])
    a, b = v[:-1], v[1:]
    mids = np.concatenate([a + (b - a) * f for f in (0.25, 0.5, 0.75)])
    pts = np.concatenate([v, mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf)])
    return np.concatenate([pts, -pts])


def test_fp16_ties_and_rounding_vs_numpy():
    xs = numpy_probes(F16, np.float16)
    want = xs.astype(np.float16).view(np.uint16).astype(np.int64)
    got = S.fp16.encode(torch.from_numpy(xs)).numpy()
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"fp16.encode({xs[bad[0]]!r}) = {got[bad[0]]:#x}, numpy {want[bad[0]]:#x}"
    q = S.fp16.quantize(torch.from_numpy(xs)).numpy()
    assert np.array_equal(q.view(np.int64), xs.astype(np.float16).astype(np.float64).view(np.int64))


@SETTINGS
@given(st.lists(st.floats(allow_nan=False, width=64), min_size=1, max_size=64))
def test_fp16_random_vs_numpy(xs):
    x = np.array(xs, dtype=np.float64)
    want = x.astype(np.float16).view(np.uint16).astype(np.int64)
    assert S.fp16.encode(torch.from_numpy(x)).tolist() == want.tolist()


def test_fp16_float32_input_keeps_dtype():
    g = torch.Generator().manual_seed(16)
    x = torch.randn(4096, generator=g, dtype=torch.float32) * 2.0 ** torch.randint(-26, 18, (4096,), generator=g)
    q = S.fp16.quantize(x)
    assert q.dtype == torch.float32
    assert np.array_equal(q.numpy(), x.numpy().astype(np.float16).astype(np.float32))


# ---------------------------------------------------------------- ml_dtypes for bf16 / fp8
# ml_dtypes converts float64 -> its type through float32 (double rounding: e.g. bf16 of
# 1 + 2**-8 + 2**-30 gives 1.0), so it is an oracle only on float32-exact inputs; the exact
# model covers float64 inputs (test_alias_float64_inputs_vs_exact_model).
ML = [("bf16", ml_dtypes.bfloat16, 16), ("fp8_e5m2", ml_dtypes.float8_e5m2, 8),
      ("fp8_e4m3", ml_dtypes.float8_e4m3fn, 8)]


def all_values(dt, bits):
    raw = np.arange(1 << bits, dtype=np.uint32).astype(np.uint16 if bits == 16 else np.uint8)
    return raw.view(dt)


@pytest.mark.parametrize("alias,dt,bits", ML, ids=[a for a, _, _ in ML])
def test_ml_dtypes_every_code(alias, dt, bits):
    fmt = getattr(S, alias)
    want = all_values(dt, bits).astype(np.float64)
    got = fmt.decode(torch.arange(1 << bits, dtype=torch.int64)).numpy()
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan)
    assert np.array_equal(got[~nan].view(np.int64), want[~nan].view(np.int64))
    assert np.array_equal(fmt.encode(torch.from_numpy(want[~nan])).numpy(), np.arange(1 << bits)[~nan])


@pytest.mark.parametrize("alias,dt,bits", ML, ids=[a for a, _, _ in ML])
def test_ml_dtypes_ties_float32_inputs(alias, dt, bits):
    fmt = getattr(S, alias)
    xs = numpy_probes(all_values(dt, bits), dt).astype(np.float32)
    xs = xs[np.isfinite(xs)]
    ref = xs.astype(dt)
    finite = np.isfinite(ref.astype(np.float64))  # e4m3fn: ml_dtypes gives NaN where we saturate
    want = ref.view(np.uint16 if bits == 16 else np.uint8).astype(np.int64)[finite]
    got = fmt.encode(torch.from_numpy(xs.astype(np.float64))).numpy()[finite]
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{alias}.encode({xs[finite][bad[0]]!r}) = {got[bad[0]]:#x}, ml_dtypes {want[bad[0]]:#x}"
    q = fmt.quantize(torch.from_numpy(xs))
    assert q.dtype == torch.float32
    assert np.array_equal(q.numpy()[finite], ref.astype(np.float32)[finite])
    if alias == "fp8_e4m3":  # where ml_dtypes overflows to NaN, we saturate to +-448
        over = ~finite
        assert over.any()
        assert np.array_equal(q.numpy()[over], np.sign(xs[over]) * 448.0)


@SETTINGS
@given(st.sampled_from(ML), st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32),
                                     min_size=1, max_size=64))
def test_ml_dtypes_random_float32(which, xs):
    alias, dt, bits = which
    x = np.array(xs, dtype=np.float32)
    ref = x.astype(dt)
    finite = np.isfinite(ref.astype(np.float64))
    want = ref.view(np.uint16 if bits == 16 else np.uint8).astype(np.int64)
    got = getattr(S, alias).encode(torch.from_numpy(x.astype(np.float64))).numpy()
    assert got[finite].tolist() == want[finite].tolist()


@SETTINGS
@given(st.sampled_from(["fp16", "bf16", "fp8_e5m2", "fp8_e4m3", "fp32"]),
       st.lists(st.floats(allow_nan=False, width=64), min_size=1, max_size=32))
def test_alias_float64_inputs_vs_exact_model(alias, xs):
    fmt = getattr(S, alias)
    m = model_of(fmt)
    check_encode(fmt, m, xs)


def test_fp8_e4m3_is_ocp():
    assert S.fp8_e4m3.max == 448.0 and S.fp8_e4m3.special == S.Special.FN
    assert S.fp8_e4m3 == S.Float(4, 3, special=S.Special.FN)
    for alias, (e, mn) in dict(fp32=(8, 23), fp16=(5, 10), bf16=(8, 7), fp8_e5m2=(5, 2), fp64=(11, 52)).items():
        assert getattr(S, alias) == S.Float(e, mn), alias


# ---------------------------------------------------------------- fp32 / fp64 against numpy
@SETTINGS
@given(st.lists(st.floats(allow_nan=False, width=64), min_size=1, max_size=64))
def test_fp32_random_vs_numpy(xs):
    x = np.array(xs, dtype=np.float64)
    with np.errstate(over="ignore"):
        want = x.astype(np.float32).view(np.uint32).astype(np.int64)
    assert S.fp32.encode(torch.from_numpy(x)).tolist() == want.tolist()


def test_fp32_ties_vs_numpy():
    g = np.random.default_rng(32)
    v = np.concatenate([g.standard_normal(2000).astype(np.float32) * np.float32(2.0) ** g.integers(-140, 120, 2000),
                        np.array([np.finfo(np.float32).max, np.finfo(np.float32).smallest_subnormal], np.float32)])
    nxt = np.nextafter(v, np.float32(np.inf))
    mids = (v.astype(np.float64) + nxt.astype(np.float64)) / 2
    xs = np.concatenate([mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf)])
    xs = xs[np.isfinite(xs)]
    with np.errstate(over="ignore"):
        want = xs.astype(np.float32).view(np.uint32).astype(np.int64)
    assert np.array_equal(S.fp32.encode(torch.from_numpy(xs)).numpy(), want)


@SETTINGS
@given(st.lists(st.floats(allow_nan=False, width=64), min_size=1, max_size=64))
def test_fp64_is_identity(xs):
    x = torch.tensor(xs, dtype=torch.float64)
    assert S.fp64.encode(x).tolist() == x.view(torch.int64).tolist()  # sign bit 63: negative int64
    assert hexes(S.fp64.quantize(x)) == hexes(xs)
    assert hexes(S.fp64.decode(x.view(torch.int64))) == hexes(xs)


# ---------------------------------------------------------------- any Float(exp, man) vs Fraction model
def float64_valid(m: O.FloatModel) -> bool:
    # every value a float64 value would be `m.q0 >= -1074`; sim also keeps min_normal a float64 normal
    # (emin >= -1022), which SIM_API does not say -- see the report; formats in between are not generated
    return m.emax <= 1023 and m.q0 >= -1074 and m.emin >= -1022


@st.composite
def float_and_inputs(draw):
    exp = draw(st.integers(2, 11))
    man = draw(st.integers(1, 52))
    bias = draw(st.one_of(st.none(), st.integers(-4, (1 << (exp - 1)) + 4)))
    sub = draw(st.booleans())
    special = draw(st.sampled_from(["ieee", "fn", "sat"]))
    rnd = draw(st.sampled_from(O.MODES))
    m = O.FloatModel(exp, man, bias, sub, special, rnd)
    assume(float64_valid(m))
    lo, hi = m.q0 - 3, m.emax + 3
    around = st.builds(lambda mant, e: math.ldexp(mant, e - 53), st.integers(-(1 << 53), 1 << 53),
                       st.integers(lo, hi))
    vals = m.positive_values() if m.width <= 10 else [m.max, m.min_normal, m.min_subnormal]

    def tie(i, sgn):  # an exact midpoint, or a point just next to one
        v = vals[i % len(vals)]
        step = m.min_subnormal if v <= m.min_normal else pow(Fraction(2), O.floor_log2(v) - man)
        try:
            x = float(v + step / 2)
        except OverflowError:  # past float64's range: the value itself
            x = float(v)
        return sgn * x

    ties = st.builds(tie, st.integers(0, 1 << 20), st.sampled_from([1.0, -1.0]))
    anyf = st.floats(allow_nan=False, width=64)
    xs = draw(st.lists(st.one_of(around, ties, anyf), min_size=1, max_size=32))
    return (exp, man, bias, sub, special, rnd), xs


@SETTINGS
@given(float_and_inputs())
def test_any_float_vs_exact_model(case):
    check_any_float(case)


@pytest.mark.slow
@settings(SETTINGS, max_examples=4000)
@given(float_and_inputs())
def test_any_float_vs_exact_model_sweep(case):
    check_any_float(case)


def check_any_float(case):
    (exp, man, bias, sub, special, rnd), xs = case
    fmt, m = make(exp, man, bias, sub, special, rnd)
    check_encode(fmt, m, xs)
    assert hexes(fmt.quantize(f64(xs))) == hexes(m.quantize(x) for x in xs)


@pytest.mark.parametrize("kwargs", [dict(exp=1, man=3), dict(exp=0, man=3), dict(exp=12, man=3),
                                    dict(exp=4, man=0), dict(exp=4, man=53), dict(exp=11, man=52, bias=0),
                                    dict(exp=11, man=52, bias=1030), dict(exp=4, man=3, round="nearest"),
                                    dict(exp=4, man=3, special="maybe")])
def test_constructor_rejects(kwargs):
    with pytest.raises(S.FormatError) as e:
        S.Float(**kwargs)
    assert "\n" not in str(e.value)


def test_frozen_equality_hash():
    assert S.Float(5, 10) == S.fp16 and hash(S.Float(5, 10)) == hash(S.fp16)
    assert len({S.fp16, S.Float(5, 10, round=S.RTZ), S.Float(5, 10, subnormals=False), S.bf16}) == 4
