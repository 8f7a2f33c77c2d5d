"""fastfloat.quantize_float == Float.encode_ovf/decode around every code of small formats."""

import math

import pytest
import torch
from fewbits.sim import Float, Rounding, Special, bf16, fp8_e4m3, fp8_e5m2, fp16
from fewbits.training import fastfloat

MODES = [Rounding.RNE, Rounding.RNA, Rounding.RTZ, Rounding.RDN]
FORMATS = {
    "fp16": fp16, "bf16": bf16, "e4m3": fp8_e4m3, "e5m2": fp8_e5m2,
    "e3m2-nosub": Float(3, 2, subnormals=False), "e3m3-sat": Float(3, 3, special=Special.SAT),
    "e4m3-fn-nosub": Float(4, 3, special=Special.FN, subnormals=False),
}


def neighbourhood(fmt, max_codes=1 << 12) -> torch.Tensor:
    """Every finite value (or a sample of them), the midpoints between neighbours, their float64
    neighbours, beyond the largest value, zeros, infinities and NaN."""
    n = 1 << fmt.width
    codes = torch.arange(n, dtype=torch.int64)
    if n > max_codes:  # bf16 / fp16: both ends of each binade and a stride through the rest
        keep = (codes & ((1 << fmt.man) - 1) < 4) | (codes & ((1 << fmt.man) - 1) >= (1 << fmt.man) - 4) | (codes % 37 == 0)
        codes = codes[keep]
    v = fmt.decode(codes)
    v = v[torch.isfinite(v)].unique()
    mids = (v[1:] + v[:-1]) / 2  # exact in float64 for these formats
    pts = torch.cat([v, mids, torch.tensor([fmt.max * 1.5, -fmt.max * 1.5, fmt.max * 1e10, 1e300, -1e300, 0.0, -0.0,
                                            math.inf, -math.inf, math.nan, 5e-324, -5e-324, fmt.ulp / 3])])
    up = torch.nextafter(pts, torch.full_like(pts, math.inf))
    down = torch.nextafter(pts, torch.full_like(pts, -math.inf))
    return torch.cat([pts, up, down])


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("name", list(FORMATS))
def test_matches_encode_decode(name, mode):
    import dataclasses

    fmt = dataclasses.replace(FORMATS[name], round=mode)
    x = neighbourhood(fmt)
    q = fastfloat.quantize_float(x, fmt)
    codes, ovf = fmt.encode_ovf(x)
    want = fmt.decode(codes)
    same = (q.values == want) | (torch.isnan(q.values) & torch.isnan(want))
    same &= (torch.signbit(q.values) == torch.signbit(want)) | torch.isnan(want)
    bad = (~same).nonzero()
    assert bad.numel() == 0, f"{fmt}: x={x[bad[0]].item()!r} -> {q.values[bad[0]].item()!r}, want {want[bad[0]].item()!r}"
    assert q.overflow == int(ovf.sum()) and q.n == x.numel()
    assert q.overflow > 0


@pytest.mark.parametrize("seed", [41, 42])
def test_random_values(seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(20000, generator=gen, dtype=torch.float64) * torch.exp2(torch.randint(-30, 20, (20000,), generator=gen)).double()
    for fmt in (fp16, bf16, fp8_e4m3):
        q = fastfloat.quantize_float(x, fmt)
        codes, ovf = fmt.encode_ovf(x)
        assert torch.equal(q.values, fmt.decode(codes)) and q.overflow == int(ovf.sum())
