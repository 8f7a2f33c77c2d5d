"""Round-on-right-shift in gates: the same floor / round bit / sticky rule as ``sim.rounding``.

``fewbits.sim.rounding.round_increment`` is the golden model; these helpers
emit the identical logic into an Amaranth module so that every rounder in
``hw`` (requantizer, product alignment, float rounder) shares one rule.
"""

from __future__ import annotations

from amaranth.hdl import Const, Signal, signed, unsigned
from fewbits.sim import Rounding


def round_increment(q_odd, negative, round_bit, sticky, mode: Rounding):
    """1-bit increment to add to the floor quotient (mirrors sim.rounding.round_increment)."""
    if mode is Rounding.RDN:
        return Const(0, 1)
    if mode is Rounding.RTZ:
        return negative & (round_bit | sticky)
    if mode is Rounding.RNE:
        return round_bit & (sticky | q_odd)
    if mode is Rounding.RNA:
        return round_bit & (sticky | ~negative)
    raise TypeError(f"not a rounding mode: {mode!r}")


def shift_right_round(m, value, s: int, mode: Rounding, name="rsh"):
    """Signed ``value`` / 2**s rounded with ``mode``; s a Python int >= 0. Returns a signed Signal."""
    w = len(value)
    if s == 0:
        out = Signal(signed(w + 1), name=name)
        m.d.comb += out.eq(value)
        return out
    ext = Signal(signed(max(w, s + 1) + 1), name=f"{name}_ext")
    m.d.comb += ext.eq(value)
    q = ext[s:].as_signed()
    rb = ext[s - 1]
    sticky = ext[: s - 1].any() if s > 1 else Const(0, 1)
    inc = round_increment(q[0], ext[-1], rb, sticky, mode)
    out = Signal(signed(len(q) + 1), name=name)
    m.d.comb += out.eq(q + inc)
    return out


def shift_right_round_var(m, value, sh, max_shift: int, mode: Rounding, name="vrsh", sticky_in=None):
    """Signed ``value`` / 2**sh rounded with ``mode``; ``sh`` an unsigned Value <= max_shift.

    ``sticky_in``: nonzero bits below ``value``'s own LSB (part of the sticky when sh >= 1).
    """
    w = len(value)
    ew = max(w, max_shift + 1) + 1
    ext = Signal(signed(ew), name=f"{name}_ext")
    m.d.comb += ext.eq(value)
    q = Signal(signed(ew), name=f"{name}_q")
    mask = Signal(unsigned(ew), name=f"{name}_mask")
    m.d.comb += [
        q.eq(ext >> sh),
        mask.eq((Const(1, ew + 1) << sh) - 1),
    ]
    below = mask >> 1
    top = mask ^ below
    rb = (ext.as_unsigned() & top).any()
    sticky = (ext.as_unsigned() & below).any()
    if sticky_in is not None:
        sticky = sticky | (sticky_in & (sh != 0))
    inc = round_increment(q[0], ext[-1], rb, sticky, mode)
    out = Signal(signed(ew + 1), name=name)
    m.d.comb += out.eq(q + inc)
    return out


def magnitude_increment(lsb, negative, round_bit, sticky, mode: Rounding):
    """1-bit increment of a truncated *magnitude* (sign-magnitude rounding: the same results as
    ``round_increment`` on the floor of the signed value; RDN moves a negative magnitude up)."""
    if mode is Rounding.RTZ:
        return Const(0, 1)
    if mode is Rounding.RDN:
        return negative & (round_bit | sticky)
    if mode is Rounding.RNE:
        return round_bit & (sticky | lsb)
    if mode is Rounding.RNA:
        return round_bit
    raise TypeError(f"not a rounding mode: {mode!r}")
