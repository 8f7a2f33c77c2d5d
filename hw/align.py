"""Alignment of a product or bias onto the accumulator grid (exact, or rounded with acc.round).

Golden model: contract steps 2 and 4 of ``fewbits.sim.mac_reference``: a value
on grid ``2**-f`` lands on the accumulator grid ``2**-acc.frac`` exactly when the
accumulator is finer, else rounded with ``acc.round``; then modulo ``2**acc.width``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from fewbits.hw.rounding import shift_right_round, shift_right_round_var


def align_static(m, value, d: int, acc_fmt, name="al"):
    """Signed ``value`` at grid f -> accumulator code, where ``d = acc.frac - f`` is a Python int."""
    out = Signal(signed(acc_fmt.width), name=name)
    if d >= 0:
        m.d.comb += out.eq(value << d)
    else:
        m.d.comb += out.eq(shift_right_round(m, value, -d, acc_fmt.round, name=f"{name}_r"))
    return out


def align_var(m, value, t, t_min: int, t_max: int, acc_fmt, name="alv"):
    """Signed ``value`` * 2**t on the accumulator grid; ``t`` a signed Value in [t_min, t_max]."""
    wacc = acc_fmt.width
    out = Signal(signed(wacc), name=name)
    lmax = max(0, min(t_max, wacc))
    left = Signal(signed(wacc), name=f"{name}_l")
    if t_max > 0:
        tl = Signal(range(lmax + 1), name=f"{name}_tl")
        m.d.comb += tl.eq(Mux(t <= 0, 0, Mux(t >= lmax, lmax, t)))
        # a shift of wacc or more leaves only zeros in the accumulator's width
        m.d.comb += left.eq(Mux(t >= wacc, 0, value << tl))
    else:
        m.d.comb += left.eq(value)
    if t_min >= 0:
        m.d.comb += out.eq(left)
        return out
    rmax = min(-t_min, len(value) + 1)
    tr = Signal(range(rmax + 1), name=f"{name}_tr")
    m.d.comb += tr.eq(Mux(t >= 0, 0, Mux(-t >= rmax, rmax, -t)))
    right = shift_right_round_var(m, value, tr, rmax, acc_fmt.round, name=f"{name}_r")
    m.d.comb += out.eq(Mux(t < 0, right, left))
    return out


class FloatAligner(wiring.Component):
    """Exact float product (sign, mantissa, exponent offset) -> accumulator code.

    The product's value is ``(-1)**sign * man * 2**(exp + q0a + q0b)``
    (``FloatMultiplier``'s outputs); a Kulisch accumulator takes it exactly.
    """

    golden = "fewbits.sim.mac_reference (step 2: float product onto the accumulator grid)"

    def __init__(self, q0: int, man_width: int, exp_max: int, acc_fmt):
        self.q0, self.man_width, self.exp_max, self.acc_fmt = q0, man_width, exp_max, acc_fmt
        self.d0 = q0 + acc_fmt.frac  # shift of the smallest product onto the acc grid
        super().__init__({
            "sign": In(1),
            "man": In(unsigned(man_width)),
            "exp": In(range(exp_max + 1)),
            "acc": Out(signed(acc_fmt.width)),
        })

    def elaborate(self, platform):
        m = Module()
        v = Signal(signed(self.man_width + 1))
        m.d.comb += v.eq(Mux(self.sign, -self.man, self.man))
        tw = max(abs(self.d0), abs(self.d0 + self.exp_max)).bit_length() + 2
        t = Signal(signed(tw))
        m.d.comb += t.eq(self.exp + self.d0)
        m.d.comb += self.acc.eq(align_var(m, v, t, self.d0, self.d0 + self.exp_max, self.acc_fmt))
        return m
