"""Exact fixed-point convolutions through float32 convolutions of split integer codes.

A float64 convolution on CPU is 10-30x slower than a float32 one (oneDNN has no
float64 kernels), and the im2col matmul the MAC contract is written as moves
tens of megabytes per layer.  For fixed and dynamic fixed point the operands are
integer codes, so a float32 convolution is the exact accumulator whenever every
partial sum it can form is an integer below 2**24:

    every product is an integer with |p| <= pa * pb (the operands' largest codes),
    and any partial sum of at most K of them is below K * pa * pb;

if that is below 2**24, every float32 addition or fused multiply-add of such
values is exact whatever the summation order, blocking or vectorization, since
each result is representable.  The condition holds for narrow codes only, so the
codes are split into balanced base-2**s digits ``c = hi * 2**s + lo``
(``|lo| <= 2**(s-1)``, ``|hi| <= M / 2**s + 1/2``), each digit a float32
convolution (digits concatenated along channels: one call), recombined exactly in
float64 (``hi_sum * 2**s + lo_sum`` is an integer below 2**53).  The weight
gradient sums over the whole batch (K = B * Ho * Wo): its batch is cut into
chunks that satisfy the bound, their float64 sums again exact.

What this relies on: the float32 convolution adds exact products (oneDNN's direct
and GEMM algorithms, or the im2col fallback), never Winograd/FFT transforms
(NNPACK is switched off around the calls) nor an implicit bf16/tf32 down-conversion
(only used while ``torch.backends.mkldnn``'s fp32 precision is the IEEE default).
tests/training/test_fastconv.py checks the results against ``mac_reference`` on
worst-case codes, where a plan one bit too loose gives wrong sums.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from .fastmac import max_code

#: float32 integers are exact below this
FP32_EXACT = 1 << 24


def _digit_max(m: int, s: int) -> int:
    """Largest |digit| of ``c = hi * 2**s + lo`` (``hi = round(c / 2**s)``) over ``|c| <= m``."""
    if s == 0:
        return m
    return max(1 << (s - 1), math.floor(m / 2 ** s + 0.5))


@dataclasses.dataclass(frozen=True)
class Split:
    """How one operand's codes are cut: ``s == 0`` is one piece (the codes), else two digits."""

    s: int
    top: int  #: largest |piece|

    @property
    def pieces(self) -> int:
        return 1 if self.s == 0 else 2


def _splits(m: int) -> list[Split]:
    """One piece, and the best two-digit cut (smallest largest digit) of codes up to ``m``."""
    out = [Split(0, m)]
    if m > 1:
        s = min(range(1, m.bit_length() + 1), key=lambda s: (_digit_max(m, s), s))
        out.append(Split(s, _digit_max(m, s)))
    return out


def available() -> bool:
    """float32 convolutions are IEEE float32 (no implicit bf16/tf32 down-conversion)."""
    mk = getattr(torch.backends, "mkldnn", None)
    conv = getattr(mk, "conv", None)
    prec = getattr(conv, "fp32_precision", "none") if conv is not None else "none"
    return prec in ("none", "ieee") and torch.get_float32_matmul_precision() == "highest"


def applies(*fmts) -> bool:
    """Integer codes of at most 24 bits (fixed or dynamic fixed point)."""
    return all(f is not None and f.kind in ("fixed", "dfixed") and max_code(f) < FP32_EXACT for f in fmts)


def codes32(values: torch.Tensor, fmt) -> torch.Tensor:
    """The codes of ``values`` (float64 on ``fmt``'s grid) as float32 integers (exact: below 2**24)."""
    return (values * 2.0 ** fmt.frac).to(torch.float32)


def _pieces(c: torch.Tensor, sp: Split, dim: int) -> torch.Tensor:
    """``c`` (float32 integers) cut by ``sp``, the digits concatenated along ``dim`` (hi first)."""
    if sp.s == 0:
        return c
    scale = 2.0 ** sp.s
    hi = torch.round(c / scale)  # exact: a power-of-two division and an integer rounding
    lo = c - hi * scale  # exact: |lo| <= 2**(s-1)
    return torch.cat([hi, lo], dim)


def _join(y: torch.Tensor, sp: Split, dim: int) -> torch.Tensor:
    """Float64 ``hi * 2**s + lo`` of the digit results concatenated along ``dim``."""
    y = y.to(torch.float64)
    if sp.s == 0:
        return y
    hi, lo = y.chunk(2, dim)
    return hi * 2.0 ** sp.s + lo


def _no_transforms():
    return torch.backends.nnpack.flags(enabled=False)


def conv_forward(x32: torch.Tensor, w32: torch.Tensor, sw: Split, stride, padding, dilation) -> torch.Tensor:
    """Exact integer ``conv2d(x, w)`` (float64) of float32 codes, ``w`` cut per ``sw``."""
    with _no_transforms():
        y = F.conv2d(x32, _pieces(w32, sw, 0), None, stride, padding, dilation)  # digits: extra output channels
    return _join(y, sw, 1)


def conv_input_grad(d32: torch.Tensor, w32: torch.Tensor, input_shape, sw: Split, stride, padding,
                    dilation) -> torch.Tensor:
    """Exact integer input gradient (float64) of ``conv2d`` for float32 codes ``d`` (B,F,Ho,Wo), ``w`` (F,C,kh,kw)."""
    wc = _pieces(w32, sw, 1)  # digits of w as extra input channels: extra channels of the gradient
    with _no_transforms():
        y = torch.nn.grad.conv2d_input((input_shape[0], wc.shape[1], *input_shape[2:]), wc, d32, stride, padding,
                                       dilation)
    return _join(y, sw, 1)


def forward_plan(k: int, ma: int, mw: int):
    """The weight's cut for a forward or input-gradient convolution of ``k`` terms (the data are never cut)."""
    p = [sw for sw in _splits(mw) if k * ma * sw.top < FP32_EXACT]
    return p[0] if p else None


def weight_grad_plan(per_image: int, batch: int, mx: int, md: int):
    """``(split_x, split_d, chunk)`` for a weight gradient of ``per_image`` terms per image: the fewest
    pieces, then the largest batch chunk with ``chunk * per_image * top_x * top_d < 2**24``; or None."""
    best = None
    for sx in _splits(mx):
        for sd in _splits(md):
            chunk = min(batch, (FP32_EXACT - 1) // (per_image * sx.top * sd.top))
            if chunk >= 1:
                key = (sx.pieces * sd.pieces, -chunk)  # float32 work first: calls are cheap beside it
                if best is None or key < best[0]:
                    best = (key, (sx, sd, chunk))
    return None if best is None else best[1]


def conv_weight_grad(x32: torch.Tensor, d32: torch.Tensor, w_shape, sx: Split, sd: Split, chunk: int, stride,
                     padding, dilation):
    """Exact integer weight gradient (float64, F x C x kh x kw) summed over the batch in chunks of ``chunk``."""
    xc, dc = _pieces(x32, sx, 1), _pieces(d32, sd, 1)
    shape = (dc.shape[1], xc.shape[1], *w_shape[2:])
    total = None
    with _no_transforms():
        for b0 in range(0, x32.shape[0], chunk):
            g = torch.nn.grad.conv2d_weight(xc[b0:b0 + chunk], shape, dc[b0:b0 + chunk], stride, padding, dilation)
            g = g.to(torch.float64)
            total = g if total is None else total + g  # exact: integers below 2**53
    if sd.s:
        total = _join(total, sd, 0)
    if sx.s:
        total = _join(total, sx, 1)
    return total


# ---- float operands: float64 convolutions checked by an error bound (fastmac.filtered_float_round) ----
def float_applies(a_fmt, b_fmt, out_fmt) -> bool:
    """Float operands whose products are exact in float64 *and* float32 (so ``|x| * |w|`` bounds
    computed in float32 are sums of exact products), a float output."""
    if any(f is None or f.kind != "float" for f in (a_fmt, b_fmt, out_fmt)):
        return False
    if (a_fmt.man + 1) + (b_fmt.man + 1) > 24 or min(a_fmt.q0, b_fmt.q0) < -126 or max(a_fmt.emax, b_fmt.emax) > 50:
        return False
    # products and their sums stay float32-normal and finite: grids above 2**-126, tops far below 2**127
    return a_fmt.q0 + b_fmt.q0 >= -126 and a_fmt.emax + b_fmt.emax + 2 + 24 < 127


def bound32(t32: torch.Tensor, k: int) -> torch.Tensor:
    """A float32 sum of ``k`` non-negative exact products is at least ``(1 - k 2**-24)`` times the
    true sum: scaled up by ``1 + (k + 2) 2**-23`` (in float64) it bounds it."""
    return t32.to(torch.float64) * (1.0 + (k + 2) * 2.0 ** -23)


def float_conv(kind: str, a: torch.Tensor, b: torch.Tensor, shape, stride, padding, dilation):
    """``(s, t)``: float64 sums of one convolution product and a bound of its ``sum |products|``.

    ``kind``: ``forward`` (``a`` the input, ``b`` the weight), ``input_grad`` (``a`` the output
    gradient, ``b`` the weight, ``shape`` the input's), ``weight_grad`` (``a`` the input, ``b`` the
    output gradient, ``shape`` the weight's).  A float64 convolution on CPU is an im2col and a
    float64 matrix product (no Winograd/FFT: no NNPACK, oneDNN has no float64): exact products,
    float64 sums in some order -- what the bound of ``fastmac.filtered_float_round`` covers.
    """
    with _no_transforms():
        if kind == "forward":
            s = F.conv2d(a, b, None, stride, padding, dilation)
            t = F.conv2d(a.abs().float(), b.abs().float(), None, stride, padding, dilation)
        elif kind == "input_grad":
            s = torch.nn.grad.conv2d_input(shape, b, a, stride, padding, dilation)
            t = torch.nn.grad.conv2d_input(shape, b.abs().float(), a.abs().float(), stride, padding, dilation)
        else:
            s = torch.nn.grad.conv2d_weight(a, shape, b, stride, padding, dilation)
            t = torch.nn.grad.conv2d_weight(a.abs().float(), shape, b.abs().float(), stride, padding, dilation)
    return s, t
