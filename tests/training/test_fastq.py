"""fastq.quantize_fixed == the format's own encode_ovf/decode, and its counts == the controller's rule."""

import math

import pytest
import torch

from fewbits.sim import DynamicFixed, Fixed, Overflow, Rounding, mac_reference
from fewbits.training import fastq
from fewbits.training.precision import Precision
from fewbits.training.qcore import QT, QuantState, _exact_float64_sum
from fewbits.training.ranges import RangeController

MODES = [Rounding.RNE, Rounding.RNA, Rounding.RTZ, Rounding.RDN]
# (width, frac, signed, symmetric): tiny, paper-sized, negative frac, frac > width, the widest accepted
FORMATS = [(2, 0, True, False), (3, 1, True, True), (5, 2, False, False), (8, 4, True, False),
           (11, 10, True, True), (11, -3, True, False), (13, 20, True, True), (16, 8, False, False),
           (24, 12, True, False), (52, 30, True, False), (52, 0, False, False)]


def fid(c):
    w, f, s, sym = c
    return f"{'s' if s else 'u'}{w}.{f}{'sym' if sym else ''}"


def edge_values(fmt) -> torch.Tensor:
    """Every tie between codes near zero and both ends, their float64 neighbours, the ends and beyond."""
    u = fmt.ulp
    pts = [0.0, -0.0, math.inf, -math.inf, 1e300, -1e300, 5e-324, -5e-324]
    codes = list(range(fmt.min_code - 3, min(fmt.min_code + 4, 0))) + list(range(-4, 5)) \
        + list(range(max(fmt.max_code - 3, 0), fmt.max_code + 4))
    for c in codes:
        for v in (c * u, (c + 0.5) * u, (c + 0.25) * u):
            pts += [v, math.nextafter(v, math.inf), math.nextafter(v, -math.inf)]
    return torch.tensor(pts, dtype=torch.float64)


def random_values(fmt, seed) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3000, generator=gen, dtype=torch.float64) * (fmt.max * 0.6 + fmt.ulp)
    ties = (torch.randint(fmt.min_code - 2, fmt.max_code + 2, (500,), generator=gen).double() + 0.5) * fmt.ulp
    return torch.cat([x, ties])


def check(fmt, x):
    """Values, overflow count, narrower count, max and mask against sim and RangeController.observe."""
    assert fastq.supports(fmt)
    q = fastq.quantize_fixed(x, fmt, want_mask=True, want_max=True)
    codes, ovf = fmt.encode_ovf(x)
    want = fmt.decode(codes)
    bad = (q.values != want).nonzero()
    assert bad.numel() == 0, f"{fmt}: x={x[bad[0]].item()!r} gives {q.values[bad[0]].item()!r}, want {want[bad[0]].item()!r}"
    assert torch.equal(q.mask, ovf)
    ctl = RangeController()
    ctl.tracking = True
    ctl.observe("g", codes, ovf, DynamicFixed(fmt.width, signed=fmt.signed, round=fmt.round,
                                              symmetric=fmt.symmetric).with_frac(fmt.frac))
    g = ctl.state("g")
    assert (q.n, q.overflow, q.narrower) == (x.numel(), g.overflow, g.overflow_narrower)
    assert q.max_abs == g.track_max
    return q


def fast_formats():
    """Every FORMATS entry in every rounding mode the fast path takes (RDN needs frac >= 0)."""
    return [pytest.param(Fixed(w, f, signed=s, symmetric=sym, round=m), id=f"{fid((w, f, s, sym))}-{m.value}")
            for (w, f, s, sym) in FORMATS for m in MODES if m is not Rounding.RDN or f >= 0]


@pytest.mark.parametrize("fmt", fast_formats())
def test_edges_match_encode(fmt):
    q = check(fmt, edge_values(fmt))
    assert q.overflow > 0 and q.narrower > q.overflow  # the edge set reaches past both ends


@pytest.mark.parametrize("seed", [11, 12])
@pytest.mark.parametrize("fmt", fast_formats())
def test_random_match_encode(fmt, seed):
    check(fmt, random_values(fmt, seed))


def test_nan_is_code_zero_flagged():
    x = torch.tensor([1.0, math.nan, -math.nan, 100.0], dtype=torch.float64)
    check(Fixed(8, 4), x)
    check(Fixed(8, 4, symmetric=True, round=Rounding.RNA), x)


def test_supports():
    assert fastq.supports(Fixed(52, 3)) and fastq.supports(DynamicFixed(10).with_frac(3))
    assert not fastq.supports(Fixed(53, 3))
    assert not fastq.supports(Fixed(8, 3, overflow=Overflow.WRAP))
    assert not fastq.supports(Fixed(8, -1, round=Rounding.RDN))
    assert fastq.supports(Fixed(8, 0, round=Rounding.RDN))
    assert not fastq.supports(None)


def test_quantize_point_counts_like_the_codes_path():
    """QuantState.quantize (fast) records the same statistics as observe() on encode_ovf's codes."""
    gen = torch.Generator().manual_seed(5)
    qs = QuantState(Precision.parse("dfixed:7", "dfixed:9", paper_bits=True))
    x = torch.randn(400, generator=gen, dtype=torch.float64)
    qs.quantize("g", x)  # sets the range from the max
    qs.controller.state("g").int_bits -= 2  # now some saturate
    qs.controller.state("g").count = qs.controller.state("g").overflow = 0
    qs.controller.state("g").overflow_narrower = 0
    q = qs.quantize("g", x)
    codes, ovf = q.fmt.encode_ovf(x)
    ref = RangeController()
    ref.observe("g", codes, ovf, q.fmt)
    got, want = qs.controller.state("g"), ref.state("g")
    assert want.overflow > 0
    assert (got.count, got.overflow, got.overflow_narrower) == (want.count, want.overflow, want.overflow_narrower)
    assert torch.equal(q.codes, codes)


# ---- the float64 matmul path of QuantState.matmul ------------------------------------------
def extreme_codes(fmt, shape, gen):
    """Codes biased to the ends (most negative, most positive) with some random ones."""
    pick = torch.randint(0, 4, shape, generator=gen)
    rnd = torch.randint(fmt.min_code, fmt.max_code + 1, shape, generator=gen)
    out = torch.where(pick == 0, torch.full(shape, fmt.min_code), torch.where(pick == 1, torch.full(shape, fmt.max_code), rnd))
    return out


@pytest.mark.parametrize("seed", [21, 22, 23])
@pytest.mark.parametrize("case", [
    # a, b, bias, output width, K: the paper's dfixed 10/12 shapes, a bias coarser and finer than
    # the product grid, the paper's 20-bit fixed point at K = 1200, a large K, K = 1
    ((11, 8), (11, 9), (11, 5), 11, 300),
    ((11, 8), (11, 9), (13, 20), 11, 64),
    ((21, 15), (21, 15), (21, 15), 21, 1200),
    ((9, 0), (9, 0), None, 6, 2000),
    ((8, 7), (8, 7), (8, 3), 8, 1),
], ids=lambda c: "x".join(str(v) for v in c) if isinstance(c, tuple) else str(c))
def test_matmul_fast_path_is_mac_reference(case, seed):
    """The output frac is set from the data so that some outputs saturate and most round."""
    (wa, fa), (wb, fb), bias, wo, K = case
    gen = torch.Generator().manual_seed(seed)
    for rnd in (Rounding.RNE, Rounding.RNA):
        af = Fixed(wa, fa, symmetric=True, round=rnd)
        bf = Fixed(wb, fb, round=rnd)
        a = QT(af.decode(extreme_codes(af, (7, K), gen)), None, af)
        b = QT(bf.decode(extreme_codes(bf, (K, 5), gen)), None, bf)
        z = None
        if bias is not None:
            zf = Fixed(*bias, round=rnd)
            z = QT(zf.decode(extreme_codes(zf, (5,), gen)), None, zf)
        approx = (a.values @ b.values + (0 if z is None else z.values)).abs().flatten()
        top = float(approx.kthvalue(int(approx.numel() * 0.95)).values)
        of = Fixed(wo, math.ceil(math.log2((2 ** (wo - 1) - 1) / top)), symmetric=rnd is Rounding.RNA, round=rnd)
        assert _exact_float64_sum(a, b, z)
        qs = QuantState(Precision(of, of))
        seen = []
        qs.mac_hooks.append(lambda tag, a_, b_, bias_, out, ovf: seen.append(ovf))
        out = qs.matmul("t", a, b, "z", z)
        ref, ovf = mac_reference(a.codes, b.codes, af, bf, None, of,
                                 None if z is None else z.codes, None if z is None else z.fmt)
        assert torch.equal(out.codes, ref), f"{rnd}: first mismatch at {(out.codes != ref).nonzero()[0].tolist()}"
        assert torch.equal(seen[0], ovf)
        assert 0 < int(ovf.sum()) < ovf.numel() * 3 // 4, "the case should round, and sometimes saturate"
        assert qs.controller.state("z").overflow == int(ovf.sum())


def test_exactness_bound_is_tight():
    """K * max|a| * max|b| must stay below 2**53 units: at 2**53 the fast path is refused and the
    exact path (mac_reference) gives what float64 would have rounded away."""
    af = Fixed(27, 0)  # max |code| 2**26
    k_ok, k_bad = 1, 2  # 2 * 2**26 * 2**26 = 2**53
    a = lambda k: QT(torch.full((1, k), -2.0 ** 26, dtype=torch.float64), None, af)  # noqa: E731
    assert _exact_float64_sum(a(k_ok), a(k_ok).t(), None)
    assert not _exact_float64_sum(a(k_bad), a(k_bad).t(), None)
    # the refused case still comes out exact (via mac_reference) with a bias one unit below
    bf = Fixed(2, 0)
    bias = QT(torch.tensor([-1.0], dtype=torch.float64), None, bf)
    out_f = Fixed(64, 0)
    qs = QuantState(Precision(out_f, out_f))
    out = qs.matmul("t", a(k_bad), a(k_bad).t(), "z", bias)
    assert int(out.codes[0, 0]) == 2 ** 53 - 1  # float64 would say 2**53
