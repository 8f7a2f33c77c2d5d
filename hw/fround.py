"""FloatRounder: accumulator code (+ NaN/inf flags) -> float code with out's rounding and specials.

Golden model: step 5 of ``fewbits.sim.mac_reference`` for a float output
(``Float`` rounding of the exact accumulator value: subnormals, overflow to
inf or max per the rounding mode and ``special``, NaN/inf pass-through).
"""

from __future__ import annotations

import random

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from fewbits.hw.rounding import shift_right_round_var
from fewbits.sim import Rounding, Special


def _bits(lo: int, hi: int) -> int:
    """Width of a signed signal holding every integer in [lo, hi]."""
    return max(abs(lo), abs(hi)).bit_length() + 1


def leading_one(m, mag, name="lo"):
    """Position of the highest set bit of ``mag`` (0 for 0): a priority chain (ABC makes it smaller than a
    tree of halves here: 35,434 vs 35,882 transistors for the exact fp16 MAC, measured with Yosys 0.23)."""
    p = Signal(range(len(mag)), name=name)
    for i in range(len(mag)):
        with m.If(mag[i]):
            m.d.comb += p.eq(i)
    return p


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


def special_codes(o):
    """The constant codes ``select_code`` picks for ``o``: (nan, nan_ovf, +inf, -inf, inf_ovf, +big, -big),
    ``big`` being an overflow's code (inf or max per ``o``'s rounding mode and ``special``)."""
    mx, inf, nanc = max_code(o), inf_code(o), nan_code(o)
    sbit = 1 << (o.exp + o.man)
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
    return nanc, nan_ovf, inf_pos_code, inf_neg_code, inf_ovf, big_pos, big_neg


def select_code(m, o, z, ovf, neg, finite, over, nan_in, pinf_in, ninf_in):
    """Drive ``z``/``ovf`` with the code of ``o``: NaN (a NaN input, or +inf and -inf together), infinity,
    an overflow (inf or max per ``o``'s rounding mode and ``special``; the flag raised), else ``finite``."""
    nanc, nan_ovf, inf_pos_code, inf_neg_code, inf_ovf, big_pos, big_neg = special_codes(o)
    is_nan = nan_in | (pinf_in & ninf_in)
    is_inf = (pinf_in | ninf_in) & ~is_nan
    with m.If(is_nan):
        m.d.comb += [z.eq(nanc), ovf.eq(nan_ovf)]
    with m.Elif(is_inf):
        m.d.comb += [z.eq(Mux(ninf_in, inf_neg_code, inf_pos_code)), ovf.eq(inf_ovf)]
    with m.Elif(over):
        m.d.comb += [z.eq(Mux(neg, big_neg, big_pos)), ovf.eq(1)]
    with m.Else():
        m.d.comb += [z.eq(finite), ovf.eq(0)]


class FloatRounder(wiring.Component):
    """Signed accumulator (grid ``2**-acc.frac``) and nan/pinf/ninf flags -> ``out_fmt`` code, ovf."""

    golden = "fewbits.sim.mac_reference (requantization to a Float output)"

    def __init__(self, acc_fmt, out_fmt, pipelined=False, exp_range=None, lead=None):
        # pipelined: one register after the normalize-and-round half (latency 1, sync domain)
        # exp_range (lo, hi): the grid is a runtime input ``exp`` in [lo, hi], value acc * 2**exp
        # (a float significand of any exponent: the adder of FloatAccPE); acc_fmt.frac is then unused
        # lead: the leading one's position where it matters, known to the caller (a normal float's
        # significand; FloatAccPE.out_round proves a subnormal one rounds alike), instead of a count
        self.acc_fmt, self.out_fmt, self.pipelined, self.exp_range = acc_fmt, out_fmt, pipelined, exp_range
        self.lead = lead
        ports = {"exp": In(signed(_bits(*exp_range)))} if exp_range is not None else {}
        super().__init__({
            **ports,
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
        if self.lead is None:
            p = leading_one(m, mag, "lo")
        else:
            p = Const(self.lead, range(W))
        if self.exp_range is None:
            c_lo = c_hi = c = emin + F     # leading-one position of the least normal
        else:                              # the same, for the runtime grid 2**exp (F = -exp)
            c_lo, c_hi = emin - self.exp_range[1], emin - self.exp_range[0]
            c = Signal(signed(_bits(c_lo, c_hi)))
            m.d.comb += c.eq(emin - self.exp)
        lo_dr, hi_dr = max(c_lo, 0) - man, max(W - 1, c_hi) - man  # pe >= max(p, c), p >= 0
        dw = max(abs(lo_dr), abs(hi_dr), abs(c_lo), abs(c_hi), W).bit_length() + 2
        pe = Signal(signed(dw))
        dr = Signal(signed(dw))
        m.d.comb += [pe.eq(Mux(p > c, p, c)), dr.eq(pe - man)]
        nw = man + 3
        n = Signal(signed(nw))
        if hi_dr > 0:
            # a shift of W + 1 or more leaves floor 0 or -1 with the same round and sticky bits
            rmax = min(hi_dr, W + 1)
            drr = Signal(range(rmax + 1))
            m.d.comb += drr.eq(Mux(dr < 0, 0, Mux(dr > rmax, rmax, dr)))
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
        grid = self.exp if self.exp_range is not None else -F
        if self.pipelined:  # cut between the normalize/round half and the pack/overflow half
            regs = []
            for sig, nm in ((n, "n"), (pe, "pe"), (neg, "neg"), (nan_in, "nan"), (pinf_in, "pinf"),
                            (ninf_in, "ninf")) + (((grid, "exp"),) if self.exp_range is not None else ()):
                r = Signal(sig.shape(), name=f"{nm}_r")
                m.d.sync += r.eq(sig)
                regs.append(r)
            n, pe, neg, nan_in, pinf_in, ninf_in = regs[:6]
            grid = regs[6] if self.exp_range is not None else grid
        absn = Signal(unsigned(man + 2))
        m.d.comb += absn.eq(Mux(n[-1], -n, n))
        carry = absn[man + 1]
        ew = max(dw, abs(F).bit_length() + 1, (abs(o.bias) + abs(emax) + 2).bit_length() + 1) + 2
        if self.exp_range is not None:
            ew = max(ew, _bits(*self.exp_range) + 2)
        e = Signal(signed(ew))                    # unbiased exponent after rounding
        m.d.comb += e.eq(pe + grid + carry)
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
        select_code(m, o, self.z, self.ovf, neg, finite, over, nan_in, pinf_in, ninf_in)
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
