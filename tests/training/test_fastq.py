"""fastq.quantize_fixed == the format's own encode_ovf/decode, and its counts == the controller's rule."""

import math

import pytest
import torch
from fewbits.sim import DynamicFixed, Fixed, Overflow, Rounding
from fewbits.training import fastq
from fewbits.sim.run import RunSpec
from fewbits.training.qcore import QuantState
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
    qs = QuantState(RunSpec.parse("dfixed:7", "dfixed:9", paper_bits=True))
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


def test_numba_cache_dir_without_touching_the_environment(tmp_path, monkeypatch):
    """Compiling a kernel puts numba's cache under the fewbits cache root and writes nothing to os.environ."""
    import os

    import numba
    from fewbits.training import fastq

    monkeypatch.setenv("FEWBITS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    fastq._numba.cache_clear()
    try:
        fastq._njit()(lambda y: y + 1.0)
        assert "NUMBA_CACHE_DIR" not in os.environ
        assert numba.config.CACHE_DIR == str(tmp_path / "cache" / "numba")
    finally:
        fastq._numba.cache_clear()
