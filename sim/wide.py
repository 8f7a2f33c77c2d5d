"""Wide two's-complement integers as stacks of int64 limbs, vectorized over elements.

An exact Kulisch sum of float products is hundreds of bits wide; these
helpers let the MAC model keep it exactly with torch ops.  A value is a
tensor ``L`` of shape ``(N, *shape)``: ``V = sum(L[n] * 2**(n*S))``.  In
canonical form limbs ``0..N-2`` are in ``[0, 2**S)`` and the top limb is a
small signed integer, so the top limb's sign is the value's sign and the
bits of ``V`` are the limbs' bits (the top limb sign-extends).
"""

from __future__ import annotations

import torch

_I63 = 63


def _lowmask(k: torch.Tensor) -> torch.Tensor:
    """(1 << k) - 1 for 0 <= k <= 62, elementwise."""
    one = torch.ones_like(k)
    return torch.bitwise_left_shift(one, k) - 1


def _shift_amount(k) -> torch.Tensor:
    return torch.clamp(torch.as_tensor(k, dtype=torch.int64), 0, _I63)


def normalize(L: torch.Tensor, S: int) -> torch.Tensor:
    """Carry-propagate any limbs (|limb| < 2**62) into canonical form."""
    out = torch.empty_like(L)
    mask = (1 << S) - 1
    carry = torch.zeros_like(L[0])
    for n in range(L.shape[0] - 1):
        t = L[n] + carry
        out[n] = t & mask
        carry = t >> S
    out[-1] = L[-1] + carry
    return out


def from_int64(v: torch.Tensor, S: int, N: int) -> torch.Tensor:
    """Canonical limbs of int64 values (needs ``(N - 1) * S >= 63``)."""
    assert (N - 1) * S >= 63
    mask = (1 << S) - 1
    limbs = [(v >> (n * S)) & mask for n in range(N - 1)] + [v >> 63]
    return torch.stack(limbs)


def negate(L: torch.Tensor, S: int) -> torch.Tensor:
    return normalize(-L, S)


def is_negative(L: torch.Tensor) -> torch.Tensor:
    return L[-1] < 0


def wrap(L: torch.Tensor, S: int, width: int) -> torch.Tensor:
    """V modulo 2**width as a signed ``width``-bit value (canonical in, canonical out)."""
    N = L.shape[0]
    j, r = divmod(width - 1, S)  # the sign bit is bit r of limb j
    out = L.clone()
    if j >= N - 1:
        p = width - 1 - (N - 1) * S  # the sign bit's place inside the top limb
        if p >= 62:
            return out
        low = L[-1] & ((1 << (p + 1)) - 1)
        out[-1] = low - (((low >> p) & 1) << (p + 1))
        return out
    mask = (1 << S) - 1
    low = L[j] & ((1 << (r + 1)) - 1)
    neg = ((low >> r) & 1).bool()
    out[j] = torch.where(neg, low | (mask & ~((1 << (r + 1)) - 1)), low)
    out[j + 1:N - 1] = torch.where(neg, mask, 0)
    out[-1] = torch.where(neg, -1, 0)
    return out


def extract(L: torch.Tensor, S: int, pos, nbits: int) -> torch.Tensor:
    """Bits ``[pos, pos + nbits)`` of V as a non-negative int64 (nbits <= 62).

    ``pos`` may be a tensor (per element) and may be negative (bits below 0 are 0).
    """
    assert 1 <= nbits <= 62
    pos = torch.as_tensor(pos, dtype=torch.int64)
    N = L.shape[0]
    acc = torch.zeros(torch.broadcast_shapes(L.shape[1:], pos.shape), dtype=torch.int64)
    nb = torch.tensor(nbits, dtype=torch.int64)
    for n in range(N):
        limb = L[n]
        o = n * S - pos  # where bit 0 of this limb lands in the result
        up = torch.bitwise_left_shift(limb & _lowmask(torch.clamp(nb - o, 0, 62)), _shift_amount(o))
        down = torch.bitwise_right_shift(limb, _shift_amount(-o)) & ((1 << nbits) - 1)
        if n < N - 1:
            down = torch.where(-o >= S, torch.zeros_like(down), down)
        part = torch.where(o >= 0, torch.where(o < nb, up, torch.zeros_like(up)), down)
        acc = acc | part
    return acc


def any_below(L: torch.Tensor, S: int, pos) -> torch.Tensor:
    """Whether any bit of V below ``pos`` is set (pos may be a tensor, may be <= 0)."""
    pos = torch.as_tensor(pos, dtype=torch.int64)
    N = L.shape[0]
    out = torch.zeros(torch.broadcast_shapes(L.shape[1:], pos.shape), dtype=torch.bool)
    for n in range(N):
        k = pos - n * S
        k = torch.clamp(k, 0, S if n < N - 1 else 62)
        out = out | ((L[n] & _lowmask(k)) != 0)
    return out


def fits_signed(L: torch.Tensor, S: int, pos) -> torch.Tensor:
    """Whether floor(V / 2**pos) is 0 or -1 (all bits from ``pos`` up equal the sign)."""
    pos = torch.as_tensor(pos, dtype=torch.int64)
    N = L.shape[0]
    neg = is_negative(L)
    ok = torch.ones(torch.broadcast_shapes(L.shape[1:], pos.shape), dtype=torch.bool)
    mask = (1 << S) - 1
    for n in range(N - 1):
        k = torch.clamp(pos - n * S, 0, S)
        high = torch.bitwise_right_shift(L[n], k)
        want = torch.where(neg, torch.bitwise_right_shift(torch.full_like(k, mask), k), torch.zeros_like(k))
        ok = ok & (high == want)
    k = _shift_amount(pos - (N - 1) * S)
    top = torch.bitwise_right_shift(L[-1], k)
    ok = ok & (top == torch.where(neg, -1, 0))
    # below bit 0, only V == 0 has floor(V / 2**pos) in {0, -1}
    return ok & ((pos >= 0) | (L == 0).all(dim=0))


def msb(L: torch.Tensor, S: int) -> torch.Tensor:
    """Index of the highest set bit of a canonical non-negative V (-1 for zero)."""
    best = torch.full(L.shape[1:], -1, dtype=torch.int64)
    for n in range(L.shape[0]):
        limb = L[n]
        _, e = torch.frexp(limb.to(torch.float64))
        # frexp is exact for limbs < 2**53; limbs are < 2**S, the top one small
        best = torch.where(limb > 0, n * S + e.to(torch.int64) - 1, best)
    return best
