"""MAC-contract matmuls through float64 BLAS, exact by proof or by a checked error bound.

Fixed point: when every partial sum is an integer below 2**53 units of the
finest grid, one float64 matmul *is* the exact accumulator.

Float formats: products of two such floats are exact in float64 but their sum
is not.  ``s = fl(bias + a @ b)`` is within ``E = gamma * (|bias| + |a| @ |b|)``
of the exact sum (any summation order; no float64 underflow or overflow on
these grids, which non-finite results betray).  Rounding to the output format
is monotonic, so where ``s - E`` and ``s + E`` round to the same value with
the same overflow flag, that is the exact sum's rounding; where ``|bias| + |a| @ |b|``
stays below 2**53 units of the finest grid, ``s`` is exact; every other element
(ties, exact cancellations, non-finite operands) is recomputed by
``fewbits.sim.mac_reference`` on its rows and columns.
"""

from __future__ import annotations

import math

import torch

from . import fastfloat
from .fastq import _njit

#: products of two float64-exact significands of these widths are exact
MAX_PRODUCT_BITS = 53


def _max_int(fmt) -> int:
    return max(-fmt.min_code, fmt.max_code)


def exact_float64_sum(a, b, bias) -> bool:
    """Whether ``a.values @ b.values (+ bias)`` in float64 is exact whatever the summation order.

    True for fixed-point operands (and bias) when ``K * max|a| * max|b| + max|bias|``,
    counted in units of the finest grid involved, stays below 2**53 (the formats'
    ranges bound the data, so no pass over it is needed).
    """
    fmts = [a.fmt, b.fmt] + ([] if bias is None else [bias.fmt])
    if any(f.kind not in ("fixed", "dfixed") for f in fmts):
        return False
    if a.values.dtype != torch.float64 or b.values.dtype != torch.float64:
        return False
    g_prod = -(a.fmt.frac + b.fmt.frac)
    g = g_prod if bias is None else min(g_prod, -bias.fmt.frac)
    if g < -1074:
        return False
    k = a.values.shape[1]
    bound = (k * _max_int(a.fmt) * _max_int(b.fmt)) << (g_prod - g)
    if bias is not None:
        bound += _max_int(bias.fmt) << (-bias.fmt.frac - g)
    return bound < (1 << 53) and math.ldexp(float(bound), g) < 2.0 ** 1000


def filtered_float_applies(a, b, bias, out_fmt) -> bool:
    """Float operands whose products are exact in float64, a float output (bias: any format)."""
    if a.fmt.kind != "float" or b.fmt.kind != "float" or out_fmt.kind != "float":
        return False
    if a.values.dtype != torch.float64 or b.values.dtype != torch.float64:
        return False
    if (a.fmt.man + 1) + (b.fmt.man + 1) > MAX_PRODUCT_BITS:
        return False
    # every product is a multiple of 2**(qa + qb) and below 2**(ea + eb + 2): float64-normal sums
    return a.fmt.q0 + b.fmt.q0 >= -1000 and a.fmt.emax + b.fmt.emax + 2 + math.log2(max(1, a.values.shape[1])) < 1000


_kernels: dict = {}


def _interval_kernel(mode: str):
    key = mode
    if key not in _kernels:
        one = fastfloat.element(mode, have_bits=False)

        @_njit()
        def check(s, t, gamma, exact_t, out, flags, pow2, man, emin, sub, vmax, bp, bn, sp):  # pragma: no cover
            # flags: 1 = overflowed, 2 = not provably the exact sum's rounding (recompute)
            ovf = 0
            unsure = 0
            for i in range(s.size):
                v = s[i]
                e = t[i] * gamma + abs(v) * 2.0 ** -50
                if not (math.isfinite(v) and math.isfinite(e)):
                    flags[i] = 2
                    unsure += 1
                    continue
                if t[i] * (1.0 + gamma) < exact_t:
                    # every partial sum is a multiple of the grid below 2**53 of it: s is exact
                    # (v + 0.0: an exact zero sum is +0)
                    out[i], o = one(v + 0.0, 0, pow2, man, emin, sub, vmax, bp, bn, sp)
                    flags[i] = o
                    ovf += o
                    continue
                lo, olo = one(v - e, 0, pow2, man, emin, sub, vmax, bp, bn, sp)
                hi, ohi = one(v + e, 0, pow2, man, emin, sub, vmax, bp, bn, sp)
                if lo == hi and olo == ohi and math.copysign(1.0, lo) == math.copysign(1.0, hi):
                    out[i] = lo
                    flags[i] = olo
                    ovf += olo
                else:
                    flags[i] = 2
                    unsure += 1
            return ovf, unsure

        _kernels[key] = check
    return _kernels[key]


def _grid_exponent(fmt) -> int:
    """Every finite value of ``fmt`` is an integer times 2**this."""
    return fmt.q0 if fmt.kind == "float" else -fmt.frac


def filtered_float_mac(a, b, bias, out_fmt, exact_grid: bool = True):
    """``(values, overflow flags)`` of ``requant(a @ b + bias)`` onto float ``out_fmt``, exactly.

    ``a``/``b``/``bias`` are ``QT``s (float64 values on their formats' grids).
    ``exact_grid=False`` skips the below-2**53 shortcut (tests exercise the bound alone).
    """
    from fewbits.sim import mac_reference

    K = a.values.shape[1]
    av, bv = a.values.contiguous(), b.values.contiguous()
    if bias is None:
        s = av @ bv
        t = av.abs() @ bv.abs()
    else:
        s = torch.addmm(bias.values, av, bv)
        t = torch.addmm(bias.values.abs(), av.abs(), bv.abs())
    # gamma_{K+1} = (K+1)u / (1 - (K+1)u) with u = 2**-53, doubled for the rounding of t itself
    gamma = (K + 3) * 2.0 ** -52
    # products are multiples of 2**(qa + qb), the bias of its own grid: below 2**53 of the finest,
    # a float64 sum is exact whatever the order
    g = a.fmt.q0 + b.fmt.q0 if bias is None else min(a.fmt.q0 + b.fmt.q0, _grid_exponent(bias.fmt))
    out = torch.empty_like(s)
    flags = torch.empty(s.shape, dtype=torch.uint8)
    _ovf, unsure = _interval_kernel(out_fmt.round.value)(
        s.view(-1).numpy(), t.contiguous().view(-1).numpy(), gamma, math.ldexp(1.0, 53 + g) if exact_grid else 0.0,
        out.view(-1).numpy(), flags.view(-1).numpy(), fastfloat.pow2_table(), *fastfloat.params(out_fmt))
    if unsure:
        u = flags == 2
        rows, cols = u.any(dim=1).nonzero().flatten(), u.any(dim=0).nonzero().flatten()
        z, zo = mac_reference(a.fmt.encode(av[rows]), b.fmt.encode(bv[:, cols]), a.fmt, b.fmt, None, out_fmt,
                              None if bias is None else bias.fmt.encode(bias.values.reshape(-1)[cols]),
                              None if bias is None else bias.fmt)
        sub = u[rows][:, cols]
        block = out[rows][:, cols]
        block[sub] = out_fmt.decode(z)[sub]
        fl = flags[rows][:, cols]
        fl[sub] = zo[sub].to(torch.uint8)
        out[rows.unsqueeze(1), cols.unsqueeze(0)] = block
        flags[rows.unsqueeze(1), cols.unsqueeze(0)] = fl
    return out, flags == 1
