"""The float accumulator of ``mac_reference`` against an exact ``fractions.Fraction`` model written here.

The model is independent of ``fewbits.sim``'s arithmetic: operand codes are
decoded to float64 (exact) and everything after that is rational arithmetic
and a rounding function written from the format's definition.
"""
from __future__ import annotations

import math
from fractions import Fraction

import fewbits.sim as S
import numpy as np
import pytest
import torch
from fewbits.sim.accumulator import FloatAccumulator
from fewbits.sim.parse import parse_accumulator


# ---- the independent model --------------------------------------------------
def _floor_log2(a: Fraction) -> int:
    e = a.numerator.bit_length() - a.denominator.bit_length()
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    return e


def round_float(x: Fraction, fmt: S.Float):
    """(value, overflowed) of exact ``x`` rounded onto ``fmt``: a Fraction, or a float ±inf or -0.0.

    Only an exact zero is +0; a negative value that rounds to zero keeps its sign (-0.0)."""
    if x == 0:
        return Fraction(0), False
    neg, a = x < 0, abs(x)
    emin = 1 - fmt.bias
    emax = (1 << fmt.exp) - 1 - (1 if fmt.special is S.Special.IEEE else 0) - fmt.bias
    top = (1 << (fmt.man + 1)) - 1 - (1 if fmt.special is S.Special.FN else 0)
    vmax = top * Fraction(2) ** (emax - fmt.man)
    q = max(_floor_log2(a), emin) - fmt.man
    scaled = a / Fraction(2) ** q
    n = scaled.numerator // scaled.denominator
    rem = scaled - n
    mode = fmt.round
    if mode is S.RNE:
        n += rem > Fraction(1, 2) or (rem == Fraction(1, 2) and n % 2 == 1)
    elif mode is S.RNA:
        n += rem >= Fraction(1, 2)
    elif mode is S.RDN:
        n += neg and rem > 0  # the magnitude of a negative value rounds up
    v = n * Fraction(2) ** q
    if v == 0:
        return (-0.0 if neg else Fraction(0)), False
    if v > vmax:
        to_inf = fmt.special is S.Special.IEEE and (mode in (S.RNE, S.RNA) or (mode is S.RDN and neg))
        v = math.inf if to_inf else vmax
        return (-v if neg else v), True
    return (-v if neg else v), False


def special_rule(x: float, fmt: S.Float):
    """What a non-finite value becomes in ``fmt``: IEEE keeps it, FN saturates inf, SAT maps NaN to 0."""
    if fmt.special is S.Special.IEEE:
        return x
    if math.isnan(x):
        return math.nan if fmt.special is S.Special.FN else Fraction(0)
    return round_float(Fraction(2) ** 2000 * (1 if x > 0 else -1), fmt)[0]


def _special(v) -> bool:
    return isinstance(v, float) and not v == 0


def model(a_vals, b_vals, bias_vals, acc: FloatAccumulator, out_fmt: S.Float):
    """Per element: s = round(bias); per chunk of ascending k: s = round(s + exact chunk sum); then requant."""
    R, K = a_vals.shape
    C = b_vals.shape[1]
    z = np.empty((R, C), dtype=object)
    ovf = np.zeros((R, C), dtype=bool)
    for i in range(R):
        for j in range(C):
            s = Fraction(0)
            if bias_vals is not None:
                b = float(bias_vals[j])
                s = round_float(Fraction(b), acc.fmt)[0] if math.isfinite(b) else special_rule(b, acc.fmt)
            for k0 in range(0, K, acc.chunk):
                ks = range(k0, min(K, k0 + acc.chunk))
                pairs = [(float(a_vals[i, k]), float(b_vals[k, j])) for k in ks]
                special = sum((x * y for x, y in pairs if not (math.isfinite(x) and math.isfinite(y))), 0.0)
                if _special(s) or special != 0 or math.isnan(special):
                    s = special_rule(float(s) + special, acc.fmt)
                    continue
                s = round_float(Fraction(s) + sum((Fraction(x) * Fraction(y) for x, y in pairs), Fraction(0)), acc.fmt)[0]
            if _special(s):
                z[i, j], ovf[i, j] = s, True
                if out_fmt.special is not S.Special.IEEE:
                    z[i, j] = special_rule(s, out_fmt)
            elif s == 0:
                z[i, j] = s  # ±0 converts exactly
            else:
                z[i, j], ovf[i, j] = round_float(s, out_fmt)
    return z, ovf


def check(a_codes, b_codes, a_fmt, b_fmt, acc, out_fmt, bias_codes=None, bias_fmt=None):
    bias_fmt = bias_fmt or out_fmt
    z, ovf = S.mac_reference(a_codes, b_codes, a_fmt, b_fmt, acc, out_fmt, bias_codes=bias_codes, bias_fmt=bias_fmt)
    want, want_ovf = model(a_fmt.decode(a_codes).numpy(), b_fmt.decode(b_codes).numpy(),
                           None if bias_codes is None else bias_fmt.decode(bias_codes).numpy(),
                           parse_accumulator(acc), out_fmt)
    got = out_fmt.decode(z).numpy()
    for (i, j), w in np.ndenumerate(want):
        g = got[i, j]
        if isinstance(w, float) and math.isnan(w):
            assert math.isnan(g), (i, j, g, w)
        else:
            assert g == w and math.copysign(1, g) == math.copysign(1, float(w)), (i, j, g, w)  # +0 for zero
    assert (ovf.numpy() == want_ovf).all()
    return z, ovf


def _codes(fmt, g, shape, scale=1.0):
    return fmt.encode(torch.randn(shape, generator=g, dtype=torch.float64) * scale)


# ---- random tiles: every rounding mode, chunk 1, 2, 3 and K ----------------------
ACCS = ["fp32", "bf16", "fp16", "float:5:2", "float:4:3,special=fn", "float:3:2,special=sat"]
OPERANDS = [(S.fp8_e4m3, S.fp8_e4m3), (S.fp16, S.fp16), (S.bf16, S.fp8_e5m2), (S.Fixed(8, 4), S.fp16)]


@pytest.mark.parametrize("mode", ["rne", "rna", "rtz", "rdn"])
@pytest.mark.parametrize("chunk", [1, 2, 3, "K"])
@pytest.mark.parametrize("acc_i", range(len(ACCS)))
def test_random_tiles_match_the_fraction_model(mode, chunk, acc_i):
    seed = 1200 + 100 * acc_i + 10 * ["rne", "rna", "rtz", "rdn"].index(mode) + (0 if chunk == "K" else chunk)
    g = torch.Generator().manual_seed(seed)
    a_fmt, b_fmt = OPERANDS[seed % len(OPERANDS)]
    K = 7
    n = K if chunk == "K" else chunk
    acc = f"{ACCS[acc_i]},round={mode},chunk={n}"
    scale = 4.0 if "float:3" in acc or "float:5:2" in acc else 1.0  # push the tiny formats into overflow too
    a = _codes(a_fmt, g, (3, K), scale)
    b = _codes(b_fmt, g, (K, 4), scale)
    out = S.Float(8, 10, round=S.Rounding(mode))
    check(a, b, a_fmt, b_fmt, acc, out, bias_codes=_codes(S.fp16, g, (4,)), bias_fmt=S.fp16)
    check(a, b, a_fmt, b_fmt, acc, S.fp8_e4m3)  # no bias; a narrow FN output


# ---- constructed cases ------------------------------------------------------------
def _f32(values):
    return S.fp32.encode(torch.tensor(values, dtype=torch.float64))


@pytest.mark.parametrize("mode", ["rne", "rna", "rtz", "rdn"])
def test_ties_in_the_running_sum(mode):
    # s = 1 + 2**-23 (odd last bit); adding 2**-24 lands exactly halfway, also negated
    for sign in (1, -1):
        a = _f32([[sign * (1 + 2.0 ** -23), sign * 2.0 ** -24, sign * 2.0 ** -24]])
        b = _f32([[1.0], [1.0], [1.0]])
        for chunk in (1, 2, 3):
            check(a, b, S.fp32, S.fp32, f"fp32,round={mode},chunk={chunk}", S.fp32)


def test_cancellation_to_plus_zero():
    a = _f32([[1.5, -1.5, 2.0 ** -30, -(2.0 ** -30)]])
    b = _f32([[1.0], [1.0], [1.0], [1.0]])
    for mode in ("rne", "rdn"):
        z, _ = check(a, b, S.fp32, S.fp32, f"fp32,round={mode}", S.fp32)
        assert int(z) == 0  # +0, not -0, even rounding down
    # a sum that cancels only after the first rounding: s = round(1 + 2**-30) = 1, then -1 gives +0 exactly
    z, _ = check(_f32([[1.0, 2.0 ** -30, -1.0]]), _f32([[1.0], [1.0], [1.0]]), S.fp32, S.fp32, "fp32", S.fp32)
    assert int(z) == 0
    z, _ = check(_f32([[1.0, 2.0 ** -30, -1.0]]), _f32([[1.0], [1.0], [1.0]]), S.fp32, S.fp32, "fp32,chunk=3", S.fp32)
    assert S.fp32.decode(z).item() == 2.0 ** -30  # one chunk: exact


def test_overflow_mid_tile_and_specials():
    big = 2.0 ** 127
    ones = _f32([[1.0], [1.0], [1.0]])
    # IEEE: overflow to inf mid-tile stays inf, and is flagged
    z, ovf = check(_f32([[big, big, -big]]), ones, S.fp32, S.fp32, "fp32", S.fp32)
    assert math.isinf(S.fp32.decode(z).item()) and bool(ovf)
    # chunk=3 sums exactly: no overflow at all
    z, ovf = check(_f32([[big, big, -big]]), ones, S.fp32, S.fp32, "fp32,chunk=3", S.fp32)
    assert S.fp32.decode(z).item() == big and not bool(ovf)
    # RTZ saturates at max; FN and SAT accumulators saturate
    for acc in ("fp32,round=rtz", "float:8:23,special=fn", "float:8:23,special=sat"):
        check(_f32([[big, big, -big]]), ones, S.fp32, S.fp32, acc, S.fp32)
    # NaN and inf operands, inf - inf, a NaN bias, through IEEE/FN/SAT accumulators
    inf, nan = math.inf, math.nan
    for row, bias in (([inf, 1.0, -inf], None), ([nan, 1.0, 1.0], None), ([1.0, inf, 1.0], None),
                      ([0.0, 1.0, 1.0], nan), ([1.0, 1.0, 1.0], -inf)):
        for acc in ("fp32", "fp32,chunk=2", "float:8:23,special=fn", "float:8:23,special=sat"):
            check(_f32([row]), ones, S.fp32, S.fp32, acc, S.fp32,
                  bias_codes=None if bias is None else _f32([bias]), bias_fmt=S.fp32)
    check(S.fp16.encode(torch.tensor([[1.0, 0.0]])), S.fp16.encode(torch.tensor([[1.0], [inf]])),
          S.fp16, S.fp16, "fp32", S.fp16)  # inf * 0 = NaN


def test_chunk_boundaries_when_k_is_not_a_multiple():
    g = torch.Generator().manual_seed(77)
    for K in (1, 5, 9):
        a, b = _codes(S.fp16, g, (2, K)), _codes(S.fp16, g, (K, 3))
        for chunk in (2, 4, 16):
            check(a, b, S.fp16, S.fp16, f"fp16,chunk={chunk}", S.fp16, bias_codes=_codes(S.fp16, g, (3,)))


def test_fixed_output_and_empty_k():
    g = torch.Generator().manual_seed(5)
    a, b = _codes(S.fp16, g, (2, 4)), _codes(S.fp16, g, (4, 2))
    out = S.Fixed(8, 4, round=S.RNA)
    z, ovf = S.mac_reference(a, b, S.fp16, S.fp16, "bf16,chunk=2", out)
    s = model(S.fp16.decode(a).numpy(), S.fp16.decode(b).numpy(), None, parse_accumulator("bf16,chunk=2"), S.fp32)[0]
    assert (z == out.encode(torch.tensor(s.astype(float)))).all()
    z, _ = S.mac_reference(torch.zeros((2, 0), dtype=torch.int64), torch.zeros((0, 2), dtype=torch.int64),
                           S.fp16, S.fp16, "fp32", S.fp16, bias_codes=_codes(S.fp16, g, (2,)))
    assert z.shape == (2, 2)


# ---- double rounding: float64-then-round is wrong, sim is right ---------------------
def test_float64_then_round_double_rounds_and_sim_does_not():
    s = 2.0 ** 30 + 2.0 ** 7  # an fp32 with an odd last mantissa bit (its ulp is 2**7)
    a = _f32([[s, 2.0 ** 6 * (1 + 2.0 ** -15)]])
    b = _f32([[1.0], [1 - 2.0 ** -15]])  # second product: 2**6 - 2**-24, just below half an ulp of s
    exact = Fraction(s) + Fraction(2.0 ** 6 * (1 + 2.0 ** -15)) * Fraction(1 - 2.0 ** -15)
    once = float(round_float(exact, S.fp32)[0])
    twice = float(np.float32(np.float64(s) + np.float64(2.0 ** 6 * (1 + 2.0 ** -15)) * np.float64(1 - 2.0 ** -15)))
    assert once == s and twice == s + 2.0 ** 7  # the trap exists: float64 rounds onto the tie, RNE goes even
    z, _ = check(a, b, S.fp32, S.fp32, "fp32", S.fp32)
    assert S.fp32.decode(z).item() == once


# ---- the type, its string and its validation ----------------------------------------
@pytest.mark.parametrize("text", ["fp32", "bf16,chunk=16", "float:8:10,chunk=4", "fp16,round=rtz,chunk=2",
                                  "float:5:10,special=sat,chunk=3", "fp8_e4m3,chunk=8"])
def test_accumulator_strings_round_trip(text):
    acc = parse_accumulator(text)
    assert isinstance(acc, FloatAccumulator) and str(acc) == text
    assert parse_accumulator(str(acc)) == acc
    if acc.chunk != 1:
        assert S.parse_format(str(acc)) == acc


@pytest.mark.parametrize("text,part", [("fp32,chunk=0", "chunk=0"), ("fp32,chunk=x", "'x'"),
                                       ("acc:20:4,chunk=2", "chunk")])
def test_bad_accumulator_strings(text, part):
    with pytest.raises(S.FormatError, match=part):
        parse_accumulator(text)


def test_macspec_takes_a_float_accumulator_and_round_trips():
    spec = S.MacSpec(S.fp8_e4m3, S.fp8_e4m3, S.bf16, acc_fmt="float:8:10,chunk=4", rows=2, cols=3, k_max=32)
    assert spec.acc_fmt == FloatAccumulator(S.Float(8, 10), 4)
    assert S.MacSpec.from_json(spec.to_json()) == spec
    assert S.MacSpec(S.fp16, S.fp16, S.fp16, acc_fmt="fp32").to_dict()["acc_fmt"] == "fp32"
    g = torch.Generator().manual_seed(3)
    a, b = _codes(S.fp8_e4m3, g, (2, 9)), _codes(S.fp8_e4m3, g, (9, 3))
    z, ovf = spec.compute(a, b)
    assert (z == S.mac_reference(a, b, S.fp8_e4m3, S.fp8_e4m3, "float:8:10,chunk=4", S.bf16)[0]).all()


@pytest.mark.parametrize("kw,part", [
    (dict(acc_fmt="fp32,chunk=64", k_max=32), "chunk=64"),
    (dict(a_fmt="dfixed:8"), "dynamic"),
])
def test_macspec_rejects_float_accumulators_hardware_cannot_build(kw, part):
    args = dict(a_fmt=S.fp16, b_fmt=S.fp16, out_fmt=S.fp16, acc_fmt="fp32")
    args.update(kw)
    with pytest.raises(S.FormatError, match=part):
        S.MacSpec(**args)


# ---- the exact accumulator's float64 fast path (small tiles) must not double-round either ------------
@pytest.mark.parametrize("sign", [1, -1])
def test_exact_accumulator_fast_path_near_ties(sign):
    s, x, y = 2.0 ** 30 + 2.0 ** 7, 2.0 ** 6 * (1 + 2.0 ** -15), 1 - 2.0 ** -15  # s + x*y: just below a tie
    exact = Fraction(s) + Fraction(x) * Fraction(y)
    want = sign * float(round_float(exact, S.fp32)[0])
    # the products alone (the interval filter must refuse and fall back) ...
    z, _ = S.mac_reference(_f32([[sign * s, sign * x]]), _f32([[1.0], [y]]), S.fp32, S.fp32, None, S.fp32)
    assert S.fp32.decode(z).item() == want
    # ... and a bias added to an exact product sum (round-to-odd of one float64 add)
    z, _ = S.mac_reference(_f32([[sign * x]]), _f32([[y]]), S.fp32, S.fp32, None, S.fp32,
                           bias_codes=_f32([sign * s]), bias_fmt=S.fp32)
    assert S.fp32.decode(z).item() == want
    # fp8 products sit on a coarse grid (their sum is exact in float64): bias + product rounds to odd first
    e4 = S.fp8_e4m3
    z, _ = S.mac_reference(e4.encode(torch.tensor([[sign * 2.0 ** -9]])), e4.encode(torch.tensor([[2.0 ** -9]])),
                           e4, e4, None, S.bf16, bias_codes=_f32([sign * (2.0 ** 40 + 2.0 ** 32)]), bias_fmt=S.fp32)
    assert S.bf16.decode(z).item() == sign * (2.0 ** 40 + 2.0 ** 33)  # just above the tie: rounds up
