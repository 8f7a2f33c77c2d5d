"""Float-format quantization of float64 tensors as one compiled loop (values and overflow count).

``fewbits.sim.Float.encode_ovf`` then ``decode`` builds codes through a dozen
tensor passes; training needs only the rounded values and how many overflowed.
``quantize_float(x, fmt).values`` equals ``fmt.decode(fmt.encode(x))`` (NaN
where it is NaN) and its count equals ``encode_ovf``'s flags summed
(tests/training/test_fastfloat.py checks every code's neighbourhood).
"""

from __future__ import annotations

import math

import torch

from .fastq import Quantized, _njit, _rounder

_kernels: dict = {}

_SPECIAL = {"ieee": 0, "fn": 1, "sat": 2}


#: 2**k for k in -1074..1023, indexed by k + 1074 (exact powers, looked up instead of ldexp)
_POW2 = None


def pow2_table():
    global _POW2
    if _POW2 is None:
        import numpy as np

        _POW2 = np.array([math.ldexp(1.0, k) for k in range(-1074, 1024)])
    return _POW2


def element(mode: str, have_bits: bool = True):
    """One float64 onto a float format: ``(value, overflowed)``, inlined into the loops below.

    ``bits`` is the float64's bit pattern (its exponent field gives the binade
    without a libm call; ``have_bits=False`` ignores it and asks ``frexp``);
    ``pow2`` is ``pow2_table()``.  ``big_pos`` / ``big_neg``
    are what a finite value beyond ``vmax`` becomes (``Float.overflow_value``);
    ``special`` is 0 IEEE, 1 FN, 2 SAT.
    """
    rnd = _rounder(mode)

    @_njit(inline="always")
    def one(v, bits, pow2, man, emin, subnormals, vmax, big_pos, big_neg, special):  # pragma: no cover
        if not math.isfinite(v):
            if v != v:  # NaN: IEEE and FN keep it, SAT gives +0 (flagged)
                return (0.0, True) if special == 2 else (v, False)
            if special == 0:
                return v, False  # IEEE infinities pass through
            return (vmax if v > 0 else -vmax), True
        field = (bits >> 52) & 0x7FF if have_bits else 0
        e = field - 1023 if field > 0 else math.frexp(abs(v))[1] - 1  # (float64 subnormals, or no bits)
        if subnormals:
            q = max(e, emin) - man
        else:
            q = emin if e < emin else e - man
        # v * 2**-q and n * 2**q are exact: |n| <= 2**(man + 1), q >= emin - man >= -1074
        if -q <= 1023:
            n = rnd(v * pow2[1074 - q])
        else:
            n = rnd(math.ldexp(v, -q))
        r = n * pow2[q + 1074]
        if abs(r) > vmax:
            return (big_neg if v < 0 else big_pos), True
        return r, False

    return one


def params(fmt) -> tuple:
    """The scalars ``element`` takes after the value, for ``fmt``."""
    big = fmt.overflow_value(torch.tensor([False, True]))
    return (fmt.man, fmt.emin, fmt.subnormals, fmt.max, float(big[0]), float(big[1]),
            _SPECIAL[fmt.special.value])


def _kernel(mode: str):
    if mode not in _kernels:
        one = element(mode)

        @_njit()
        def quantize(x, bits, pow2, out, man, emin, subnormals, vmax, big_pos, big_neg, special):  # pragma: no cover
            ovf = 0
            for i in range(x.size):
                out[i], o = one(x[i], bits[i], pow2, man, emin, subnormals, vmax, big_pos, big_neg, special)
                ovf += o
            return ovf

        _kernels[mode] = quantize
    return _kernels[mode]


def momentum_step_kernel(prop_mode: str, update_mode: str):
    """``update.py``'s weight rule for float formats in one pass over a parameter, in place.

    Per element, in the unfused rule's float64 operations: ``u = Q_prop(m * u - lr * g)``,
    ``w = Q_update(w + u)``, counting each point's overflows.  ``ub``/``wb`` are int64 views
    of ``u``/``w`` (the bit patterns give the binade, as in ``quantize_float``).  The
    arrays may be K x N or N x K: no value depends on the layout.
    """
    key = ("step", prop_mode, update_mode)
    if key not in _kernels:
        qp, qu = element(prop_mode), element(update_mode)

        @_njit()
        def step(w, wb, u, ub, g, m, lr, pow2, pman, pemin, psub, pmax, pbp, pbn, psp,
                 uman, uemin, usub, umax, ubp, ubn, usp):  # pragma: no cover - compiled
            wf, wbf, uf, ubf, gf = w.reshape(-1), wb.reshape(-1), u.reshape(-1), ub.reshape(-1), g.reshape(-1)
            po = wo = 0
            for i in range(wf.size):  # two passes (momentum, then weights), as fastq's step
                uf[i] = m * uf[i] - lr * gf[i]  # stored first: its bits give the binade
                v, o = qp(uf[i], ubf[i], pow2, pman, pemin, psub, pmax, pbp, pbn, psp)
                uf[i] = v
                po += o
            for i in range(wf.size):
                wf[i] = wf[i] + uf[i]
                v, o = qu(wf[i], wbf[i], pow2, uman, uemin, usub, umax, ubp, ubn, usp)
                wf[i] = v
                wo += o
            return po, wo

        _kernels[key] = step
    return _kernels[key]


def supports(fmt) -> bool:
    return fmt is not None and fmt.kind == "float"


def quantize_float(x: torch.Tensor, fmt, want_mask: bool = False) -> Quantized:
    """``x`` rounded onto float format ``fmt``, with ``Float.encode_ovf``'s overflow rule
    (``want_mask`` adds the per-element flags, from ``encode_ovf`` itself: hooks only)."""
    x = x.detach()
    if x.dtype != torch.float64:
        x = x.to(torch.float64)
    x = x.contiguous()
    out = torch.empty_like(x)
    xv = x.view(-1).numpy()
    ovf = _kernel(fmt.round.value)(xv, xv.view("int64"), pow2_table(), out.view(-1).numpy(), *params(fmt))
    return Quantized(out, x.numel(), int(ovf), int(ovf), 0.0, fmt.encode_ovf(x)[1] if want_mask else None)
