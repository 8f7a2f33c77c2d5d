"""Exact fixed-point multiplier: two codes -> their exact product code (wa + wb bits).

Golden model: contract step 1 of ``fewbits.sim.mac_reference`` (products are
exact), i.e. ``mac_reference`` of a 1x1x1 tile onto the exact product grid.
"""

from __future__ import annotations

import random

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from fewbits.hw.hwfmt import code_shape


def product_shape(a_fmt, b_fmt):
    w = a_fmt.width + b_fmt.width
    return signed(w) if (a_fmt.signed or b_fmt.signed) else unsigned(w)


class Multiplier(wiring.Component):
    """Combinational exact product of a signed/unsigned ``a_fmt`` code and ``b_fmt`` code.

    ``arch``: ``yosys`` (``a * b``, Yosys maps it), ``booth`` or ``dadda`` (generated trees,
    ``fewbits.hw.multipliers``).
    """

    golden = "fewbits.sim.mac_reference (step 1: exact product on the grid fa + fb)"

    def __init__(self, a_fmt, b_fmt, arch: str = "yosys"):
        from fewbits.hw.multipliers import check_arch

        self.a_fmt, self.b_fmt, self.arch = a_fmt, b_fmt, check_arch(arch)
        super().__init__({
            "a": In(code_shape(a_fmt)),
            "b": In(code_shape(b_fmt)),
            "p": Out(product_shape(a_fmt, b_fmt)),
        })

    def elaborate(self, platform):
        m = Module()
        if self.arch == "yosys":
            m.d.comb += self.p.eq(self.a * self.b)
        else:
            from fewbits.hw.multipliers import product

            fa, fb = self.a_fmt, self.b_fmt
            m.d.comb += self.p.eq(product(m, self.a.as_unsigned(), self.b.as_unsigned(), fa.width, fb.width,
                                          fa.signed, fb.signed, self.arch))
        return m

    def standard_cases(self):
        """Every pair of min / max / zero / +-1 codes (incl. most-negative x most-negative)."""
        def edges(f):
            return sorted({f.min_code, f.max_code, 0, min(1, f.max_code), max(-1, f.min_code),
                           f.min_code + (1 if f.max_code > f.min_code else 0), max(f.max_code - 1, f.min_code)})
        return [(a, b) for a in edges(self.a_fmt) for b in edges(self.b_fmt)]

    def random_cases(self, rng: random.Random, n=200):
        def pick(f):
            if rng.random() < 0.25:
                return rng.choice([f.min_code, f.max_code])
            return rng.randint(f.min_code, f.max_code)
        return [(pick(self.a_fmt), pick(self.b_fmt)) for _ in range(n)]

    def all_cases(self):
        """Every operand pair (exhaustive: only for small widths)."""
        fa, fb = self.a_fmt, self.b_fmt
        return [(a, b) for a in range(fa.min_code, fa.max_code + 1) for b in range(fb.min_code, fb.max_code + 1)]
