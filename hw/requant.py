"""Requantizer: accumulator code -> fixed-point output code (shift, round, saturate or wrap).

Golden model: step 5 of ``fewbits.sim.mac_reference`` (shift ``acc.frac - out.frac``,
out's rounding and overflow; the flag is raised whenever the value left the range).
"""

from __future__ import annotations

import random

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from fewbits.hw.hwfmt import code_shape, shift_width
from fewbits.hw.rounding import shift_right_round, shift_right_round_var
from fewbits.sim import Overflow


def _range_out(m, r, out_fmt, z, ovf):
    """Clamp or wrap the rounded integer ``r`` into out's code range; flag out-of-range."""
    lo, hi = out_fmt.min_code, out_fmt.max_code
    too_big = r > hi
    too_small = r < lo
    m.d.comb += ovf.eq(too_big | too_small)
    if out_fmt.overflow is Overflow.SAT:
        m.d.comb += z.eq(Mux(too_big, hi, Mux(too_small, lo, r)))
    else:
        m.d.comb += z.eq(r[: out_fmt.width])


class Requantizer(wiring.Component):
    """Combinational requantizer; ``dynamic=True`` adds a runtime signed ``shift`` input.

    With a static shift the amount is ``acc.frac - out.frac``; with a runtime one
    it is ``fa + fb - fo`` of the current dynamic-fixed-point ranges.  A dynamic
    one also has a ``sticky`` input: nonzero value below the accumulator's LSB
    (a bias finer than the products), which rounds like any other sticky bit for
    a shift >= 1 (``mac_reference`` accepts such a bias only there).
    """

    golden = "fewbits.sim.mac_reference (requantization: shift, out.round, out.overflow)"

    def __init__(self, acc_fmt, out_fmt, dynamic=False):
        self.acc_fmt, self.out_fmt, self.dynamic = acc_fmt, out_fmt, dynamic
        sig = {"acc": In(signed(acc_fmt.width)), "z": Out(code_shape(out_fmt)), "ovf": Out(1)}
        if dynamic:
            self.shift_width = shift_width(acc_fmt, out_fmt)
            sig["shift"] = In(signed(self.shift_width))
            sig["sticky"] = In(1)
        super().__init__(sig)

    @property
    def static_shift(self) -> int:
        return self.acc_fmt.frac - self.out_fmt.frac

    def elaborate(self, platform):
        m = Module()
        wacc, wout = self.acc_fmt.width, self.out_fmt.width
        mode = self.out_fmt.round
        if not self.dynamic:
            s = self.static_shift
            if s >= 0:
                r = shift_right_round(m, self.acc, s, mode)
            else:
                r = Signal(signed(wacc - s), name="lsh")
                m.d.comb += r.eq(self.acc << -s)
        else:
            max_r, max_l = wacc + 1, wout + 1
            sh = self.shift
            shr = Signal(range(max_r + 1))
            shl = Signal(range(max_l + 1))
            m.d.comb += [
                shr.eq(Mux(sh < 0, 0, Mux(sh > max_r, max_r, sh))),
                shl.eq(Mux(sh >= 0, 0, Mux(-sh > max_l, max_l, -sh))),
            ]
            right = shift_right_round_var(m, self.acc, shr, max_r, mode, sticky_in=self.sticky)
            left = Signal(signed(wacc + max_l), name="lsh")
            m.d.comb += left.eq(self.acc << shl)
            r = Signal(signed(max(len(right), len(left)) + 1), name="r")
            m.d.comb += r.eq(Mux(sh < 0, left, right))
        _range_out(m, r, self.out_fmt, self.z, self.ovf)
        return m

    # ---- FloPoCo-style test vectors: (acc_code, shift or None) -----------
    def _shifts(self):
        if not self.dynamic:
            return [None]
        s0 = self.static_shift
        lim = (1 << (self.shift_width - 1))
        cand = {0, 1, -1, s0, s0 + 1, s0 - 1, self.acc_fmt.width, self.acc_fmt.width + 2,
                -self.out_fmt.width, -self.out_fmt.width - 2, lim - 1, -lim}
        return sorted(c for c in cand if -lim <= c < lim)

    def standard_cases(self):
        """Min/max/zero accumulators, both saturation sides, and exact ties for every shift."""
        w = self.acc_fmt.width
        lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
        cases = []
        for sh in self._shifts():
            s = self.static_shift if sh is None else sh
            vals = {lo, hi, 0, 1, -1, lo + 1, hi - 1}
            if s > 0:
                half = 1 << (s - 1)
                for q in (0, 1, 2, 3, -1, -2, -3, (hi >> s) - 1, (lo >> s) + 1):
                    for d in (-1, 0, 1):
                        vals.add((q << s) + half + d)   # ties and their neighbours
            omax, omin = self.out_fmt.max_code, self.out_fmt.min_code
            for c in (omax, omax + 1, omin, omin - 1):
                v = c << s if s >= 0 else c >> -s
                vals.update({v, v - 1, v + 1})
            cases += [(v, sh) for v in sorted(vals) if lo <= v <= hi]
        return cases

    def random_cases(self, rng: random.Random, n=200):
        """Random accumulators biased to small magnitudes, ties and the saturation edges."""
        w = self.acc_fmt.width
        shifts = self._shifts()
        out = []
        for _ in range(n):
            sh = rng.choice(shifts)
            kind = rng.random()
            if kind < 0.4:
                v = rng.randrange(-(1 << (w - 1)), 1 << (w - 1))
            else:
                v = rng.randrange(-(1 << (w - 1)), 1 << (w - 1)) >> rng.randrange(w)
            out.append((v, sh))
        return out
