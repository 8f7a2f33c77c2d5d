"""QuantState.matmul's float64 paths == fewbits.sim.mac_reference, codes and overflow flags.

Fixed point: exact by the 2**53 bound.  Float: exact by the checked error bound, with
the unsure elements recomputed; cases are biased to ties, cancellation and overflow.
"""

import math

import pytest
import torch
from fewbits.sim import (
    Fixed,
    Float,
    Rounding,
    Special,
    bf16,
    fp8_e4m3,
    fp16,
    mac_reference,
)
from fewbits.training import fastmac
from fewbits.sim.run import RunSpec
from fewbits.training.qcore import QT, QuantState


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
        assert fastmac.exact_float64_sum(a, b, z)
        qs = QuantState(RunSpec(of, of))
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
    assert fastmac.exact_float64_sum(a(k_ok), a(k_ok).t(), None)
    assert not fastmac.exact_float64_sum(a(k_bad), a(k_bad).t(), None)
    # the refused case still comes out exact (via mac_reference) with a bias one unit below
    bf = Fixed(2, 0)
    bias = QT(torch.tensor([-1.0], dtype=torch.float64), None, bf)
    out_f = Fixed(64, 0)
    qs = QuantState(RunSpec(out_f, out_f))
    out = qs.matmul("t", a(k_bad), a(k_bad).t(), "z", bias)
    assert int(out.codes[0, 0]) == 2 ** 53 - 1  # float64 would say 2**53


# ---- float operands: the checked error bound ---------------------------------------------
def float_values(fmt, shape, gen, spread=6):
    """Random finite values of ``fmt``: random sign, exponent within +-spread, mantissa."""
    e = torch.randint(-spread, spread + 1, shape, generator=gen).double()
    m = torch.rand(shape, generator=gen, dtype=torch.float64) + 0.5
    s = torch.randint(0, 2, shape, generator=gen).double() * 2 - 1
    return fmt.decode(fmt.encode(s * m * torch.exp2(e)))


def float_case(kind, gen, af, out_fmt):
    """(a, b, bias) value tensors for one adversarial kind."""
    if kind == "random":
        return float_values(af, (9, 300), gen), float_values(af, (300, 7), gen), float_values(af, (7,), gen)
    if kind == "cancel":  # [A, A] @ [B; -B]: exact sums of 0 (float64 may leave residue), one pair off
        A = float_values(af, (9, 40), gen)
        B = float_values(af, (40, 4), gen)
        b = torch.cat([B, -B], dim=0)
        b[0, 0] = -b[40, 0] * 1.5  # column 0: a small exact sum, not 0
        return torch.cat([A, A], dim=1), af.decode(af.encode(b)), None
    if kind == "ties":  # x + y exactly halfway between output neighbours, or exactly on one
        x = float_values(af, (64, 1), gen, spread=3)
        x = af.decode(af.encode(out_fmt.decode(out_fmt.encode(x))))  # on both grids
        x = x[x.abs() >= out_fmt.min_normal].reshape(-1, 1)  # the step below is the normal one
        step = torch.exp2(torch.floor(torch.log2(x.abs())) - out_fmt.man)
        y = step * torch.randint(0, 2, x.shape, generator=gen).double() * 0.5
        a = torch.cat([x, af.decode(af.encode(y))], dim=1)
        return a, torch.ones(2, 3, dtype=torch.float64), None
    if kind == "hidden":  # a tie in float64 that the exact sum misses by tiny**2: float64 cannot hold both
        x1, x2, tiny = 2.0 ** out_fmt.man, 0.5, af.min_subnormal  # x1 + x2 is an output midpoint
        rows = [[sx * x1, sx * x2, st * tiny] for sx in (1, -1) for st in (1, -1)]
        return torch.tensor(rows, dtype=torch.float64), torch.tensor([[1.0], [1.0], [tiny]], dtype=torch.float64), None
    if kind == "overflow":
        top = af.max / 2
        a = torch.full((5, 8), top, dtype=torch.float64) * (torch.rand(5, 8, generator=gen) + 0.5).double()
        a = af.decode(af.encode(a))
        b = af.decode(af.encode(torch.randn(8, 6, generator=gen, dtype=torch.float64) * 4))
        return a, b, None
    if kind == "specials":
        a = float_values(af, (6, 10), gen)
        b = float_values(af, (10, 5), gen)
        a[1, 3] = math.inf
        b[3, 2] = 0.0
        a[2, 0] = math.nan
        a[4, 5], a[4, 6] = math.inf, -math.inf
        return a, b, None
    raise ValueError(kind)


def same_values(x, y):
    return ((x == y) & (torch.signbit(x) == torch.signbit(y))) | (torch.isnan(x) & torch.isnan(y))


@pytest.mark.parametrize("norm_bound", [True, False], ids=["norms", "abs-matmul"])
@pytest.mark.parametrize("exact_grid", [True, False], ids=["grid+bound", "bound"])
@pytest.mark.parametrize("seed", [51, 52])
@pytest.mark.parametrize("mode", [Rounding.RNE, Rounding.RNA, Rounding.RTZ, Rounding.RDN], ids=lambda m: m.value)
@pytest.mark.parametrize("kind", ["random", "cancel", "ties", "hidden", "overflow", "specials"])
@pytest.mark.parametrize("af,out_name", [(fp16, "fp16"), (fp16, "bf16"), (fp8_e4m3, "e4m3"), (bf16, "e3m2-sat")],
                         ids=["fp16>fp16", "fp16>bf16", "e4m3>e4m3", "bf16>e3m2sat"])
def test_float_matmul_is_mac_reference(monkeypatch, af, out_name, kind, mode, seed, exact_grid, norm_bound):
    import dataclasses

    import fewbits.sim as sim

    base = {"fp16": fp16, "bf16": bf16, "e4m3": fp8_e4m3, "e3m2-sat": Float(3, 2, special=Special.SAT)}[out_name]
    out_fmt = dataclasses.replace(base, round=mode)
    gen = torch.Generator().manual_seed(seed)
    av, bv, zv = float_case(kind, gen, af, out_fmt)
    a, b = QT(av, None, af), QT(bv, None, af)
    z = None if zv is None else QT(zv, None, af)
    assert fastmac.filtered_float_applies(a, b, z, out_fmt)
    calls = []
    real = sim.mac_reference
    monkeypatch.setattr(sim, "mac_reference", lambda *args: calls.append(args[0].shape) or real(*args))
    got, flags = fastmac.filtered_float_mac(a, b, z, out_fmt, exact_grid=exact_grid, norm_bound=norm_bound)
    ref, ovf = real(a.codes, b.codes, af, af, None, out_fmt, None if z is None else z.codes, None if z is None else af)
    want = out_fmt.decode(ref)
    bad = (~same_values(got, want)).nonzero()
    assert bad.numel() == 0, f"{kind}: at {bad[0].tolist()} got {got[tuple(bad[0])].item()!r} want {want[tuple(bad[0])].item()!r}"
    assert torch.equal(flags, ovf)
    if kind == "specials" or kind in ("cancel", "ties") and not exact_grid:  # these need the recompute
        assert calls, "no element was recomputed exactly"
    if kind == "random":
        assert not calls or calls[0][0] * 2 <= av.shape[0], "most of a random matmul should be decided by the bound"


def test_float_matmul_through_quantstate_counts_overflow():
    gen = torch.Generator().manual_seed(53)
    qs = QuantState(RunSpec(fp16, fp16))
    av, bv, _ = float_case("overflow", gen, fp16, fp16)
    out = qs.matmul("t", QT(av, None, fp16), QT(bv, None, fp16), "z")
    ref, ovf = mac_reference(fp16.encode(av), fp16.encode(bv), fp16, fp16, None, fp16)
    assert torch.equal(out.codes, ref)
    assert qs.controller.state("z").overflow == int(ovf.sum()) > 0


def test_filtered_float_refuses_inexact_products():
    from fewbits.sim import fp32, fp64

    v = torch.ones(2, 2, dtype=torch.float64)
    assert fastmac.filtered_float_applies(QT(v, None, fp32), QT(v, None, fp32), None, fp16)
    assert not fastmac.filtered_float_applies(QT(v, None, fp64), QT(v, None, fp16), None, fp16)
    assert not fastmac.filtered_float_applies(QT(v, None, fp16), QT(v, None, fp16), None, Fixed(8, 3))
