"""mac_reference against the plain-Python integer/Fraction loop in oracles.mac."""
from __future__ import annotations

import random

import fewbits.sim as S
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from . import oracles as O
from .helpers import model_of

ROUNDS = [S.RNE, S.RNA, S.RTZ, S.RDN]
ROUND_OF = {"rne": S.RNE, "rna": S.RNA, "rtz": S.RTZ, "rdn": S.RDN}
HUGE = 1 << 20  # oracle accumulator width standing in for "wide enough": no wrap can happen


def acc_model(acc, frac_if_none):
    if acc is None:
        return O.AccModel(HUGE, frac_if_none, "rne")
    return O.AccModel(acc.width, acc.frac, acc.round.value)


def run_both(a, b, fa, fb, acc, out, bias=None, bias_fmt=None, shift=None, exact_frac=None):
    """(sim z, sim flags, oracle z, oracle flags) as nested lists."""
    kw = {}
    if bias is not None:
        kw["bias_codes"] = torch.tensor(bias, dtype=torch.int64)
    if bias_fmt is not None:
        kw["bias_fmt"] = bias_fmt
    if shift is not None:
        kw["shift"] = shift
    z, ovf = S.mac_reference(torch.tensor(a, dtype=torch.int64), torch.tensor(b, dtype=torch.int64),
                             fa, fb, acc, out, **kw)
    assert z.dtype == torch.int64 and ovf.dtype == torch.bool
    assert tuple(z.shape) == tuple(ovf.shape) == (len(a), len(b[0]))
    wz, wo = O.mac(a, b, model_of(fa), model_of(fb), acc_model(acc, exact_frac), model_of(out), bias,
                   model_of(bias_fmt) if bias_fmt is not None else None, shift)
    return z.tolist(), ovf.tolist(), wz, wo


def assert_same(got_z, got_o, want_z, want_o, ctx, flags_mask=None):
    for r, (gz, wz) in enumerate(zip(got_z, want_z)):
        for c, (g, w) in enumerate(zip(gz, wz)):
            assert g == w, f"{ctx}: z[{r},{c}] = {g:#x}, want {w:#x}"
    for r, (go, wo) in enumerate(zip(got_o, want_o)):
        for c, (g, w) in enumerate(zip(go, wo)):
            if flags_mask is None or flags_mask[r][c]:
                assert g == w, f"{ctx}: overflow[{r},{c}] = {g}, want {w}"


def rand_codes(rng: random.Random, m: O.FixedModel, n, extreme=0.25):
    out = []
    for _ in range(n):
        u = rng.random()
        if u < extreme / 2:
            out.append(m.min_code)
        elif u < extreme:
            out.append(m.max_code)
        else:
            out.append(rng.randint(m.min_code, m.max_code))
    return out


def matrix(rng, m, rows, cols, extreme=0.25):
    return [[m.pattern(c) for c in rand_codes(rng, m, cols, extreme)] for _ in range(rows)]


def rand_fixed(rng, wmax=16):
    w = rng.choice([1, 2, 3, rng.randint(2, wmax), rng.randint(2, wmax), wmax])
    signed = rng.random() < 0.7 or w == 1 and rng.random() < 0.5
    return S.Fixed(w, rng.randint(-4, 10), signed=signed)


# ---------------------------------------------------------------- fixed point operands
@pytest.mark.parametrize("seed", range(60))
def test_fixed_random(seed):
    rng = random.Random(seed)
    R, K, C = rng.randint(1, 9), rng.randint(1, 9), rng.randint(1, 9)
    wmax = 16 if seed % 4 else 33  # some products beyond 64 bits
    fa, fb = rand_fixed(rng, wmax), rand_fixed(rng, wmax)
    ma, mb = model_of(fa), model_of(fb)
    pf = fa.frac + fb.frac
    sym = rng.random() < 0.2
    out = S.Fixed(rng.randint(2, 40 if seed % 5 else 64), pf - rng.randint(-3, 20), signed=sym or rng.random() < 0.8,
                  round=rng.choice(ROUNDS), overflow=S.SAT if sym else rng.choice([S.SAT, S.WRAP]), symmetric=sym)
    if rng.random() < 0.4:  # a narrower accumulator, which wraps
        acc = S.Accumulator(rng.randint(2, ma.width + mb.width + 3), pf, overflow=S.WRAP)
    else:
        acc = None
    bias, bias_fmt = None, None
    if rng.random() < 0.6:
        if rng.random() < 0.5 and out.frac <= pf:
            bias = [model_of(out).pattern(x) for x in rand_codes(rng, model_of(out), C)]
        else:
            bias_fmt = S.Fixed(rng.randint(1, 20), pf - rng.randint(0, 6), signed=rng.random() < 0.7)
            bias = [model_of(bias_fmt).pattern(x) for x in rand_codes(rng, model_of(bias_fmt), C)]
    a, b = matrix(rng, ma, R, K), matrix(rng, mb, K, C)
    got_z, got_o, want_z, want_o = run_both(a, b, fa, fb, acc, out, bias, bias_fmt, exact_frac=pf)
    assert_same(got_z, got_o, want_z, want_o, f"seed={seed} {fa} x {fb} acc={acc} out={out} bias={bias_fmt}")


@pytest.mark.parametrize("seed", range(100, 108))
def test_fixed_all_rounding_modes_and_overflows(seed):
    """One product matrix, every output rounding mode and overflow mode: all must match."""
    rng = random.Random(seed)
    fa, fb = S.Fixed(6, 3), S.Fixed(5, 2, signed=seed % 2 == 0)
    a, b = matrix(rng, model_of(fa), 4, 7), matrix(rng, model_of(fb), 7, 5)
    for r in ROUNDS:
        for o in (S.SAT, S.WRAP):
            for w, f in ((4, 2), (6, 0), (9, 5), (3, -1)):
                out = S.Fixed(w, f, round=r, overflow=o)
                assert_same(*run_both(a, b, fa, fb, None, out, exact_frac=5), f"seed={seed} out={out}")


def test_accumulator_wrap_is_modular():
    """A deliberately narrow WRAP accumulator: the sum wraps modulo 2**width before requantization."""
    fa = S.Fixed(8, 0)
    a = [[127] * 9, [-128] * 9, [127, -128] * 4 + [5]]
    b = [[127, -128, 3] for _ in range(9)]
    exact = run_both(a, b, fa, fa, None, S.Fixed(24, 0), exact_frac=0)[0]
    for width in (8, 12, 16, 17, 19):
        acc = S.Accumulator(width, 0, overflow=S.WRAP)
        got_z, got_o, want_z, want_o = run_both(a, b, fa, fa, acc, S.Fixed(24, 0), exact_frac=0)
        assert_same(got_z, got_o, want_z, want_o, f"acc={acc}")
        if width < 18:  # 9 * 2**14 needs 19 bits: the narrow ones really wrapped
            assert got_z != exact, width


# ---------------------------------------------------------------- dynamic fixed point
@pytest.mark.parametrize("seed", range(200, 212))
def test_dynamic_fixed_random(seed):
    rng = random.Random(seed)
    R, K, C = rng.randint(1, 9), rng.randint(1, 9), rng.randint(1, 9)
    da = S.DynamicFixed(rng.randint(2, 12), round=rng.choice(ROUNDS)).with_frac(rng.randint(-3, 8))
    db = S.DynamicFixed(rng.randint(2, 12), signed=rng.random() < 0.7).with_frac(rng.randint(-3, 8))
    do = S.DynamicFixed(rng.randint(2, 12), round=rng.choice(ROUNDS),
                        overflow=rng.choice([S.SAT, S.WRAP])).with_frac(rng.randint(-6, 10))
    pf = da.frac + db.frac
    a, b = matrix(rng, model_of(da), R, K), matrix(rng, model_of(db), K, C)
    bias = [model_of(do).pattern(x) for x in rand_codes(rng, model_of(do), C)] if do.frac <= pf else None
    got = run_both(a, b, da, db, None, do, bias, exact_frac=pf)
    assert_same(*got, f"seed={seed} {da} x {db} -> {do}")
    # the same numbers through the equivalent static Fixed formats
    z2, o2 = S.mac_reference(torch.tensor(a), torch.tensor(b), da.fixed, db.fixed, None, do.fixed,
                             bias_codes=None if bias is None else torch.tensor(bias))
    assert z2.tolist() == got[0] and o2.tolist() == got[1]


@pytest.mark.parametrize("seed", range(250, 256))
def test_dynamic_fixed_explicit_accumulator_follows_fracs(seed):
    """SIM_API: with dynamic operands the accumulator's grid is fa + fb (its width as given)."""
    rng = random.Random(seed)
    da = S.DynamicFixed(8).with_frac(rng.randint(-2, 6))
    db = S.DynamicFixed(6, signed=seed % 2 == 0).with_frac(rng.randint(-2, 6))
    do = S.DynamicFixed(10, round=rng.choice(ROUNDS), overflow=rng.choice([S.SAT, S.WRAP])).with_frac(rng.randint(-4, 8))
    pf = da.frac + db.frac
    acc = S.Accumulator(rng.randint(8, 16), rng.randint(-5, 20), overflow=S.WRAP)  # frac: replaced by fa + fb
    a, b = matrix(rng, model_of(da), 3, 9), matrix(rng, model_of(db), 9, 4)
    z, o = S.mac_reference(torch.tensor(a), torch.tensor(b), da, db, acc, do)
    wz, wo = O.mac(a, b, model_of(da), model_of(db), O.AccModel(acc.width, pf), model_of(do))
    assert z.tolist() == wz and o.tolist() == wo, f"seed={seed} {da} x {db} acc={acc} -> {do}"


@pytest.mark.parametrize("seed", range(300, 306))
def test_explicit_shift_overrides(seed):
    """shift= (dynamic fixed point's runtime input) replaces acc.frac - out.frac."""
    rng = random.Random(seed)
    da, db = S.DynamicFixed(8).with_frac(4), S.DynamicFixed(8).with_frac(3)
    do = S.DynamicFixed(8, round=rng.choice(ROUNDS))
    a, b = matrix(rng, model_of(da), 3, 6), matrix(rng, model_of(db), 6, 4)
    for shift in (0, 1, 5, 7, 12):
        assert_same(*run_both(a, b, da, db, None, do, shift=shift, exact_frac=7), f"seed={seed} shift={shift}")


@pytest.mark.parametrize("seed", range(310, 322))
def test_bias_shift_puts_the_bias_on_its_own_grid(seed):
    """bias_shift= (the hardware's in_bias_shift): the bias is exact at its own grid fa + fb - bias_shift,
    coarser or finer than the products, against the exact oracle (a wide accumulator covering it)."""
    rng = random.Random(seed)
    da = S.DynamicFixed(rng.randint(2, 10)).with_frac(rng.randint(-2, 6))
    db = S.DynamicFixed(rng.randint(2, 8), signed=seed % 3 != 0).with_frac(rng.randint(-2, 6))
    do = S.DynamicFixed(rng.randint(2, 12), round=rng.choice(ROUNDS), overflow=rng.choice([S.SAT, S.WRAP]))
    dz = S.DynamicFixed(rng.randint(2, 12), signed=seed % 4 != 1)
    pf, K = da.frac + db.frac, rng.randint(1, 7)
    acc = S.Accumulator(40, 0)  # frac: fa + fb; wide enough that nothing wraps here
    a, b = matrix(rng, model_of(da), 3, K), matrix(rng, model_of(db), K, 5)
    for shift, bias_shift in ((rng.randint(1, 12), rng.randint(-14, -1)), (rng.randint(-4, 12), rng.randint(0, 20)),
                              (rng.randint(1, 6), -1), (rng.randint(-3, 3), 0)):
        fz = dz.with_frac(pf - bias_shift)
        bias = [model_of(fz).pattern(c) for c in rand_codes(rng, model_of(fz), 5, extreme=0.5)]
        z, o = S.mac_reference(torch.tensor(a), torch.tensor(b), da, db, acc, do, torch.tensor(bias), dz,
                               shift=shift, bias_shift=bias_shift)
        out = do.with_frac(pf - shift)
        wz, wo = O.mac(a, b, model_of(da), model_of(db), O.AccModel(HUGE, max(pf, fz.frac)), model_of(out),
                       bias, model_of(fz))
        assert z.tolist() == wz and o.tolist() == wo, f"seed={seed} shift={shift} bias_shift={bias_shift} {fz}"


@pytest.mark.parametrize("seed", range(330, 334))
def test_bias_shift_at_the_port_extremes_wraps_like_the_accumulator(seed):
    """|bias_shift| up to 128: a far coarser bias wraps modulo 2**Wacc (to 0), a far finer one only rounds."""
    rng = random.Random(seed)
    da, db = S.DynamicFixed(6).with_frac(rng.randint(0, 4)), S.DynamicFixed(5).with_frac(rng.randint(0, 4))
    do = S.DynamicFixed(7, round=ROUNDS[seed % 4])
    dz = S.DynamicFixed(8)
    pf = da.frac + db.frac
    acc = S.Accumulator(20, 0, overflow=S.WRAP)
    a, b = matrix(rng, model_of(da), 2, 3), matrix(rng, model_of(db), 3, 4)
    bias = [dz.min_code, dz.max_code, 1, -1]
    for shift, bias_shift in ((3, -128), (1, -9), (0, 127), (-5, 19), (2, 20)):
        fz = dz.with_frac(pf - bias_shift)
        d = max(0, -bias_shift)
        z, o = S.mac_reference(torch.tensor(a), torch.tensor(b), da, db, acc, do, torch.tensor(bias), dz,
                               shift=shift, bias_shift=bias_shift)
        wz, wo = O.mac(a, b, model_of(da), model_of(db), O.AccModel(acc.width + d, pf + d), model_of(do.with_frac(pf - shift)),
                       bias, model_of(fz))
        assert z.tolist() == wz and o.tolist() == wo, f"seed={seed} shift={shift} bias_shift={bias_shift}"


def test_bias_shift_defaults_and_errors():
    """Without bias_shift a dynamic bias follows shift (the old callers); a finer bias needs shift >= 1."""
    da, db, do = S.DynamicFixed(6).with_frac(2), S.DynamicFixed(6).with_frac(3), S.DynamicFixed(8, round=S.RNA)
    acc = S.Accumulator(24, 0)
    a, b, bias = torch.tensor([[3, -7]]), torch.tensor([[5], [9]]), torch.tensor([-77])
    old = S.mac_reference(a, b, da, db, acc, do, bias, do, shift=4)
    assert [t.tolist() for t in old] == [t.tolist() for t in S.mac_reference(a, b, da, db, acc, do, bias, do, shift=4,
                                                                             bias_shift=4)]
    with pytest.raises(S.FormatError, match="finer than the product grid"):
        S.mac_reference(a, b, da, db, acc, do, bias, do, shift=0, bias_shift=-1)
    with pytest.raises(S.FormatError, match="finer than the product grid"):
        S.mac_reference(a, b, da, db, acc, S.fp16, bias, do, bias_shift=-2)
    with pytest.raises(S.FormatError, match="bias_shift"):
        S.mac_reference(a, b, da, db, acc, do, bias, do, shift=1, bias_shift=1.5)
    with pytest.raises(S.FormatError, match="bias_shift"):
        S.mac_reference(a, b, da, db, acc, do, torch.tensor([0x3C00]), S.fp16, shift=1, bias_shift=1)


# ---------------------------------------------------------------- float operands
FLOATS = [S.fp8_e4m3, S.fp8_e5m2, S.Float(3, 2), S.Float(4, 3, subnormals=False), S.Float(2, 1, special=S.Special.SAT),
          S.Float(3, 3, special=S.Special.FN), S.fp16, S.bf16, S.Float(5, 4, bias=10, round=S.RNA)]


def float_codes(rng, m: O.FloatModel, n, specials=False, neg_zero=0.0):
    pool = None
    out = []
    for _ in range(n):
        if specials and rng.random() < 0.1:
            nan = m.nan_pattern
            choices = [m.inf_pattern(False), m.inf_pattern(True)] if m.special == "ieee" else []
            if nan is not None:
                choices.append(nan)
            if choices:
                out.append(rng.choice(choices))
                continue
        if rng.random() < neg_zero:
            out.append(1 << (m.exp + m.man))
            continue
        if rng.random() < 0.15:  # +-max: the worst-case products
            out.append(m.pack(rng.random() < 0.5, m.max))
            continue
        if m.width <= 12:
            pool = pool or m.finite_codes()
            out.append(rng.choice(pool))
        else:
            while True:
                c = rng.getrandbits(m.width)
                if rng.random() < 0.2:  # near the top
                    c |= (m.top_field - 1) << m.man
                if not (m.is_nan(c) or m.is_inf(c)) and m.canonical(c):
                    out.append(c)
                    break
    return out


def float_matrix(rng, m, rows, cols, **kw):
    return [float_codes(rng, m, cols, **kw) for _ in range(rows)]


def kulisch_frac(fa, fb):
    return -(model_of(fa).q0 + model_of(fb).q0)


@pytest.mark.parametrize("seed", range(400, 440))
def test_float_random(seed):
    rng = random.Random(seed)
    R, K, C = rng.randint(1, 9), rng.randint(1, 9), rng.randint(1, 9)
    fa, fb = rng.choice(FLOATS), rng.choice(FLOATS)
    out = rng.choice([S.fp16, S.fp32, S.bf16, S.fp8_e4m3, S.fp8_e5m2,
                      S.Float(4, 3, subnormals=False, special=S.Special.SAT),
                      S.Fixed(16, rng.randint(0, 10), round=rng.choice(ROUNDS))])
    out = out if out.kind == "fixed" else S.Float(out.exp, out.man, out.bias, out.subnormals, out.special,
                                                  round=rng.choice(ROUNDS))
    kf = kulisch_frac(fa, fb)
    bias_fmt = None
    bias = None
    if rng.random() < 0.5:
        bias_fmt = rng.choice([f for f in FLOATS if -model_of(f).q0 <= kf])
        bias = float_codes(rng, model_of(bias_fmt), C)
    a = float_matrix(rng, model_of(fa), R, K)
    b = float_matrix(rng, model_of(fb), K, C)
    got = run_both(a, b, fa, fb, None, out, bias, bias_fmt, exact_frac=kf)
    assert_same(*got, f"seed={seed} {fa} x {fb} -> {out} bias={bias_fmt}")


@pytest.mark.parametrize("seed", range(500, 524))
def test_float_narrow_accumulator_rounds_each_product(seed):
    rng = random.Random(seed)
    R, K, C = rng.randint(1, 9), rng.randint(1, 9), rng.randint(1, 9)
    fa, fb = rng.choice(FLOATS), rng.choice(FLOATS)
    kf = kulisch_frac(fa, fb)
    acc = S.Accumulator(rng.randint(8, 40), kf - rng.randint(1, kf + 4), round=rng.choice(ROUNDS), overflow=S.WRAP)
    out = S.Float(5, 10, round=rng.choice(ROUNDS)) if seed % 2 else S.Fixed(24, acc.frac - rng.randint(0, 4))
    a = float_matrix(rng, model_of(fa), R, K)
    b = float_matrix(rng, model_of(fb), K, C)
    got = run_both(a, b, fa, fb, acc, out)
    assert_same(*got, f"seed={seed} {fa} x {fb} acc={acc} -> {out}")


@pytest.mark.parametrize("seed", range(650, 670))
def test_mixed_fixed_and_float_operands(seed):
    """SIM_API lets each operand be Fixed, DynamicFixed or Float: a fixed x float MAC is exact too."""
    rng = random.Random(seed)
    R, K, C = rng.randint(1, 6), rng.randint(1, 6), rng.randint(1, 6)
    fx = rng.choice([S.Fixed(8, 3), S.Fixed(5, 0, signed=False), S.Fixed(12, -2), S.DynamicFixed(6).with_frac(4)])
    fl = rng.choice(FLOATS)
    fa, fb = (fx, fl) if seed % 2 else (fl, fx)
    out = rng.choice([S.fp16, S.Fixed(20, 4, round=rng.choice(ROUNDS)), S.fp32])

    def mat(f, r, c):
        m = model_of(f)
        return matrix(rng, m, r, c) if isinstance(m, O.FixedModel) else float_matrix(rng, m, r, c)

    a, b = mat(fa, R, K), mat(fb, K, C)
    grid = sum(m.frac if isinstance(m, O.FixedModel) else -m.q0 for m in (model_of(fa), model_of(fb)))
    assert_same(*run_both(a, b, fa, fb, None, out, exact_frac=grid), f"seed={seed} {fa} x {fb} -> {out}")


@pytest.mark.parametrize("seed", range(600, 616))
def test_float_special_values(seed):
    """inf/NaN operands follow IEEE (NaN, inf*0, inf-inf -> NaN; else inf dominates); -0 operands are zeros."""
    rng = random.Random(seed)
    R, K, C = rng.randint(1, 6), rng.randint(1, 6), rng.randint(1, 6)
    fa, fb = rng.choice([S.fp16, S.fp8_e5m2, S.Float(3, 2)]), rng.choice([S.fp16, S.fp8_e5m2, S.fp8_e4m3])
    out = rng.choice([S.fp16, S.fp8_e4m3, S.Float(5, 2, round=S.RTZ), S.Fixed(12, 4)])
    ma, mb = model_of(fa), model_of(fb)
    a = float_matrix(rng, ma, R, K, specials=True, neg_zero=0.2)
    b = float_matrix(rng, mb, K, C, specials=True, neg_zero=0.2)
    got = run_both(a, b, fa, fb, None, out, exact_frac=kulisch_frac(fa, fb))
    special = [[any(O.is_special(ma.real(a[r][k])) or O.is_special(mb.real(b[k][c])) for k in range(K))
                for c in range(C)] for r in range(R)]
    # the flag of a non-finite result is not pinned down by SIM_API: compare codes everywhere, flags on finite ones
    assert_same(*got, f"seed={seed} {fa} x {fb} -> {out}", flags_mask=[[not s for s in row] for row in special])


def test_negative_zero_products_give_plus_zero():
    """The accumulator is an integer: an exact zero sum is +0 whatever the signs of the zero products."""
    nz = 1 << 15  # fp16 -0
    a = [[nz, nz, 0x3C00]]
    b = [[0x3C00], [nz], [nz]]  # -0*1 + -0*-0 + 1*-0
    for r in ROUNDS:
        z, o = S.mac_reference(torch.tensor(a), torch.tensor(b), S.fp16, S.fp16, None, S.Float(5, 10, round=r))
        assert z.tolist() == [[0]] and o.tolist() == [[False]]


def test_nan_and_inf_rules():
    inf, ninf, nan, one, zero = 0x7C00, 0xFC00, 0x7E00, 0x3C00, 0
    cases = {  # (a row, b column) -> the IEEE result
        ((inf, one), (one, one)): inf, ((inf, one), (ninf, one)): ninf, ((inf, one), (zero, one)): nan,
        ((inf, inf), (one, ninf)): nan, ((nan, one), (one, one)): nan, ((inf, one), (one, nan)): nan,
        ((ninf, ninf), (one, one)): ninf,
    }
    for (ra, cb), want in cases.items():
        z, _ = S.mac_reference(torch.tensor([list(ra)]), torch.tensor([[x] for x in cb]), S.fp16, S.fp16, None, S.fp16)
        wz, _ = O.mac([list(ra)], [[x] for x in cb], model_of(S.fp16), model_of(S.fp16),
                      O.AccModel(HUGE, 48), model_of(S.fp16))
        assert z.tolist() == wz == [[want]], (ra, cb)


# ---------------------------------------------------------------- bias conversion
def test_bias_not_exact_is_format_error():
    fa = S.Fixed(8, 2)
    acc = S.Accumulator(24, 4)
    bias_fmt = S.Fixed(8, 6)  # finer than the accumulator grid: code 1 = 2**-6 is not on 2**-4
    with pytest.raises(S.FormatError):
        S.mac_reference(torch.ones(1, 2, dtype=torch.int64), torch.ones(2, 1, dtype=torch.int64), fa, fa, acc,
                        S.Fixed(8, 2), bias_codes=torch.tensor([1]), bias_fmt=bias_fmt)


def test_bias_defaults_to_out_format():
    rng = random.Random(700)
    fa, out = S.Fixed(8, 3), S.Fixed(10, 4, round=S.RNA)
    a, b = matrix(rng, model_of(fa), 3, 5), matrix(rng, model_of(fa), 5, 4)
    bias = rand_codes(rng, model_of(out), 4)
    got = run_both(a, b, fa, fa, None, out, bias, exact_frac=6)
    assert_same(*got, "bias in out_fmt")
    got2 = run_both(a, b, fa, fa, None, out, bias, out, exact_frac=6)
    assert got2[:2] == got[:2]


# ---------------------------------------------------------------- K where float32 accumulation is wrong
def test_large_k_fixed_float32_would_differ():
    g = torch.Generator().manual_seed(800)
    fa = S.Fixed(16, 8)
    K = 4096
    a = torch.randint(-(1 << 15), 1 << 15, (2, K), generator=g)
    b = torch.randint(-(1 << 15), 1 << 15, (K, 3), generator=g)
    out = S.Fixed(48, 16)  # shift 0: the output is the exact sum
    z, ovf = S.mac_reference(a, b, fa, fa, None, out)
    wz, wo = O.mac(a.tolist(), b.tolist(), model_of(fa), model_of(fa), O.AccModel(HUGE, 16), model_of(out))
    assert z.tolist() == wz and ovf.tolist() == wo
    f32 = fa.decode(a).float() @ fa.decode(b).float()
    z32 = out.encode(f32.double())
    assert (z32 != z).any(), "float32 accumulation should have lost bits at K=4096 with 16-bit operands"


def test_large_k_fp16_float32_would_differ():
    g = torch.Generator().manual_seed(801)
    K = 4096
    x = S.fp16.quantize(torch.randn(2, K, generator=g, dtype=torch.float64) * 8)
    y = S.fp16.quantize(torch.randn(K, 3, generator=g, dtype=torch.float64) * 8)
    a, b = S.fp16.encode(x), S.fp16.encode(y)
    z, _ = S.mac_reference(a, b, S.fp16, S.fp16, None, S.fp32)
    wz, _ = O.mac(a.tolist(), b.tolist(), model_of(S.fp16), model_of(S.fp16), O.AccModel(HUGE, 48), model_of(S.fp32))
    assert z.tolist() == wz
    z32 = S.fp32.encode((x.float() @ y.float()).double())
    assert (z32 != z).any(), "float32 accumulation should differ from the exact sum rounded once"


def test_wide_operands_float64_would_differ():
    """Products of 30-bit codes need 60 bits: even a float64 matmul is wrong, mac_reference is not."""
    g = torch.Generator().manual_seed(802)
    fa = S.Fixed(31, 0)
    a = torch.randint(-(1 << 30), 1 << 30, (3, 40), generator=g)
    b = torch.randint(-(1 << 30), 1 << 30, (40, 2), generator=g)
    exact = [[sum(x * y for x, y in zip(row, col)) for col in zip(*b.tolist())] for row in a.tolist()]
    z64 = [[int(v) for v in row] for row in (a.double() @ b.double()).tolist()]
    assert z64 != exact
    for out in (S.Fixed(62, -8, round=S.RNE), S.Fixed(40, -30, round=S.RDN), S.Fixed(32, -33, round=S.RNA)):
        z, ovf = S.mac_reference(a, b, fa, fa, None, out)
        wz, wo = O.mac(a.tolist(), b.tolist(), model_of(fa), model_of(fa), O.AccModel(HUGE, 0), model_of(out))
        assert z.tolist() == wz and ovf.tolist() == wo, str(out)


@pytest.mark.parametrize("out", [S.Fixed(64, 0), S.Fixed(63, 2, signed=False), S.Fixed(64, -3, overflow=S.WRAP)],
                         ids=str)
def test_64_bit_outputs(out):
    """Fixed widths go to 64 (SIM_API); a MAC output of 63/64 bits is a Fixed like any other."""
    g = torch.Generator().manual_seed(803)
    fa = S.Fixed(32, 0)
    a = torch.randint(-(1 << 31), 1 << 31, (3, 9), generator=g)
    b = torch.randint(-(1 << 31), 1 << 31, (9, 2), generator=g)
    z, ovf = S.mac_reference(a, b, fa, fa, None, out)
    wz, wo = O.mac(a.tolist(), b.tolist(), model_of(fa), model_of(fa), O.AccModel(HUGE, 0), model_of(out))
    assert z.tolist() == wz and ovf.tolist() == wo


def test_shapes_and_dtypes():
    fa = S.Fixed(8, 0)
    for R, K, C in ((1, 1, 1), (1, 9, 1), (9, 1, 9), (2, 3, 4)):
        z, o = S.mac_reference(torch.ones(R, K, dtype=torch.int64), torch.ones(K, C, dtype=torch.int64), fa, fa, None,
                               S.Fixed(16, 0), bias_codes=torch.arange(C))
        assert z.tolist() == [[K + c for c in range(C)]] * R and o.dtype == torch.bool and not o.any()


# ---------------------------------------------------------------- slow sweeps (pytest -m slow)
@pytest.mark.slow
@pytest.mark.parametrize("seed", range(60, 1500))
def test_fixed_random_sweep(seed):
    test_fixed_random(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10_000, 10_760))
def test_float_random_sweep(seed):
    test_float_random(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20_000, 20_476))
def test_float_narrow_accumulator_sweep(seed):
    test_float_narrow_accumulator_rounds_each_product(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(30_000, 30_384))
def test_float_special_values_sweep(seed):
    test_float_special_values(seed)


# ---------------------------------------------------------------- the hardware-style integer rounder
@settings(derandomize=True, database=None, deadline=None, max_examples=200)
@given(st.lists(st.tuples(st.integers(-(1 << 63), (1 << 63) - 1), st.integers(1, 66)), min_size=1, max_size=40),
       st.sampled_from(O.MODES))
def test_shift_round(cases, mode):
    """shift_round(p, sh, mode) == round(p / 2**sh) exactly, with sh an int or a per-element tensor."""
    from fewbits.sim.mac import shift_round
    p = torch.tensor([c for c, _ in cases], dtype=torch.int64)
    sh = torch.tensor([s for _, s in cases], dtype=torch.int64)
    want = [O.round_int(O.Fraction(c) / O.pow2(s), mode) for c, s in cases]
    assert shift_round(p, sh, ROUND_OF[mode]).tolist() == want
    s0 = cases[0][1]
    assert shift_round(p, s0, ROUND_OF[mode]).tolist() == [O.round_int(O.Fraction(c) / O.pow2(s0), mode)
                                                          for c, _ in cases]
