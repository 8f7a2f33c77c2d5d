"""fastint: int8 products of base-128 digits == the exact integer matmul of the codes.

The reference is an int64 matmul of the codes (exact: every sum here is far below 2**63) and,
through ``QuantState.matmul``, ``mac_reference`` (tests/training/test_fastmac.py).
"""

import pytest
import torch
from fewbits.sim import Fixed, Rounding, mac_reference
from fewbits.sim.run import RunSpec
from fewbits.training import fastint
from fewbits.training.qcore import QT, QuantState

pytestmark = pytest.mark.skipif(not fastint.available(), reason="torch._int_mm is not available on this CPU")


def extreme_codes(fmt, shape, gen):
    """Codes at both ends of the range, and random ones."""
    pick = torch.randint(0, 3, shape, generator=gen)
    rnd = torch.randint(fmt.min_code, fmt.max_code + 1, shape, generator=gen)
    return torch.where(pick == 0, fmt.min_code, torch.where(pick == 1, fmt.max_code, rnd))


@pytest.mark.parametrize("width", [2, 7, 8, 9, 11, 12, 15, 16, 21, 22])  # 22 bits: four digits, refused
@pytest.mark.parametrize("symmetric", [False, True])
def test_digits_recombine_to_the_codes(width, symmetric):
    fmt = Fixed(width, width // 2, symmetric=symmetric)
    gen = torch.Generator().manual_seed(width)
    codes = torch.cat([extreme_codes(fmt, (300,), gen), torch.arange(-40, 41).clamp(fmt.min_code, fmt.max_code)])
    tops = fastint._tops(max(-fmt.min_code, fmt.max_code))
    if not tops:  # 2**21 needs a fourth digit: no plan, the float64 path
        assert width == 22 and fastint.plan(1, fmt, fmt) is None
        return
    d = fastint.digits(fmt.decode(codes), fmt, len(tops))
    back = sum(d[p].to(torch.int64) * 128 ** p for p in range(len(tops)))
    assert torch.equal(back, codes)
    for p, top in enumerate(tops):
        assert int(d[p].abs().max()) <= top <= 127


SEED = 61


@pytest.mark.parametrize("case", [
    # (width, frac) of a and b, bias (width, frac) or None, K, M, N: the paper's dfixed 10/12
    # widths, three-digit codes, one digit, K = 1
    ((11, 9), (11, 4), (13, 6), 300, 7, 5),
    ((11, 9), (11, 4), None, 784, 3, 9),
    ((21, 15), (16, 10), (21, 3), 200, 4, 6),
    ((8, 0), (7, 2), None, 1000, 5, 5),
    ((11, 5), (11, 5), (11, 5), 1, 6, 4),
    ((11, 5), (2, 0), None, 50, 1, 7),  # one row (a bias gradient's row of ones is M = 1)
    ((11, 5), (11, 5), None, 50, 6, 1),
], ids=lambda c: "-".join(map(str, c)))
@pytest.mark.parametrize("layout", ["rows", "a-transposed", "b-transposed", "col-major"])
def test_exact_product_is_the_integer_matmul(case, layout):
    (wa, fa), (wb, fb), bias, K, M, N = case
    gen = torch.Generator().manual_seed(SEED + K)
    af, bf = Fixed(wa, fa, symmetric=True, round=Rounding.RNA), Fixed(wb, fb)
    ca, cb = extreme_codes(af, (M, K), gen), extreme_codes(bf, (K, N), gen)
    a, b = QT(af.decode(ca), None, af), QT(bf.decode(cb), None, bf)
    if layout == "a-transposed":
        a = QT(af.decode(ca.t().contiguous()), None, af).t()
    if layout == "b-transposed":
        b = QT(bf.decode(cb.t().contiguous()), None, bf).t()
    z = None
    want = ca @ cb  # int64: exact
    if bias is not None and layout != "col-major":
        zf = Fixed(*bias)
        cz = extreme_codes(zf, (N,), gen)
        z = QT(zf.decode(cz), None, zf)
    assert fastint.plan(K, af, bf) is not None
    got = fastint.exact_product(a, b, z, col_major=layout == "col-major", min_k=0)
    if z is not None:
        got = got - z.values  # exact: the bias sits on a grid the sums share below 2**53
    if layout == "col-major":
        assert got.t().is_contiguous()
    assert torch.equal(got * 2.0 ** (fa + fb), want.to(torch.float64))


def test_int32_bound_is_tight():
    """K * 127 * 127 must stay below 2**31: at K = 133145 an int32 sum of 127 * 127 products wraps, and
    ``plan`` refuses (the float64 path then gives the exact sum); at 133144 it is exact."""
    fmt = Fixed(8, 0, symmetric=True)  # one digit, |code| <= 127
    ok, bad = 133144, 133145
    assert ok * 127 * 127 < 2 ** 31 <= bad * 127 * 127
    assert fastint.plan(ok, fmt, fmt) is not None
    assert fastint.plan(bad, fmt, fmt) is None
    out = Fixed(40, 0)
    for k in (ok, bad):
        a = QT(torch.full((1, k), 127.0, dtype=torch.float64), None, fmt)
        qs = QuantState(RunSpec(out, out))
        z = qs.matmul("t", a, a.t(), "z")
        ref, _ = mac_reference(a.codes, a.t().codes, fmt, fmt, None, out)
        assert int(z.codes[0, 0]) == int(ref[0, 0]) == k * 127 * 127


def test_digits_are_cached_and_follow_a_transpose():
    fmt = Fixed(11, 6)
    gen = torch.Generator().manual_seed(SEED)
    w = QT(fmt.decode(extreme_codes(fmt, (30, 20), gen)), None, fmt)
    x = QT(fmt.decode(extreme_codes(fmt, (4, 30), gen)), None, fmt)
    fastint.exact_product(x, w, None, min_k=0)
    assert w.digits is not None
    wt = w.t()
    assert wt.digits is not None and wt.digits.shape[1:] == (20, 30)
    d = QT(fmt.decode(extreme_codes(fmt, (4, 20), gen)), None, fmt)
    got = fastint.exact_product(d, wt, None, min_k=0)
    assert torch.equal(got * 2.0 ** 12, (d.codes @ wt.codes).to(torch.float64))
