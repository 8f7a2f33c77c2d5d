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


def element(mode: str):
    """One float64 onto a float format: ``(value, overflowed)``, inlined into the loops below.

    ``big_pos`` / ``big_neg`` are what a finite value beyond ``vmax`` becomes
    (``Float.overflow_value``); ``special`` is 0 IEEE, 1 FN, 2 SAT.
    """
    rnd = _rounder(mode)

    @_njit(inline="always")
    def one(v, man, emin, subnormals, vmax, big_pos, big_neg, special):  # pragma: no cover - compiled
        if not math.isfinite(v):
            if v != v:  # NaN: IEEE and FN keep it, SAT gives +0 (flagged)
                return (0.0, True) if special == 2 else (v, False)
            if special == 0:
                return v, False  # IEEE infinities pass through
            return (vmax if v > 0 else -vmax), True
        e = math.frexp(abs(v))[1] - 1
        if subnormals:
            q = max(e, emin) - man
        else:
            q = emin if e < emin else e - man
        # v * 2**-q and n * 2**q are exact: |n| <= 2**(man + 1), q >= emin - man >= -1074
        r = math.ldexp(rnd(math.ldexp(v, -q)), q)
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
        def quantize(x, out, man, emin, subnormals, vmax, big_pos, big_neg, special):  # pragma: no cover
            ovf = 0
            for i in range(x.size):
                out[i], o = one(x[i], man, emin, subnormals, vmax, big_pos, big_neg, special)
                ovf += o
            return ovf

        _kernels[mode] = quantize
    return _kernels[mode]


def supports(fmt) -> bool:
    return fmt is not None and fmt.kind == "float"


def quantize_float(x: torch.Tensor, fmt) -> Quantized:
    """``x`` rounded onto float format ``fmt``, with ``Float.encode_ovf``'s overflow rule."""
    x = x.detach()
    if x.dtype != torch.float64:
        x = x.to(torch.float64)
    x = x.contiguous()
    out = torch.empty_like(x)
    ovf = _kernel(fmt.round.value)(x.view(-1).numpy(), out.view(-1).numpy(), *params(fmt))
    return Quantized(out, x.numel(), int(ovf), int(ovf), 0.0)
