"""FloatRounder: accumulator code (+ NaN/inf flags) -> float code with out's rounding and specials.

Golden model: step 5 of ``fewbits.sim.mac_reference`` for a float output
(``Float`` rounding of the exact accumulator value: subnormals, overflow to
inf or max per the rounding mode and ``special``, NaN/inf pass-through).
"""

from __future__ import annotations

import random

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from fewbits.hw.rounding import shift_right_round_var
from fewbits.sim import Rounding, Special


def nan_code(fmt) -> int:
    top = (1 << fmt.exp) - 1
    if fmt.special is Special.IEEE:
        return (top << fmt.man) | (1 << (fmt.man - 1))
    if fmt.special is Special.FN:
        return (top << fmt.man) | ((1 << fmt.man) - 1)
    return 0


def max_code(fmt) -> int:
    """Bit pattern of +max."""
    top = (1 << fmt.exp) - 1
    if fmt.special is Special.IEEE:
        return ((top - 1) << fmt.man) | ((1 << fmt.man) - 1)
    if fmt.special is Special.FN:
        return (top << fmt.man) | ((1 << fmt.man) - 2)
    return (top << fmt.man) | ((1 << fmt.man) - 1)


def inf_code(fmt) -> int:
    return ((1 << fmt.exp) - 1) << fmt.man


class FloatRounder(wiring.Component):
    """Signed accumulator (grid ``2**-acc.frac``) and nan/pinf/ninf flags -> ``out_fmt`` code, ovf."""

    golden = "fewbits.sim.mac_reference (requantization to a Float output)"

    def __init__(self, acc_fmt, out_fmt, pipelined=False):
        # pipelined: one register after the normalize-and-round half (latency 1, sync domain)
        self.acc_fmt, self.out_fmt, self.pipelined = acc_fmt, out_fmt, pipelined
        super().__init__({
            "acc": In(signed(acc_fmt.width)),
            "nan": In(1),
            "pinf": In(1),
            "ninf": In(1),
            "z": Out(unsigned(out_fmt.width)),
            "ovf": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        o, W, F = self.out_fmt, self.acc_fmt.width, self.acc_fmt.frac
        man, emin, emax = o.man, o.emin, o.emax
        neg = self.acc[-1]
        mag = Signal(unsigned(W))
        m.d.comb += mag.eq(Mux(neg, -self.acc, self.acc))
        # position of the leading one (priority: the highest set bit wins)
        p = Signal(range(W))
        for i in range(W):
            with m.If(mag[i]):
                m.d.comb += p.eq(i)
        c = emin + F                       # leading-one position of the least normal
        lo_dr, hi_dr = c - man, max(W - 1, c) - man
        dw = max(abs(lo_dr), abs(hi_dr), abs(c), W).bit_length() + 2
        pe = Signal(signed(dw))
        dr = Signal(signed(dw))
        m.d.comb += [pe.eq(Mux(p > c, p, c)), dr.eq(pe - man)]
        nw = man + 3
        n = Signal(signed(nw))
        if hi_dr > 0:
            rmax = hi_dr
            drr = Signal(range(rmax + 1))
            m.d.comb += drr.eq(Mux(dr < 0, 0, dr))
            right = shift_right_round_var(m, self.acc, drr, rmax, o.round, name="rn")
        else:
            right = self.acc
        if lo_dr < 0:
            lmax = -lo_dr
            drl = Signal(range(lmax + 1))
            m.d.comb += drl.eq(Mux(dr >= 0, 0, -dr))
            m.d.comb += n.eq(Mux(dr < 0, self.acc << drl, right))
        else:
            m.d.comb += n.eq(right)
        nan_in, pinf_in, ninf_in = self.nan, self.pinf, self.ninf
        if self.pipelined:  # cut between the normalize/round half and the pack/overflow half
            regs = []
            for sig, nm in ((n, "n"), (pe, "pe"), (neg, "neg"), (nan_in, "nan"), (pinf_in, "pinf"),
                            (ninf_in, "ninf")):
                r = Signal(sig.shape(), name=f"{nm}_r")
                m.d.sync += r.eq(sig)
                regs.append(r)
            n, pe, neg, nan_in, pinf_in, ninf_in = regs
        absn = Signal(unsigned(man + 2))
        m.d.comb += absn.eq(Mux(n[-1], -n, n))
        carry = absn[man + 1]
        ew = max(dw, abs(F).bit_length() + 1, (abs(o.bias) + abs(emax) + 2).bit_length() + 1) + 2
        e = Signal(signed(ew))                    # unbiased exponent after rounding
        m.d.comb += e.eq(pe - F + carry)
        normal = absn[man:].any()
        mant = Signal(unsigned(man))
        m.d.comb += mant.eq(Mux(carry, 0, absn[:man]))
        field = Signal(unsigned(o.exp))
        m.d.comb += field.eq(Mux(normal, e + o.bias, 0))
        max_mant = (1 << man) - 1 - (1 if o.special is Special.FN else 0)
        over = Signal()
        if max_mant == (1 << man) - 1:   # every mantissa at emax is finite
            m.d.comb += over.eq(normal & (e > emax))
        else:
            m.d.comb += over.eq(normal & ((e > emax) | ((e == emax) & (mant > max_mant))))
        sign = Signal()
        m.d.comb += sign.eq(neg)
        finite = Signal(unsigned(o.width))
        m.d.comb += finite.eq(Cat(mant, field, sign))
        # specials
        mx, inf, nanc = max_code(o), inf_code(o), nan_code(o)
        sbit = 1 << (o.exp + man)
        is_nan = nan_in | (pinf_in & ninf_in)
        is_inf = (pinf_in | ninf_in) & ~is_nan
        inf_neg = ninf_in
        if o.special is Special.IEEE:
            if o.round in (Rounding.RNE, Rounding.RNA):
                big_pos, big_neg = inf, sbit | inf
            elif o.round is Rounding.RTZ:
                big_pos, big_neg = mx, sbit | mx
            else:
                big_pos, big_neg = mx, sbit | inf
            inf_pos_code, inf_neg_code = inf, sbit | inf
            nan_ovf, inf_ovf = 0, 0
        else:
            big_pos, big_neg = mx, sbit | mx
            inf_pos_code, inf_neg_code = mx, sbit | mx
            nan_ovf = 1 if o.special is Special.SAT else 0
            inf_ovf = 1
        with m.If(is_nan):
            m.d.comb += [self.z.eq(nanc), self.ovf.eq(nan_ovf)]
        with m.Elif(is_inf):
            m.d.comb += [self.z.eq(Mux(inf_neg, inf_neg_code, inf_pos_code)), self.ovf.eq(inf_ovf)]
        with m.Elif(over):
            m.d.comb += [self.z.eq(Mux(neg, big_neg, big_pos)), self.ovf.eq(1)]
        with m.Else():
            m.d.comb += [self.z.eq(finite), self.ovf.eq(0)]
        return m

    # ---- test vectors: (acc_code, nan, pinf, ninf) ---------------------
    def standard_cases(self):
        """Zero, +-min/max accumulators, values at every binade edge, ties, overflow edges, specials."""
        W, F, o = self.acc_fmt.width, self.acc_fmt.frac, self.out_fmt
        lo, hi = -(1 << (W - 1)), (1 << (W - 1)) - 1
        vals = {0, 1, -1, lo, hi, lo + 1, hi - 1}
        for e in range(o.emin - o.man - 2, o.emax + 3):
            sh = e + F                        # grid position of 2**e
            for mant in (1, 2, 3, (1 << (o.man + 1)) - 1, (1 << (o.man + 1)) + 1, 3 << o.man):
                for half in (False, True):
                    v = mant << (sh + 1) if sh + 1 >= 0 else None
                    if v is None:
                        continue
                    if half and sh >= 0:
                        v += 1 << sh          # an exact tie one step below this grid
                    for d in (-1, 0, 1):
                        for s in (1, -1):
                            vals.add(s * (v + d))
        cases = [(v, 0, 0, 0) for v in sorted(vals) if lo <= v <= hi]
        cases += [(0, 1, 0, 0), (5, 0, 1, 0), (5, 0, 0, 1), (0, 0, 1, 1), (-3, 1, 1, 0)]
        return cases

    def random_cases(self, rng: random.Random, n=200):
        W = self.acc_fmt.width
        out = []
        for _ in range(n):
            v = rng.randrange(-(1 << (W - 1)), 1 << (W - 1)) >> rng.randrange(W)
            r = rng.random()
            flags = (0, 0, 0) if r < 0.9 else rng.choice([(1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 1, 1)])
            out.append((v, *flags))
        return out
