"""Fixed / DynamicFixed against the exact Fraction model (tests/sim/oracles.py)."""
from __future__ import annotations

import math
from fractions import Fraction

import fewbits.sim as S
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from . import oracles as O
from .helpers import bools, f64, first_mismatch, hexes, i64, ints, model_of

SETTINGS = settings(derandomize=True, database=None, deadline=None, max_examples=150)

ROUND = {"rne": S.RNE, "rna": S.RNA, "rtz": S.RTZ, "rdn": S.RDN}
OVF = {"sat": S.SAT, "wrap": S.WRAP}

# (width, frac, signed, symmetric): widths 1, 2 and 12, negative frac, frac > width
CONFIGS = [
    (1, 0, True, False), (1, 0, False, False), (1, 5, True, False), (1, -2, False, False),
    (2, 0, True, False), (2, 1, False, False), (2, -3, True, True), (2, 4, True, False),
    (3, 1, True, True), (5, 2, False, False), (7, -4, True, False), (8, 4, True, False),
    (8, 4, True, True), (8, 9, False, False), (8, 0, False, False), (11, 5, True, True),
    (12, 0, True, False), (12, 6, True, True), (12, -5, False, False), (12, 15, True, False),
    (12, 20, False, False),
]


def cfg_id(c):
    w, f, s, sym = c
    return f"{'s' if s else 'u'}{w}.{f}{'sym' if sym else ''}"


def make(w, f, signed, sym, rnd="rne", ovf="sat"):
    if sym:
        ovf = "sat"
    fmt = S.Fixed(w, f, signed=signed, round=ROUND[rnd], overflow=OVF[ovf], symmetric=sym)
    return fmt, O.FixedModel(w, f, signed, rnd, ovf, sym)


def check_encode(fmt, model, xs):
    """encode_ovf(xs) == exact model, element by element, for float64 inputs."""
    codes, ovf = fmt.encode_ovf(f64(xs))
    assert codes.dtype == torch.int64
    want = [model.encode(x) for x in xs]
    got_c, want_c = ints(codes), [model.pattern(c) for c, _ in want]
    assert got_c == want_c, f"{fmt}: {first_mismatch(xs, got_c, want_c)}"
    got_o, want_o = bools(ovf), [o for _, o in want]
    assert got_o == want_o, f"{fmt} overflow flag: {first_mismatch(xs, got_o, want_o)}"
    assert ints(fmt.encode(f64(xs))) == want_c


def exact_floats(values):
    """Fractions -> floats, asserting each is exactly representable (test construction check)."""
    out = [float(v) for v in values]
    assert all(Fraction(x) == v for x, v in zip(out, values))
    return out


@pytest.mark.parametrize("cfg", CONFIGS, ids=cfg_id)
def test_range_attributes(cfg):
    fmt, m = make(*cfg)
    assert fmt.kind == "fixed"
    assert fmt.width == m.width
    assert (fmt.min_code, fmt.max_code) == (m.min_code, m.max_code)
    assert type(fmt.min_code) is int and type(fmt.max_code) is int
    assert fmt.ulp == float(m.ulp)
    assert fmt.min == float(m.value(m.min_code))
    assert fmt.max == float(m.value(m.max_code))


@pytest.mark.parametrize("cfg", CONFIGS, ids=cfg_id)
def test_every_code_round_trips(cfg):
    fmt, m = make(*cfg)
    codes = list(m.codes())
    vals = fmt.decode(i64(codes))
    assert vals.dtype == torch.float64
    assert hexes(vals) == hexes(exact_floats(m.value(c) for c in codes))
    c2, ovf = fmt.encode_ovf(vals)
    assert ints(c2) == codes
    assert not any(bools(ovf))
    assert hexes(fmt.quantize(vals)) == hexes(vals)
    assert ints(fmt.encode(fmt.decode(c2))) == codes


@pytest.mark.parametrize("ovf", ["sat", "wrap"])
@pytest.mark.parametrize("rnd", O.MODES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=cfg_id)
def test_every_mode_on_every_midpoint(cfg, rnd, ovf):
    """Exact ties between all consecutive codes (and just past both ends), plus quarter points."""
    fmt, m = make(*cfg, rnd=rnd, ovf=ovf)
    pts = []
    for c in range(m.min_code - 2, m.max_code + 2):
        for off in (Fraction(1, 4), Fraction(1, 2), Fraction(3, 4)):
            pts.append((c + off) * m.ulp)
    check_encode(fmt, m, exact_floats(pts))
    q = fmt.quantize(f64(exact_floats(pts)))
    assert hexes(q) == hexes(exact_floats(m.quantize(p) for p in pts))


@pytest.mark.parametrize("ovf", ["sat", "wrap"])
@pytest.mark.parametrize("rnd", O.MODES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=cfg_id)
def test_one_ulp_of_float64_off_every_midpoint(cfg, rnd, ovf):
    """The float64 neighbours of each tie: ``y + 0.5`` is inexact there, so a rounding that adds
    a half before truncating gets them wrong (0.49999999999999994 must not round away from zero)."""
    fmt, m = make(*cfg, rnd=rnd, ovf=ovf)
    pts = []
    for c in range(max(m.min_code - 2, -40), min(m.max_code + 2, 40)):
        tie = float((c + Fraction(1, 2)) * m.ulp)
        pts += [math.nextafter(tie, math.inf), math.nextafter(tie, -math.inf)]
    check_encode(fmt, m, pts)


@pytest.mark.parametrize("ovf", ["sat", "wrap"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=cfg_id)
def test_out_of_range(cfg, ovf):
    fmt, m = make(*cfg, ovf=ovf)
    big = [m.value(m.max_code + k) for k in (1, 2, 3, 7, 1 << m.width, 5 << m.width)]
    small = [m.value(m.min_code - k) for k in (1, 2, 3, 7, 1 << m.width, 5 << m.width)]
    check_encode(fmt, m, exact_floats(big + small + [-3 * m.ulp / 8, m.ulp * 1000003]))


@pytest.mark.parametrize("ovf", ["sat", "wrap"])
@pytest.mark.parametrize("cfg", [(8, 4, True, False), (8, 4, False, False), (12, 6, True, True),
                                 (64, 3, True, False), (64, 0, False, False)], ids=cfg_id)
def test_non_finite_inputs(cfg, ovf):
    """NaN -> code 0 flagged, +-inf -> the saturated code flagged (also under WRAP)."""
    fmt, m = make(*cfg, ovf=ovf)
    xs = [math.nan, math.inf, -math.inf]
    codes, flags = fmt.encode_ovf(f64(xs))
    assert ints(codes) == [0, m.pattern(m.max_code), m.pattern(m.min_code)]
    assert bools(flags) == [True, True, True]


# ---------------------------------------------------------------- wide formats (53..64 bits)
def wide_points(w, f, signed):
    """float64-exact values probing codes near +-2**(w-1), 2**63 and 2**64."""
    u = Fraction(2) ** -f
    top = 1 << (w - 1) if signed else 1 << w
    pts = set()
    for k in range(50, 66):
        for base in (1 << k, -(1 << k)):
            for d in (0, 1 << max(0, k - 52)):
                pts.add((base + d) * u)
                pts.add((base - d) * u)
    for sgn in (1, -1):
        pts.add(sgn * top * u)
        pts.add(sgn * (top - (1 << max(0, top.bit_length() - 53))) * u)
        pts.add(sgn * (top + (1 << max(0, top.bit_length() - 52))) * u)
    pts.update(Fraction(k) + Fraction(1, 2) for k in (-(1 << 51) - 1, (1 << 51) + 1, 3, -3))
    return sorted(p for p in pts if Fraction(float(p)) == p)


@pytest.mark.parametrize("ovf", ["sat", "wrap"])
@pytest.mark.parametrize("rnd", O.MODES)
@pytest.mark.parametrize("w,f,signed", [(53, 0, True), (54, 0, False), (60, 3, True), (63, 0, True),
                                        (63, 0, False), (64, 0, True), (64, 0, False),
                                        (64, 10, True), (64, -10, True), (64, 1, False), (57, 60, True)])
def test_wide_exact(w, f, signed, rnd, ovf):
    fmt, m = make(w, f, signed, False, rnd, ovf)
    pts = wide_points(w, f, signed)
    check_encode(fmt, m, [float(p) for p in pts])
    # decode of every resulting code whose value is float64-exact is that value
    codes = [m.encode(p)[0] for p in pts]
    ok = [c for c in codes if Fraction(float(m.value(c))) == m.value(c)]
    got = fmt.decode(i64([m.pattern(c) for c in ok]))
    assert hexes(got) == hexes(float(m.value(c)) for c in ok)


def test_unsigned_64_patterns():
    """ufixed:64 codes >= 2**63 travel as their int64 bit pattern, and decode undoes that."""
    fmt, m = make(64, 0, False, False)
    xs = [2.0 ** 63, 2.0 ** 64 - 2.0 ** 11, 2.0 ** 63 + 2.0 ** 11, 2.0 ** 62]
    codes = fmt.encode(f64(xs))
    assert ints(codes) == [O.to_int64(int(x)) for x in xs]
    assert ints(codes)[:3] == [-(2 ** 63), -(2 ** 11), -(2 ** 63) + 2 ** 11]
    assert hexes(fmt.decode(codes)) == hexes(xs)
    assert fmt.max_code == 2 ** 64 - 1 and fmt.min_code == 0


# ---------------------------------------------------------------- property test, any format
@st.composite
def fixed_and_inputs(draw):
    w = draw(st.integers(1, 64))
    f = draw(st.integers(-70, 70))
    signed = draw(st.booleans())
    sym = signed and w > 1 and draw(st.booleans())  # 1-bit symmetric is rejected (code 0 only)
    rnd = draw(st.sampled_from(O.MODES))
    ovf = "sat" if sym else draw(st.sampled_from(["sat", "wrap"]))
    scale = 2.0 ** -f
    near = st.builds(lambda c, num: math.ldexp(float(c), -f) + num * scale / 8,
                     st.integers(-(1 << min(w, 52)), 1 << min(w, 52)), st.integers(-8, 8))
    anyf = st.floats(allow_nan=False, allow_infinity=False, width=64)
    xs = draw(st.lists(st.one_of(near, anyf), min_size=1, max_size=40))
    return (w, f, signed, sym, rnd, ovf), xs


@SETTINGS
@given(fixed_and_inputs())
def test_encode_matches_exact_model(case):
    check_any_fixed(case)


@pytest.mark.slow
@settings(SETTINGS, max_examples=4000)
@given(fixed_and_inputs())
def test_encode_matches_exact_model_sweep(case):
    check_any_fixed(case)


def check_any_fixed(case):
    (w, f, signed, sym, rnd, ovf), xs = case
    fmt, m = make(w, f, signed, sym, rnd, ovf)
    check_encode(fmt, m, xs)
    want = [m.quantize(x) for x in xs]
    got = hexes(fmt.quantize(f64(xs)))
    for g, v, x in zip(got, want, xs):
        if Fraction(float(v)) == v:  # values of 54+ significant bits have no float64
            assert g == float(v).hex(), f"{fmt}.quantize({x!r})"


@pytest.mark.parametrize("w", [2, 5, 8, 13, 32, 63])
@pytest.mark.parametrize("signed", [True, False])
def test_wrap_and_saturate_codes(w, signed):
    fmt, m = make(w, 0, signed, False)
    g = torch.Generator().manual_seed(1000 + w)
    raw = torch.randint(-(1 << 62), 1 << 62, (300,), generator=g, dtype=torch.int64)
    edges = [m.min_code - 1, m.min_code, m.max_code, m.max_code + 1, 0, -1]
    raw = torch.cat([raw >> torch.randint(0, 62, (300,), generator=g),
                     i64([c for c in edges if -(1 << 63) <= c < (1 << 63)])])
    wc, wo = fmt.wrap_codes(raw)
    sc, so = fmt.saturate_codes(raw)
    want_w = [m.limit(c, "wrap") for c in ints(raw)]
    want_s = [m.limit(c, "sat") for c in ints(raw)]
    assert ints(wc) == [c for c, _ in want_w] and bools(wo) == [o for _, o in want_w]
    assert ints(sc) == [c for c, _ in want_s] and bools(so) == [o for _, o in want_s]


# ---------------------------------------------------------------- construction
@pytest.mark.parametrize("kwargs", [dict(width=0, frac=0), dict(width=-3, frac=0), dict(width=65, frac=0),
                                    dict(width=8, frac=0, signed=False, symmetric=True),
                                    dict(width=8, frac=0, symmetric=True, overflow=S.WRAP),
                                    dict(width=8, frac=0, round="nearest"),
                                    dict(width=8, frac=0, overflow="clip")])
def test_constructor_rejects(kwargs):
    with pytest.raises(S.FormatError) as e:
        S.Fixed(**kwargs)
    assert "\n" not in str(e.value)


def test_frozen_equality_hash():
    a, b = S.Fixed(8, 4), S.Fixed(8, 4, signed=True, round=S.RNE, overflow=S.SAT, symmetric=False)
    assert a == b and hash(a) == hash(b)
    assert len({a, b, S.Fixed(8, 3), S.Fixed(8, 4, round=S.RNA), S.Fixed(8, 4, signed=False)}) == 4
    with pytest.raises(Exception):
        a.width = 9


# ---------------------------------------------------------------- DynamicFixed
@pytest.mark.parametrize("frac", [-3, 0, 2, 7, 20])
@pytest.mark.parametrize("signed", [True, False])
def test_dynamic_fixed_is_fixed_at_current_frac(frac, signed):
    d = S.DynamicFixed(8, signed=signed, round=S.RNA).with_frac(frac)
    f = S.Fixed(8, frac, signed=signed, round=S.RNA)
    assert d.kind == "dfixed" and d.fixed == f and d.frac == frac
    assert (d.min, d.max, d.ulp, d.width) == (f.min, f.max, f.ulp, f.width)
    g = torch.Generator().manual_seed(7 + frac)
    x = torch.randn(500, generator=g, dtype=torch.float64) * 2.0 ** (5 - frac)
    for meth in ("encode", "quantize"):
        assert hexes(getattr(d, meth)(x)) == hexes(getattr(f, meth)(x))
    c, o = d.encode_ovf(x)
    c2, o2 = f.encode_ovf(x)
    assert ints(c) == ints(c2) and bools(o) == bools(o2)
    assert hexes(d.decode(c)) == hexes(f.decode(c))
    assert model_of(d) == O.FixedModel(8, frac, signed, "rna", "sat", False)


def test_dynamic_fixed_with_frac_is_new_value():
    d = S.DynamicFixed(10)
    e = d.with_frac(3)
    assert d.frac == 0 and e.frac == 3 and d != e
    assert e == S.DynamicFixed(10, frac=3) and hash(e) == hash(S.DynamicFixed(10, frac=3))
    assert e.with_frac(0) == d
    assert str(d) == "dfixed:10" and str(e) == "dfixed:10:3"
