"""quantize: same dtype out, exact values, straight-through gradient (training uses it directly)."""
from __future__ import annotations

import fewbits.sim as S
import pytest
import torch

FORMATS = [S.Fixed(8, 4), S.Fixed(3, 0, signed=False, round=S.RDN), S.Fixed(11, 5, symmetric=True, round=S.RNA),
           S.Fixed(6, 2, overflow=S.WRAP), S.DynamicFixed(8).with_frac(3), S.fp16, S.bf16, S.fp8_e4m3, S.fp8_e5m2,
           S.Float(3, 2, subnormals=False, round=S.RTZ), S.Float(4, 3, special=S.Special.SAT)]


def inputs(seed, dtype):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(257, generator=g, dtype=torch.float64) * 2.0 ** torch.randint(-12, 12, (257,), generator=g)
    x[:4] = torch.tensor([0.0, -0.0, 1e6, -1e6])  # zeros and saturating values too
    return x.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_same_dtype_and_values(fmt, dtype):
    x = inputs(11, dtype)
    q = fmt.quantize(x)
    assert q.dtype == dtype and q.shape == x.shape
    # the float32 result is the float64 result (these formats are float32 subsets)
    assert torch.equal(q.double(), fmt.quantize(x.double()))
    assert torch.equal(fmt.quantize(q), q)  # idempotent: on the grid
    assert torch.equal(q.double(), fmt.decode(fmt.encode(x.double())))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_straight_through_gradient(fmt, dtype):
    x = inputs(12, dtype).reshape(257, 1).repeat(1, 2).requires_grad_()
    q = fmt.quantize(x)
    assert q.requires_grad
    q.sum().backward()
    assert x.grad.dtype == dtype
    assert torch.equal(x.grad, torch.ones_like(x))
    # and through a real expression: d/dx sum(w * quantize(x)) == w
    x.grad = None
    w = torch.arange(x.numel(), dtype=dtype).reshape(x.shape)
    (w * fmt.quantize(x)).sum().backward()
    assert torch.equal(x.grad, w)


def test_no_grad_input_stays_plain():
    x = torch.linspace(-3, 3, 50)
    assert not S.fp16.quantize(x).requires_grad and not S.Fixed(8, 4).quantize(x).requires_grad
