"""``fastconv``: float32 convolutions of split integer codes give the exact integer sums, and the
lowp convolution that uses them gives the im2col MAC path's (``mac_reference``'s) codes bit for bit.

Worst-case codes (every operand at its largest code, one sign) make every partial sum as large
as the plan's bound allows: a plan one bit looser than ``2**24`` rounds them in float32.
"""

import pytest
import torch
import torch.nn.functional as F
from fewbits.sim import mac_reference
from fewbits.training import fastconv, lowp, lowp_ops
from torch import nn

GEOMS = {  # (C, F, H, k, stride, padding, dilation)
    "c3-k3-p1": (3, 4, 9, 3, 1, 1, 1),
    "c6-k5-s2": (6, 5, 11, 5, 2, 0, 1),
    "c8-k3-d2-p2": (8, 3, 10, 3, 1, 2, 2),
    "c16-k3-s2-p1": (16, 4, 8, 3, 2, 1, 1),
}


def _codes(shape, m, fill, gen):
    if fill == "max":
        return torch.full(shape, float(m), dtype=torch.float64)
    if fill == "min":
        return torch.full(shape, float(-m), dtype=torch.float64)
    return torch.randint(-m, m + 1, shape, generator=gen).to(torch.float64)


def _exact_grads(x, w, d, s, p, dil):
    """Float64 autograd's input and weight gradients of ``conv2d`` (exact: every sum below 2**53 here)."""
    xr, wr = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    F.conv2d(xr, wr, None, s, p, dil).backward(d)
    return xr.grad, wr.grad


@pytest.mark.parametrize("fill", ["max", "min", "random"])
@pytest.mark.parametrize("m", [1023, 2047])
@pytest.mark.parametrize("geom", list(GEOMS))
def test_split_convolutions_are_the_exact_integer_sums(geom, m, fill):
    C, Fo, H, k, s, p, d = GEOMS[geom]
    seed = 500 + m
    gen = torch.Generator().manual_seed(seed)
    B = 7
    x = _codes((B, C, H, H), m, fill, gen)
    w = _codes((Fo, C, k, k), m, "random" if fill == "random" else "max", gen)
    x32, w32 = x.to(torch.float32), w.to(torch.float32)
    sw = fastconv.forward_plan(C * k * k, m, m)
    assert sw is not None and sw.pieces == 2  # these sizes need the cut: one float32 conv would round
    z = fastconv.conv_forward(x32, w32, sw, (s, s), (p, p), (d, d))
    ref = F.conv2d(x, w, None, (s, s), (p, p), (d, d))
    assert z.dtype == torch.float64 and torch.equal(z, ref)
    dd = _codes(ref.shape, m, fill, gen)
    sw = fastconv.forward_plan(Fo * k * k, m, m)
    dx = fastconv.conv_input_grad(dd.to(torch.float32), w32, x.shape, sw, (s, s), (p, p), (d, d))
    rx, rw = _exact_grads(x, w, dd, (s, s), (p, p), (d, d))
    assert dx.dtype == torch.float64 and torch.equal(dx, rx)
    plan = fastconv.weight_grad_plan(ref.shape[2] * ref.shape[3], B, m, m)
    dw = fastconv.conv_weight_grad(x32, dd.to(torch.float32), w.shape, *plan, (s, s), (p, p), (d, d))
    assert dw.dtype == torch.float64 and torch.equal(dw, rw)


def test_plans_respect_the_float32_bound_and_a_looser_one_would_round():
    # 150 terms of 11-bit codes: one float32 conv's sums reach 150 * 1023**2 > 2**24
    assert fastconv.forward_plan(150, 1023, 1023).pieces == 2
    assert fastconv.forward_plan(16, 1023, 1023).pieces == 1  # 16 * 1023**2 < 2**24
    for k, m in ((150, 1023), (400, 1023), (72, 2047), (9, 4095)):
        sw = fastconv.forward_plan(k, m, m)
        assert k * m * sw.top < 2 ** 24, (k, m, sw)
    assert fastconv.forward_plan(150, 4095, 4095) is None  # no two-digit cut is enough: im2col matmuls
    sx, sd, chunk = fastconv.weight_grad_plan(784, 100, 1023, 1023)
    assert chunk * 784 * sx.top * sd.top < 2 ** 24 and chunk < 100
    # the case the bound excludes: 25 terms of 1023 * 1023 summed in one float32 convolution
    x = torch.full((1, 1, 5, 5), 1023.0)
    one = F.conv2d(x, torch.full((1, 1, 5, 5), 1023.0))
    assert float(one) != 25 * 1023 ** 2  # float32 rounded it
    sw = fastconv.forward_plan(25, 1023, 1023)
    assert float(fastconv.conv_forward(x, torch.full((1, 1, 5, 5), 1023.0), sw, 1, 0, 1)) == 25 * 1023 ** 2


class _Net(nn.Module):
    def __init__(self, C, Fo, k, s, p, d):
        super().__init__()
        self.c1 = nn.Conv2d(C, Fo, k, stride=s, padding=p, dilation=d)
        self.c2 = nn.Conv2d(Fo, 3, 3, padding=1, bias=False)

    def forward(self, x):
        return self.c2(torch.relu(self.c1(x)))


def _run(geom, prop, update, paper, seed, hooked, scale=1.0):
    C, Fo, H, k, s, p, d = GEOMS[geom]
    torch.manual_seed(seed)
    model = lowp.convert(_Net(C, Fo, k, s, p, d), prop, update, paper_bits=paper)
    macs = []
    if hooked:  # a MAC hook forces the im2col matmuls (each checked against mac_reference below)
        lowp.state_of(model).qs.mac_hooks.append(lambda *a: macs.append(a))
    pts = {}
    lowp.state_of(model).qs.point_hooks.append(lambda g, q: pts.setdefault(g, q))
    gen = torch.Generator().manual_seed(seed)
    x = ((torch.rand(5, C, H, H, generator=gen) * 4 - 2) * scale).requires_grad_(True)
    opt = lowp.SGD(model, 0.1, 0.5)
    for _ in range(3):
        out = model(x)
        out.backward(torch.randn(out.shape, generator=gen, dtype=out.dtype) * 8)
        opt.step()
    out = model(x)
    out.backward(torch.randn(out.shape, generator=gen, dtype=out.dtype) * 8)
    return model, x.grad, out, macs, pts


@pytest.mark.parametrize("prop,update,paper", [("dfixed:10", "dfixed:12", True), ("fixed:12:6", "fixed:16:10", False)],
                         ids=["dfixed-paper", "fixed"])
@pytest.mark.parametrize("geom", list(GEOMS))
def test_lowp_conv_fast_path_is_the_mac_path_bit_for_bit(geom, prop, update, paper):
    seed = 77
    fast, dx_f, out_f, none, pts = _run(geom, prop, update, paper, seed, hooked=False)
    assert none == []
    slow, dx_s, out_s, macs, _ = _run(geom, prop, update, paper, seed, hooked=True)
    assert torch.equal(out_f, out_s) and torch.equal(dx_f, dx_s)
    for (n, a), (_, b) in zip(fast.named_parameters(), slow.named_parameters()):
        assert torch.equal(a, b), n
        assert torch.equal(a.grad, b.grad), n
    for tag, a, b, bias, z, ovf in macs[-6:]:  # the last step's matmuls are mac_reference's
        ref, rovf = mac_reference(a.codes, b.codes, a.fmt, b.fmt, None, z.fmt,
                                  None if bias is None else bias.codes, None if bias is None else bias.fmt)
        assert torch.equal(ref, z.codes), tag
    assert pts["c1.z"].fmt.kind in ("fixed", "dfixed")


def _same(x, y):
    """Equal values, signs of zero included, NaN where NaN."""
    return bool((((x == y) & (torch.signbit(x) == torch.signbit(y))) | (torch.isnan(x) & torch.isnan(y))).all())


@pytest.mark.parametrize("scale", [1.0, 40.0, 20000.0], ids=["exact-grid", "bound", "overflow"])
@pytest.mark.parametrize("geom", list(GEOMS))
def test_lowp_float_conv_path_is_the_mac_path_bit_for_bit(monkeypatch, geom, scale):
    """fp16: float64 convolutions checked by the error bound == the im2col matmuls (mac_reference's
    codes: tests/training/test_lowp.py), values, gradients, parameters and overflow counts.  ``bound``:
    sums beyond 2**53 of the product grid (decided by the bound); ``overflow``: outputs beyond fp16
    (infinities, then NaN further on: those elements go to the recompute)."""
    seed = 78
    taken = []
    real = lowp_ops._float_conv_out
    monkeypatch.setattr(lowp_ops, "_float_conv_out", lambda *a: taken.append(real(*a)) or taken[-1])
    fast, dx_f, out_f, none, _ = _run(geom, "fp16", "fp16", False, seed, hooked=False, scale=scale)
    assert none == []
    used = sum(t is not None for t in taken)
    assert used >= 3 if scale < 1000 else used >= 1, (used, len(taken))
    slow, dx_s, out_s, _macs, _ = _run(geom, "fp16", "fp16", False, seed, hooked=True, scale=scale)
    assert _same(out_f, out_s) and _same(dx_f, dx_s)
    for (n, a), (_, b) in zip(fast.named_parameters(), slow.named_parameters()):
        assert _same(a, b), n
        assert _same(a.grad, b.grad), n
    ca, cb = lowp.state_of(fast).qs.controller, lowp.state_of(slow).qs.controller
    assert {g: (s.count, s.overflow) for g, s in ca.groups.items()} == \
        {g: (s.count, s.overflow) for g, s in cb.groups.items()}
    if scale > 1000:  # the convolutions' outputs overflowed (weight gradients at least)
        assert sum(ca.groups[f"c{i}.{p}"].overflow for i in (1, 2) for p in ("z", "dEdx", "dEdw")) > 0
