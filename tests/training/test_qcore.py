"""QuantState: the fast fixed-point encode equals the format's own; matmuls are mac_reference calls."""

import itertools

import pytest
import torch

from fewbits.sim import DynamicFixed, Fixed, mac_reference
from fewbits.training.precision import Precision
from fewbits.training.qcore import QT, QuantState, encode_ovf


def _inputs(gen, fmt):
    ulp = 2.0 ** -fmt.frac
    k = torch.randint(-2 ** fmt.width, 2 ** fmt.width, (2000,), generator=gen).to(torch.float64)
    ties = (k + 0.5) * ulp  # exactly half-way between two codes
    rand = torch.randn(3000, generator=gen, dtype=torch.float64) * ulp * 2 ** (fmt.width - 2)
    edges = torch.tensor([0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e300, -1e300, 1e-300,
                          fmt.max, fmt.min, fmt.max + ulp / 2, fmt.min - ulp / 2], dtype=torch.float64)
    return torch.cat([ties, rand, edges, rand.float().double()])


@pytest.mark.parametrize("rnd,symmetric,signed,width,frac", [
    (r, s, g, w, f)
    for r, s, g, (w, f) in itertools.product(["rne", "rna", "rtz", "rdn"], [False, True], [True, False],
                                             [(11, 5), (13, 20), (8, -3), (52, 30)])
    if not (s and not g)
])
def test_fast_encode_equals_the_format(rnd, symmetric, signed, width, frac):
    seed = width * 100 + frac
    gen = torch.Generator().manual_seed(seed)
    for fmt in (Fixed(width, frac, signed=signed, round=rnd, symmetric=symmetric),
                DynamicFixed(width, frac, signed=signed, round=rnd, symmetric=symmetric)):
        x = _inputs(gen, fmt)
        c0, o0 = fmt.encode_ovf(x)
        c1, o1 = encode_ovf(fmt, x)
        assert torch.equal(c0, c1) and torch.equal(o0, o1), fmt


def test_wrap_and_float_formats_use_the_format_itself():
    from fewbits.sim import fp16

    x = torch.linspace(-100, 100, 301, dtype=torch.float64)
    for fmt in (Fixed(8, 2, overflow="wrap"), fp16, Fixed(60, 10)):
        c0, o0 = fmt.encode_ovf(x)
        c1, o1 = encode_ovf(fmt, x)
        assert torch.equal(c0, c1) and torch.equal(o0, o1)


@pytest.mark.parametrize("seed", [0, 1])
def test_matmul_is_mac_reference_on_the_codes(seed):
    gen = torch.Generator().manual_seed(seed)
    qs = QuantState(Precision.parse("dfixed:9", "dfixed:12"))
    a = qs.quantize("a", torch.randn(6, 40, generator=gen, dtype=torch.float64))
    b = qs.quantize("b", torch.randn(40, 5, generator=gen, dtype=torch.float64))
    bias = qs.quantize("bias", torch.randn(5, generator=gen, dtype=torch.float64))
    z = qs.matmul("t", a, b, "z", bias)
    ref, ovf = mac_reference(a.codes, b.codes, a.fmt, b.fmt, None, z.fmt, bias.codes, bias.fmt)
    assert torch.equal(z.codes, ref) and torch.equal(z.values, z.fmt.decode(ref))
    assert qs.controller.state("z").count == 30 and qs.controller.state("z").overflow == int(ovf.sum())


def test_unquantized_run_is_plain_float32():
    qs = QuantState(Precision.parse("fp32", "fp32"))
    x = torch.randn(3, 4)
    q = qs.quantize("g", x)
    assert q.fmt is None and q.codes is None and torch.equal(q.values, x)
    z = qs.matmul("t", q, QT(torch.eye(4)), "z")
    assert torch.equal(z.values, x @ torch.eye(4))
