"""Golden models of single MAC stages (requantize, product or bias on the accumulator grid, product class).

Why here: they are reference arithmetic, which ``sim`` owns; the ``hw``
component tests check each Amaranth stage against them.  Nothing here
re-derives arithmetic: each one builds a tiny MAC (1 x K x N) whose result is
exactly the stage's output, and lets ``mac_reference`` compute it.
"""

from __future__ import annotations

import torch
from .fixed import Fixed
from .mac import mac_reference
from .modes import Overflow


def _t(x):
    return torch.as_tensor(x, dtype=torch.int64)


def requantize(acc_codes, acc_fmt, out_fmt, shift=None):
    """Accumulator codes (ints, |code| < 2**63) -> (out codes, overflow flags), via the bias path.

    A 1x1x1 MAC with zero operands and the value as a bias on the accumulator's own grid.
    """
    n = len(acc_codes)
    if n == 0:
        return [], []
    if shift is not None:  # the runtime shift is acc.frac - out.frac: put out on that grid
        o = out_fmt
        out_fmt = Fixed(o.width, acc_fmt.frac - shift, o.signed, o.round, o.overflow, o.symmetric)
    bias_fmt = Fixed(min(acc_fmt.width, 64), acc_fmt.frac)
    zero_fmt = Fixed(2, acc_fmt.frac)
    z, ovf = mac_reference(_t([[0]]), _t([[0] * n]), zero_fmt, Fixed(2, 0), acc_fmt, out_fmt,
                           bias_codes=_t(acc_codes), bias_fmt=bias_fmt)
    return z[0].tolist(), ovf[0].tolist()


def product_on_grid(a_codes, b_codes, a_fmt, b_fmt, acc_fmt):
    """Every product a_i * b_j as an accumulator code (exact, or rounded with acc.round; modulo 2**W).

    One R x 1 x C MAC (an outer product) whose output format is the accumulator's
    own grid with WRAP, so the requantization is the identity (width <= 62).
    Returns an R x C list of lists.
    """
    out = Fixed(acc_fmt.width, acc_fmt.frac, overflow=Overflow.WRAP)
    z, _ = mac_reference(_t([[a] for a in a_codes]), _t([list(b_codes)]), a_fmt, b_fmt, acc_fmt, out)
    return z.tolist()


def bias_on_grid(bias_codes, bias_fmt, acc_fmt, a_fmt, b_fmt):
    """Each bias code converted onto the accumulator grid (as the MAC's step 4 does; width <= 64)."""
    out = Fixed(acc_fmt.width, acc_fmt.frac, overflow=Overflow.WRAP)
    n = len(bias_codes)
    z, _ = mac_reference(_t([[0]]), _t([[0] * n]), a_fmt, b_fmt, acc_fmt, out,
                         bias_codes=_t(bias_codes), bias_fmt=bias_fmt)
    return z[0].tolist()


def product_class(a_codes, b_codes, a_fmt, b_fmt):
    """'nan', '+inf', '-inf' or 'finite' of every product a_i * b_j (R x C lists; IEEE rules of
    mac_reference, read off an fp32 output: fp64 trips sim's 2.0**(emax+1), see the hw report)."""
    from .floating import fp32

    z, _ = mac_reference(_t([[a] for a in a_codes]), _t([list(b_codes)]), a_fmt, b_fmt, None, fp32)
    nan, inf, sign = fp32.is_nan(z), fp32.is_inf(z), fp32.fields(z)[0]
    return [["nan" if nan[i, j] else (("-inf" if sign[i, j] else "+inf") if inf[i, j] else "finite")
             for j in range(z.shape[1])] for i in range(z.shape[0])]
