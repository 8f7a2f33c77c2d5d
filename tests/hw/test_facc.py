"""FloatAccPE in Amaranth's simulator == fewbits.sim.mac_reference with its float accumulator:
back-to-back tiles, K = 1, K = k_max, K not a multiple of the chunk, ties, cancellation,
overflow to inf mid-tile, NaN operands."""

import math
import random

import pytest
import torch
from fewbits.hw.facc import FloatAccPE
from fewbits.hw.simrun import run_tiles
from fewbits.sim import FormatError, MacSpec, mac_reference, parse_format


def _codes(fmt, rng, n, specials=False):
    """Random finite codes, a share of zeros and extremes; NaN/inf when ``specials``."""
    out = []
    for _ in range(n):
        r = rng.random()
        v = rng.choice([0.0, fmt.max, -fmt.max]) if r < 0.15 else rng.gauss(0, 1) * 2.0 ** rng.randint(-6, 6)
        if specials and r > 0.95:
            v = rng.choice([math.nan, math.inf, -math.inf])
        out.append(int(fmt.encode(torch.tensor([v], dtype=torch.float64))[0]))
    return out


def _mismatches(spec, tiles, pe=None):
    """The tiles where a PE (default ``FloatAccPE(spec)``) differs from ``mac_reference`` under ``spec``."""
    pe = FloatAccPE(spec) if pe is None else pe
    outs, lats = run_tiles(pe, [{"a": [t["a"]], "b": [[x] for x in t["b"]], "bias": [t["bias"]]} for t in tiles])
    assert len(outs) == len(tiles) and set(lats) == {pe.latency}
    bad = []
    for (z, ovf), t in zip(outs, tiles):
        K = len(t["a"])
        wz, wo = mac_reference(torch.tensor([t["a"]]), torch.tensor(t["b"]).reshape(K, 1), spec.a_fmt, spec.b_fmt,
                               spec.acc_fmt, spec.out_fmt, torch.tensor([t["bias"]]), spec.bias_fmt)
        if (z[0][0], ovf[0][0]) != (int(wz[0, 0]), bool(wo[0, 0])):
            bad.append((t, (z[0][0], ovf[0][0]), (int(wz[0, 0]), bool(wo[0, 0]))))
    return bad


def _run(spec, tiles):
    bad = _mismatches(spec, tiles)
    assert not bad, f"{len(bad)} of {len(tiles)} tiles differ; first (tile, hw, sim): {bad[0]}"


CASES = [  # a/b, accumulator, output, bias, k_max
    ("fp8_e4m3", "float:5:3,chunk=3", "bf16", "bf16", 7),
    ("fp8_e4m3", "float:8:10,chunk=4", "bf16", "fp8_e4m3", 9),
    ("fp8_e5m2", "fp16,chunk=1", "fp8_e4m3", "fp16", 6),
    ("fp8_e4m3", "float:4:3,round=rtz,chunk=2,special=fn", "fp8_e5m2", "fp8_e4m3", 5),
    ("fp8_e4m3", "float:5:4,round=rdn", "fp16", "bf16", 4),
    ("fp16", "fp32,chunk=2", "bf16", "fp16", 5),  # the common design: fp32 behind fp16 multipliers
    ("fp8_e4m3", "fp32", "bf16", "bf16", 32),
]


@pytest.mark.parametrize("seed", [71])
@pytest.mark.parametrize("ops,acc,out,bias,k_max", CASES, ids=[c[1] for c in CASES])
def test_pe_equals_mac_reference(ops, acc, out, bias, k_max, seed):
    rng = random.Random(seed)
    f = parse_format(ops)
    spec = MacSpec(f, f, parse_format(out), acc_fmt=acc, bias_fmt=bias, k_max=k_max)
    Ks = [1, k_max, 1, k_max - 1, 2, k_max] + [rng.randint(1, k_max) for _ in range(6)]
    tiles = [{"a": _codes(f, rng, K, specials=i % 4 == 3), "b": _codes(f, rng, K),
              "bias": _codes(spec.bias_fmt, rng, 1)[0]} for i, K in enumerate(Ks)]
    _run(spec, tiles)


def test_pe_ties_cancellation_and_overflow():
    """float:5:3 sums that tie (1 + 2**-4), cancel to +0 across chunk boundaries, overflow mid-tile."""
    f, e = parse_format("fp8_e4m3"), lambda v: int(parse_format("fp8_e4m3").encode(torch.tensor([v]))[0])
    for acc in ("float:5:3", "float:5:3,chunk=2", "float:5:3,round=rna,chunk=3"):
        spec = MacSpec(f, f, parse_format("bf16"), acc_fmt=acc, bias_fmt="bf16", k_max=8)
        tiles = [
            {"a": [e(1.0), e(2.0 ** -4), e(2.0 ** -4), e(2.0 ** -4)], "b": [e(1.0)] * 4, "bias": 0},
            {"a": [e(3.0), e(0.5), e(-3.0), e(-0.5)], "b": [e(1.5)] * 4, "bias": 0},
            {"a": [e(448.0)] * 8, "b": [e(448.0)] * 8, "bias": 0},  # float:5:3 overflows to inf
            {"a": [e(448.0)] * 5 + [e(-448.0)] * 3, "b": [e(448.0)] * 8, "bias": 0},
        ]
        _run(spec, tiles)


def test_pe_takes_float_formats_only():
    f = parse_format("fp8_e4m3")
    with pytest.raises(FormatError, match="float accumulator"):
        FloatAccPE(MacSpec(f, f, f, k_max=4))


def test_array_of_float_acc_pes_and_refusals():
    """A 2x3 MacArray with a float accumulator is FloatAccPEs (latency 2); fixed formats are one line."""
    from fewbits.hw.mac import MacArray, make_pe

    f = parse_format("fp8_e4m3")
    spec = MacSpec(f, f, parse_format("bf16"), acc_fmt="float:5:3,chunk=2", rows=2, cols=3, k_max=5)
    arr = MacArray(spec)
    assert arr.latency == 2 and isinstance(make_pe(spec), FloatAccPE)
    rng = random.Random(91)
    tiles = []
    for K in (1, 5, 3, 4):
        tiles.append({"a": [_codes(f, rng, K) for _ in range(2)],
                      "b": [_codes(f, rng, 3) for _ in range(K)], "bias": _codes(spec.bias_fmt, rng, 3)})
    outs, lats = run_tiles(arr, tiles)
    assert set(lats) == {2}
    for (z, ovf), t in zip(outs, tiles):
        wz, wo = mac_reference(torch.tensor(t["a"]), torch.tensor(t["b"]), f, f, spec.acc_fmt, spec.out_fmt,
                               torch.tensor(t["bias"]), spec.bias_fmt)
        assert z == wz.tolist() and ovf == wo.tolist()
    fx = parse_format("fixed:8:4")
    with pytest.raises(FormatError, match="float accumulator"):
        MacArray(MacSpec(fx, fx, fx, acc_fmt="fp32", k_max=4))


@pytest.mark.parametrize("ops,k_max", [("fp16", 6), ("fp8_e4m3", 32)])
def test_pe_window_edges(ops, k_max):
    """The window's ends: the smallest products (subnormal x subnormal) and k_max largest products
    of one sign plus the largest bias, with an fp32 accumulator (s reaches its bound)."""
    f = parse_format(ops)
    e = lambda v: int(f.encode(torch.tensor([v], dtype=torch.float64))[0])  # noqa: E731
    tiny = f.decode(torch.tensor([1])).item()
    spec = MacSpec(f, f, parse_format("fp32"), acc_fmt="fp32", bias_fmt=ops, k_max=k_max)
    tiles = [{"a": [e(tiny)], "b": [e(tiny)], "bias": 0},
             {"a": [e(tiny)] * 3, "b": [e(-tiny)] * 3, "bias": 0},
             {"a": [e(f.max)] * k_max, "b": [e(f.max)] * k_max, "bias": e(f.max)},
             {"a": [e(-f.max)] * k_max, "b": [e(f.max)] * k_max, "bias": e(-f.max)}]
    _run(spec, tiles)


# ---- the adder's hard cases: cancellation, ties, sticky bits, subnormals, overflow, specials -------------
def _value(fmt, code):
    return float(fmt.decode(torch.tensor([code]))[0])


def _pow2_code(fmt, e):
    return int(fmt.encode(torch.tensor([math.ldexp(1.0, e)], dtype=torch.float64))[0])


def _running_sum(spec, a, b, bias):
    """The accumulator's value after the products so far (the golden model, output = the accumulator)."""
    fmt = spec.acc_fmt.fmt
    if not a:
        return _value(fmt, int(fmt.encode(torch.tensor([_value(spec.bias_fmt, bias)], dtype=torch.float64))[0]))
    z, _ = mac_reference(torch.tensor([a]), torch.tensor(b).reshape(-1, 1), spec.a_fmt, spec.b_fmt, spec.acc_fmt,
                         fmt, torch.tensor([bias]), spec.bias_fmt)
    return _value(fmt, int(z[0, 0]))


def _product_near(spec, rng, target):
    """(a, b) codes with a * b close to ``target``: a a power of two (or 1 + 2**-man times one), b = target / a."""
    fa, fb = spec.a_fmt, spec.b_fmt
    if target == 0 or not math.isfinite(target):
        return 0, rng.randrange(1 << fb.width)
    ea = max(fa.emin - fa.man, min(fa.emax, round(math.log2(abs(target)) / 2) + rng.randint(-2, 2)))
    av = math.ldexp(1.0 + (2.0 ** -fa.man if rng.random() < 0.3 else 0.0), ea)
    a = int(fa.encode(torch.tensor([av], dtype=torch.float64))[0])
    av = _value(fa, a)
    b = int(fb.encode(torch.tensor([target / av], dtype=torch.float64))[0]) if av else 0
    return a, b


def _hard_tile(spec, rng, K):
    """A tile built product by product against the running sum: each k cancels it (exactly or nearly, at
    exponent difference 0, 1, 2), lands on a tie or just beside one (half an ulp, a sticky-sized tail),
    or is random, subnormal, the largest product, or (rarely) NaN/inf."""
    fa, fb, fmt = spec.a_fmt, spec.b_fmt, spec.acc_fmt.fmt
    bias = _codes(spec.bias_fmt, rng, 1)[0] if rng.random() < 0.7 else 0
    a, b = [], []
    for k in range(K):
        s = _running_sum(spec, a, b, bias)
        ulp = math.ldexp(1.0, max(math.frexp(s)[1] - 1, fmt.emin) - fmt.man) if s and math.isfinite(s) else 0.0
        kind = rng.choice(["cancel", "cancel", "near", "tie", "tie", "sticky", "sticky", "negate", "random",
                           "subnormal", "max"] + (["special"] if k % 5 == 4 else []))
        if kind == "cancel":       # -s, -s/2, -s/4, -2s: exponent difference 0, 1, 2 (and the other way)
            x, y = _product_near(spec, rng, -s * rng.choice([1, 1, 0.5, 0.25, 2, 0.75]))
        elif kind == "near":       # -s off by a few ulps of s
            x, y = _product_near(spec, rng, -s + rng.choice([-3, -1, 1, 2]) * ulp)
        elif kind == "tie":        # half an ulp of s (either sign), or 3/2 of one
            x, y = _product_near(spec, rng, rng.choice([-1, 1]) * rng.choice([0.5, 0.5, 1.5]) * ulp)
        elif kind == "sticky":     # far below the round bit, or a tie plus a tail
            tail = ulp * 2.0 ** -rng.randint(2, 14)
            x, y = _product_near(spec, rng, rng.choice([-1, 1]) * (rng.choice([0, 0.5]) * ulp + tail))
        elif kind == "negate" and a:   # cancels the previous product exactly
            x, y = a[-1] ^ (1 << (fa.width - 1)), b[-1]
        elif kind == "subnormal":
            x, y = rng.randrange(1, 1 << fa.man), rng.choice([rng.randrange(1, 1 << fb.man), _codes(fb, rng, 1)[0]])
            x |= rng.randrange(2) << (fa.width - 1)
        elif kind == "max":
            x = int(fa.encode(torch.tensor([rng.choice([1, -1]) * fa.max], dtype=torch.float64))[0])
            y = _pow2_code(fb, fb.emax)
        elif kind == "special":
            x, y = _codes(fa, rng, 1, specials=True)[0], _codes(fb, rng, 1)[0]
        else:
            x, y = _codes(fa, rng, 1)[0], _codes(fb, rng, 1)[0]
        a.append(x)
        b.append(y)
    return {"a": a, "b": b, "bias": bias}


HARD = [  # a/b, accumulator, output, bias, k_max
    ("fp16", "fp32", "fp16", "fp16", 8),                       # the design
    ("fp16", "fp32,round=rtz", "bf16", "fp16", 6),
    ("fp16", "fp32,round=rdn", "fp16", "bf16", 6),
    ("fp16", "fp32,round=rna,chunk=2", "fp16", "fp16", 7),
    ("fp8_e4m3", "float:5:3", "bf16", "bf16", 8),              # a narrow accumulator: ties and overflow often
    ("fp8_e4m3", "float:5:3,round=rtz,chunk=3", "fp8_e5m2", "fp8_e4m3", 7),
    ("fp8_e5m2", "float:5:4,round=rdn,chunk=2", "fp16", "fp16", 6),
    ("fp8_e4m3", "float:4:3,round=rna,special=fn", "fp8_e4m3", "fp8_e4m3", 5),
    ("fp8_e4m3", "fp16", "fp16", "fp8_e4m3", 6),               # subnormal running sums and products
    ("fp8_e4m3", "float:8:10,chunk=4", "bf16", "fp8_e4m3", 9),
    ("bf16", "fp32,chunk=3", "bf16", "bf16", 7),
    ("fp32", "fp32", "fp32", "fp32", 5),
]


@pytest.mark.parametrize("seed", [3, 4], ids=lambda s: f"seed{s}")
@pytest.mark.parametrize("ops,acc,out,bias,k_max", HARD, ids=[f"{c[0]}-{c[1]}" for c in HARD])
def test_pe_hard_cases(ops, acc, out, bias, k_max, seed):
    rng = random.Random(f"{seed}-{ops}-{acc}")
    f = parse_format(ops)
    spec = MacSpec(f, f, parse_format(out), acc_fmt=acc, bias_fmt=bias, k_max=k_max)
    Ks = [1, k_max, k_max - 1, 2, 1, k_max] + [rng.randint(1, k_max) for _ in range(4)]
    _run(spec, [_hard_tile(spec, rng, K) for K in Ks])


def _sticky_tiles(spec):
    """fp16 x fp16 into fp32: 1 + 2**-24 (1 + 2**-10) (a tie and a tail 10 bits below it), 1 - 2**-30 (a tail
    alone) and 1 - 2**-25 (1 + 2**-10) (just beyond the tie below 1): one rounding of the exact sum sees the
    tail in every mode."""
    f = spec.a_fmt
    one = _pow2_code(spec.bias_fmt, 0)
    e = lambda v: int(f.encode(torch.tensor([v], dtype=torch.float64))[0])  # noqa: E731
    return [{"a": [e(2.0 ** -12 * (1 + 2.0 ** -10))], "b": [e(2.0 ** -12)], "bias": one},
            {"a": [e(-2.0 ** -12 * (1 + 2.0 ** -10))], "b": [e(2.0 ** -12)], "bias": one ^ 0x8000},
            {"a": [e(-2.0 ** -15)], "b": [e(2.0 ** -15)], "bias": one},
            {"a": [e(2.0 ** -15)], "b": [e(2.0 ** -15)], "bias": one ^ 0x8000},
            {"a": [e(-2.0 ** -12 * (1 + 2.0 ** -10))], "b": [e(2.0 ** -13)], "bias": one},
            {"a": [e(1.0), e(-2.0 ** -15)], "b": [e(1.0), e(2.0 ** -15)], "bias": 0}]


@pytest.mark.parametrize("ops,acc", [("fp32", "fp32"), ("bf16", "fp32,chunk=2"), ("fp8_e4m3", "float:4:3")])
def test_negative_sum_rounded_to_zero_keeps_its_sign(ops, acc):
    """A negative product below the accumulator's least subnormal rounds to -0 (not an exact zero), and the
    output conversion keeps the sign; an exact zero sum (x - x) is +0."""
    f = parse_format(ops)
    spec = MacSpec(f, f, parse_format("bf16"), acc_fmt=acc, bias_fmt="bf16", k_max=4)
    tiny = _pow2_code(f, f.q0)
    neg = tiny | (1 << (f.width - 1))
    _run(spec, [{"a": [neg], "b": [tiny], "bias": 0}, {"a": [0, neg], "b": [5, tiny], "bias": 0},
                {"a": [neg, tiny], "b": [tiny, tiny], "bias": 0}])


class _NoSticky(FloatAccPE):
    """Mutant: the bits shifted out of the adder are dropped (no sticky bit)."""

    def align_y(self, m, my, d, W):
        y, _ = super().align_y(m, my, d, W)
        return y, 0


@pytest.mark.parametrize("mode", ["rne", "rna", "rtz", "rdn"])
def test_sticky_bit_decides(mode):
    """Cases decided by the sticky bit alone pass, and a PE without it fails them (the mutant)."""
    spec = MacSpec("fp16", "fp16", "fp32", acc_fmt=f"fp32,round={mode}", bias_fmt="fp16", k_max=4)
    tiles = _sticky_tiles(spec)
    _run(spec, tiles)
    assert _mismatches(spec, tiles, _NoSticky(spec))


def test_rounding_once_per_tile_is_caught():
    """Mutant: the PE of chunk = k_max (one rounding per tile) against the chunk = 1 contract fails the hard cases."""
    spec = MacSpec("fp8_e4m3", "fp8_e4m3", "bf16", acc_fmt="float:5:3", bias_fmt="bf16", k_max=6)
    once = MacSpec("fp8_e4m3", "fp8_e4m3", "bf16", acc_fmt="float:5:3,chunk=6", bias_fmt="bf16", k_max=6)
    rng = random.Random(5)
    tiles = [_hard_tile(spec, rng, 6) for _ in range(6)]
    _run(spec, tiles)
    assert _mismatches(spec, tiles, FloatAccPE(once))


@pytest.mark.parametrize("seed", [6], ids=lambda s: f"seed{s}")
def test_array_hard_cases(seed):
    """A 2x3 MacArray (fp16 x fp16, fp32 accumulator, chunk 2) on tiles whose every element is a hard tile."""
    from fewbits.hw.mac import MacArray

    spec = MacSpec("fp16", "fp16", "bf16", acc_fmt="fp32,chunk=2", bias_fmt="fp16", rows=2, cols=3, k_max=5)
    one = MacSpec("fp16", "fp16", "bf16", acc_fmt="fp32,chunk=2", bias_fmt="fp16", k_max=5)
    rng = random.Random(seed)
    neg = lambda c: c ^ 0x8000  # noqa: E731
    tiles = []
    for K in (1, 5, 3, 4, 5):
        # elements (0, 0) and (1, 1) are hard tiles; column 2 is column 0 negated ((0, 2) = -(0, 0))
        t0, t1 = _hard_tile(one, rng, K), _hard_tile(one, rng, K)
        b = [[t0["b"][k], t1["b"][k], neg(t0["b"][k])] for k in range(K)]
        tiles.append({"a": [t0["a"], t1["a"]], "b": b, "bias": [t0["bias"], t1["bias"], neg(t0["bias"])]})
    outs, lats = run_tiles(MacArray(spec), tiles)
    assert set(lats) == {2}
    for (z, ovf), t in zip(outs, tiles):
        wz, wo = mac_reference(torch.tensor(t["a"]), torch.tensor(t["b"]), spec.a_fmt, spec.b_fmt, spec.acc_fmt,
                               spec.out_fmt, torch.tensor(t["bias"]), spec.bias_fmt)
        assert z == wz.tolist() and ovf == wo.tolist()


@pytest.mark.parametrize("ops", ["bf16", "fp32"])
def test_zero_product_of_a_huge_operand_leaves_a_small_sum(ops):
    """0 times the largest operand: the normalizer leaves its exponent far above a small running sum of 24
    significant bits (2**-70 + 2**-90 (1 + ulp)); it must still be the adder's Y, not shift s out of the adder
    (a zero is recognized by its significand, not its exponent).  (With fp16 or fp8 operands into fp32 the
    smallest running sums have too few bits to lose: there the zero test is not needed.)"""
    f = parse_format(ops)
    e = lambda v: int(f.encode(torch.tensor([v], dtype=torch.float64))[0])  # noqa: E731
    spec = MacSpec(f, f, parse_format("fp32"), acc_fmt="fp32", bias_fmt=ops, k_max=4)
    one_ulp = 1 + 2.0 ** -f.man
    tiles = [{"a": [e(1.0), e(one_ulp), 0], "b": [e(2.0 ** -70), e(2.0 ** -90), e(f.max)], "bias": 0},
             {"a": [e(-1.0), e(one_ulp), e(-0.0), e(3.0)], "b": [e(2.0 ** -70), e(2.0 ** -90), e(f.max), e(1.0)],
              "bias": 0}]
    _run(spec, tiles)
