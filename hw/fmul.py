"""Exact float multiplier: two float codes -> sign, full mantissa product, exponent offset, specials.

Golden model: contract step 1 for floats in ``fewbits.sim.mac_reference``
(``Float.decompose`` of both codes, product ``ma*mb * 2**(ea+eb)`` kept exactly,
NaN for any NaN or inf*0, inf otherwise dominating).
"""

from __future__ import annotations

import random

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from fewbits.sim import Special


def float_fields(m, code, fmt, name):
    """Decode one float code: (sign, mantissa with hidden bit, exponent offset, is_nan, is_inf).

    The exponent offset is ``max(field, 1) - 1``: value = (-1)**s * man * 2**(offset + fmt.q0).
    """
    sign = code[fmt.exp + fmt.man]
    field = code[fmt.man: fmt.man + fmt.exp]
    mfield = code[: fmt.man]
    top = (1 << fmt.exp) - 1
    if fmt.special is Special.IEEE:
        nan = (field == top) & (mfield != 0)
        inf = (field == top) & (mfield == 0)
    elif fmt.special is Special.FN:
        nan = (field == top) & (mfield == (1 << fmt.man) - 1)
        inf = Signal(1, name=f"{name}_noinf")
    else:
        nan = Signal(1, name=f"{name}_nonan")
        inf = Signal(1, name=f"{name}_noinf")
    normal = field != 0
    man = Signal(unsigned(fmt.man + 1), name=f"{name}_man")
    off = Signal(range(top + 1), name=f"{name}_off")
    special = Signal(name=f"{name}_special")
    m.d.comb += [
        special.eq(nan | inf),
        man.eq(Mux(special, 0, Mux(normal, mfield | (1 << fmt.man), mfield))),
        off.eq(Mux(normal, field - 1, 0)),
    ]
    return sign, man, off, nan, inf


def field_offset_max(fmt) -> int:
    return (1 << fmt.exp) - 2


class FloatMultiplier(wiring.Component):
    """Exact product of two floats as ``(-1)**sign * man * 2**(exp + a.q0 + b.q0)`` plus nan/inf."""

    golden = "fewbits.sim.mac_reference (step 1: exact float products, IEEE NaN/inf rules)"

    def __init__(self, a_fmt, b_fmt):
        self.a_fmt, self.b_fmt = a_fmt, b_fmt
        self.man_width = a_fmt.bits_man + b_fmt.bits_man
        self.exp_max = field_offset_max(a_fmt) + field_offset_max(b_fmt)
        self.q0 = a_fmt.q0 + b_fmt.q0
        super().__init__({
            "a": In(unsigned(a_fmt.width)),
            "b": In(unsigned(b_fmt.width)),
            "sign": Out(1),
            "man": Out(unsigned(self.man_width)),
            "exp": Out(range(self.exp_max + 1)),
            "nan": Out(1),
            "inf": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        sa, ma, ea, na, ia = float_fields(m, self.a, self.a_fmt, "a")
        sb, mb, eb, nb, ib = float_fields(m, self.b, self.b_fmt, "b")
        za, zb = (ma == 0) & ~ia & ~na, (mb == 0) & ~ib & ~nb
        nan = na | nb | (ia & zb) | (ib & za)
        m.d.comb += [
            self.sign.eq(sa ^ sb),
            self.man.eq(ma * mb),
            self.exp.eq(ea + eb),
            self.nan.eq(nan),
            self.inf.eq((ia | ib) & ~nan),
        ]
        return m

    # ---- test vectors (bit patterns) -----------------------------------
    @staticmethod
    def edge_codes(fmt):
        """Zeros, smallest/largest subnormal, min normal, 1.0, max, inf, NaN of both signs."""
        e, mn = fmt.exp, fmt.man
        top = (1 << e) - 1
        fields = [(0, 0), (0, 1), (0, (1 << mn) - 1), (1, 0), (1, 1), (fmt.bias, 0), (fmt.bias, 1),
                  (top - 1, (1 << mn) - 1), (top - 1, 0), (top, 0), (top, 1), (top, (1 << mn) - 1),
                  (top, (1 << mn) - 2), (top, 1 << (mn - 1))]
        codes = set()
        for s in (0, 1):
            for f, mm in fields:
                codes.add((s << (e + mn)) | (f << mn) | mm)
        return sorted(codes)

    def standard_cases(self):
        ca, cb = self.edge_codes(self.a_fmt), self.edge_codes(self.b_fmt)
        return [(a, b) for a in ca for b in cb]

    def random_cases(self, rng: random.Random, n=200):
        def pick(f):
            if rng.random() < 0.3:
                return rng.choice(self.edge_codes(f))
            return rng.randrange(1 << f.width)
        return [(pick(self.a_fmt), pick(self.b_fmt)) for _ in range(n)]
