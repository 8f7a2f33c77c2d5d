"""Saturating fixed-point quantization of float64 tensors in a few in-place passes.

Training quantizes millions of values per batch (weights, weight gradients,
momentum, stored parameters).  ``fmt.encode_ovf`` followed by ``fmt.decode``
goes through int64 codes and boolean flag tensors; here the codes stay
integer-valued float64 (exact below 2**53) and only the counts the range
controller needs leave the function.  ``quantize_fixed(x, fmt).values`` equals
``fmt.decode(fmt.encode(x))`` (up to the sign of zero), and its counts equal
what ``RangeController.observe`` derives from ``fmt.encode_ovf(x)``
(tests/training/test_fastq.py checks both against ``fewbits.sim``).
"""

from __future__ import annotations

import dataclasses

import torch

#: codes of these widths are exact float64 integers, and any |y| >= 2**51 saturates
MAX_WIDTH = 52


@dataclasses.dataclass
class Quantized:
    values: torch.Tensor  #: float64, on the format's grid
    n: int  #: number of elements
    overflow: int  #: elements that saturated
    narrower: int  #: elements that would saturate with one integer bit fewer (incl. ``overflow``)
    max_abs: float  #: largest magnitude after saturation
    mask: torch.Tensor | None = None  #: per-element overflow flags (only when asked for)


def supports(fmt) -> bool:
    """Whether ``quantize_fixed`` handles ``fmt`` (the caller falls back to ``encode_ovf`` otherwise)."""
    from fewbits.sim import Overflow, Rounding

    if fmt is None or fmt.kind not in ("fixed", "dfixed"):
        return False
    if fmt.overflow is not Overflow.SAT or fmt.width > MAX_WIDTH:
        return False
    # RDN of a value that underflows x * 2**frac to -0 must still floor to -1: left to encode_ovf
    return fmt.round is not Rounding.RDN or fmt.frac >= 0


def _round(x: torch.Tensor, frac: int, mode) -> torch.Tensor:
    """``round(x * 2**frac)`` as a new integer-valued float64 tensor, exactly.

    Scaling by a power of two is exact (an underflow only loses magnitudes far
    below one half, which round to zero anyway).  Ties away from zero use
    ``floor((floor(2|y|) + 1) / 2)``: every step is exact, unlike ``|y| + 0.5``.
    """
    from fewbits.sim import Rounding

    if mode is Rounding.RNE:
        return torch.mul(x, 2.0 ** frac).round_()
    if mode is Rounding.RDN:
        return torch.mul(x, 2.0 ** frac).floor_()
    if mode is Rounding.RNA:
        y = torch.abs(x).mul_(2.0 ** (frac + 1)).floor_().add_(1.0).mul_(0.5).floor_()
    elif mode is Rounding.RTZ:
        y = torch.abs(x).mul_(2.0 ** frac).floor_()
    else:
        raise TypeError(f"not a rounding mode: {mode!r}")
    return y.mul_(torch.sign(x))


def _count_outside(y: torch.Tensor, lo: float, hi: float, mn: float, mx: float) -> int:
    n = 0
    if mx > hi:
        n += int(torch.count_nonzero(y > hi))
    if mn < lo:
        n += int(torch.count_nonzero(y < lo))
    return n


def quantize_fixed(x: torch.Tensor, fmt, want_mask: bool = False) -> Quantized | None:
    """``x`` rounded and saturated onto ``fmt``'s grid; None if ``x`` holds a NaN (use ``encode_ovf``)."""
    x = x.detach()
    if x.dtype != torch.float64:
        x = x.to(torch.float64)
    y = _round(x, fmt.frac, fmt.round)
    lo, hi = float(fmt.min_code), float(fmt.max_code)
    n = y.numel()
    if n == 0:
        return Quantized(y, 0, 0, 0, 0.0, torch.zeros_like(y, dtype=torch.bool) if want_mask else None)
    mn, mx = (float(t) for t in torch.aminmax(y))
    if mn != mn or mx != mx:
        return None
    ovf = _count_outside(y, lo, hi, mn, mx)
    # a code c overflows at one more fraction bit iff 2c leaves [lo, hi] (or c already saturated)
    narrower = _count_outside(y, lo / 2, hi / 2, mn, mx)
    mask = ((y > hi) | (y < lo)) if want_mask else None
    max_abs = max(min(mx, hi), -max(mn, lo), 0.0) * 2.0 ** -fmt.frac
    return Quantized(y.clamp_(lo, hi).mul_(2.0 ** -fmt.frac), n, ovf, narrower, max_abs, mask)
