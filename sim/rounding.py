"""Exact rounding primitives shared by every format and the MAC model.

Two forms of the same rule: rounding a float64 tensor to an integer value
(formats' ``quantize``) and rounding an integer right shift given its floor
quotient, round bit and sticky bit (the MAC requantization, like hardware).
"""

import torch

from .modes import Rounding


def round_to_integer(y: torch.Tensor, mode: Rounding) -> torch.Tensor:
    """Round float64 ``y`` to an integer-valued float64 tensor, exactly.

    The sign of zero is kept (``-0.3`` rounds to ``-0.0`` except under RDN).
    """
    if mode is Rounding.RNE:
        return torch.round(y)
    if mode is Rounding.RTZ:
        return torch.trunc(y)
    if mode is Rounding.RDN:
        return torch.floor(y)
    if mode is Rounding.RNA:
        a = y.abs()
        f = torch.floor(a)
        up = (a - f) >= 0.5  # a - floor(a) is exact in binary floating point
        return torch.copysign(f + up.to(y.dtype), y)
    raise TypeError(f"not a rounding mode: {mode!r}")


def round_increment(q_odd, negative, round_bit, sticky, mode: Rounding):
    """Increment (0/1, bool tensor) to add to a floor quotient ``q``.

    ``q`` is floor(v / 2**s); ``round_bit`` is bit s-1 of v, ``sticky`` the OR
    of the bits below it; ``q_odd`` the low bit of ``q``; ``negative`` is v < 0.
    This is exactly what a hardware rounder computes from the same bits.
    """
    inexact = round_bit | sticky
    if mode is Rounding.RDN:
        return torch.zeros_like(inexact)
    if mode is Rounding.RTZ:
        return negative & inexact
    if mode is Rounding.RNE:
        return round_bit & (sticky | q_odd)
    if mode is Rounding.RNA:
        return round_bit & (sticky | ~negative)
    raise TypeError(f"not a rounding mode: {mode!r}")
