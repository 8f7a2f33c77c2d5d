"""A processing element with a floating-point accumulator: what real float MACs build.

Golden model: ``fewbits.sim.mac_reference`` with a ``FloatAccumulator`` (DESIGN.md, the
arithmetic contract): ``s = round_acc(bias)``; for each chunk of N consecutive k in ascending
order ``s = round_acc(s + exact sum of the chunk's products)``; ``z = requant_out(s)``, its
overflow flag also raised when ``s`` is not finite.

Datapath (one K step per cycle, no stall):

* product: ``FloatMultiplier`` (exact), placed by ``FloatAligner`` on a fixed grid ``2**g``;
* exact chunk sum: a register ``P`` adds the products of the current chunk (N cycles when N > 1),
  with the chunk's NaN/+inf/-inf flags;
* align, add: at the chunk's last k the running sum ``s`` (a float code in a register) is
  aligned onto the same grid and added to ``P``;
* normalize, round: ``FloatRounder`` (leading one, one rounding in the accumulator's mode,
  overflow and specials per its ``special``) writes the new ``s``.

The grid holds every value of ``s`` a tile can reach and every chunk sum (``window``, with its
proof), so ``s + P`` is exact before its one rounding; this is the simple, verifiable form of
the datapath (a production adder aligns to the larger exponent and keeps a sticky bit instead,
narrower and with the same results).  Latency: ``out_valid`` 2 cycles after ``in_last``; the
loop's critical path is align + add + normalize + round in one cycle.
"""

from __future__ import annotations

import math

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from fewbits.hw.align import FloatAligner
from fewbits.hw.fmul import FloatMultiplier, field_offset_max, float_fields
from fewbits.hw.fround import FloatRounder
from fewbits.sim import Accumulator, FormatError
from fewbits.sim.accumulator import FloatAccumulator


def _log2_ceil(x: float) -> int:
    return math.ceil(math.log2(x)) if x > 0 else 0


def window(spec) -> Accumulator:
    """The fixed grid where ``s + P`` is exact, as narrow as the spec allows.

    Bottom: every product and the bias are multiples of ``2**g``, ``g = min(qa + qb, q_bias)``, and so
    is every ``s``: rounding a multiple of ``2**g`` either leaves it (where the accumulator's ulp is
    finer than ``2**g`` the value has at most ``man + 1`` significant bits) or gives a multiple of a
    coarser power of two.  Top: ``|s| < 2**top_s`` with ``top_s`` the accumulator's range, or less:
    each rounding grows a magnitude by at most a factor ``1 + 2**-man`` plus ``2**q0`` (rounding up
    into the subnormals), so ``|s| <= (1 + 2**-man)**n * (max|bias| + k_max * max|product| + n * 2**q0)``
    over the ``n`` roundings of a tile.  A chunk sum stays below ``chunk * max|product|``, the bias
    below ``2**(emax + 1)`` of its format; one bit more for ``s + P`` and a sign bit.
    """
    acc = spec.acc_fmt
    fmt = acc.fmt
    a, b, z = spec.a_fmt, spec.b_fmt, spec.bias_fmt
    g = min(a.q0 + b.q0, z.q0)
    pmax = a.max * b.max
    n = -(-spec.k_max // acc.chunk) + 1
    log_bound = n * math.log2(1 + 2.0 ** -fmt.man) + math.log2(z.max + spec.k_max * pmax + n * 2.0 ** fmt.q0)
    top_s = min(fmt.emax + 1, math.ceil(log_bound) + 1)
    top_p = _log2_ceil(acc.chunk * pmax) + 1
    top = max(top_s, top_p, z.emax + 1) + 1  # (the bias is placed on the window before its rounding)
    return Accumulator(top - g + 1, -g)


def _flags(m, nan, inf, sign, name):
    """(nan, +inf, -inf) of a decoded float."""
    p, n = Signal(name=f"{name}_pinf"), Signal(name=f"{name}_ninf")
    m.d.comb += [p.eq(inf & ~sign), n.eq(inf & sign)]
    return nan, p, n


class FloatAccPE(wiring.Component):
    """One PE, ``MacUnit``'s protocol (``in_valid``/``in_first``/``in_last``, ``a``, ``b``, ``bias``,
    ``out_valid``/``z``/``ovf``) with a float accumulator ``spec.acc_fmt``; float operands and output."""

    golden = "fewbits.sim.mac_reference (a FloatAccumulator: one rounding per chunk, ascending k)"
    latency = 2
    dynamic = False

    def __init__(self, spec):
        acc = spec.acc_fmt
        if not isinstance(acc, FloatAccumulator):
            raise FormatError(f"bad accumulator {acc}: FloatAccPE takes a float accumulator")
        for name in ("a_fmt", "b_fmt", "out_fmt", "bias_fmt"):
            f = getattr(spec, name)
            if f is not None and f.kind != "float":
                raise FormatError(f"bad {name[:-4]} format {f} for FloatAccPE: accepted float formats")
        self.spec, self.acc = spec, acc
        self.win = window(spec)
        bias = spec.bias_fmt
        super().__init__({
            "in_valid": In(1), "in_first": In(1), "in_last": In(1),
            "a": In(unsigned(spec.a_fmt.width)), "b": In(unsigned(spec.b_fmt.width)),
            "bias": In(unsigned(bias.width)),
            "out_valid": Out(1), "z": Out(unsigned(spec.out_fmt.width)), "ovf": Out(1),
            "s": Out(unsigned(acc.fmt.width)),  # the running sum register (tests, debugging)
        })

    def _place(self, m, name, sign, man, off, q0, man_width, exp_max):
        """A float's (sign, mantissa, exponent offset) on the window grid, exactly."""
        al = FloatAligner(q0, man_width, exp_max, self.win)
        m.submodules[name] = al
        m.d.comb += [al.sign.eq(sign), al.man.eq(man), al.exp.eq(off)]
        return al.acc

    def _decode(self, m, code, fmt, name):
        """A float code on the window grid plus its (nan, +inf, -inf) flags."""
        sign, man, off, nan, inf = float_fields(m, code, fmt, name)
        v = self._place(m, f"{name}_al", sign, man, off, fmt.q0, fmt.man + 1, field_offset_max(fmt))
        return v, _flags(m, nan, inf, sign, name)

    def _round(self, m, name, value, flags, fmt):
        r = FloatRounder(self.win, fmt)
        m.submodules[name] = r
        m.d.comb += [r.acc.eq(value), r.nan.eq(flags[0]), r.pinf.eq(flags[1]), r.ninf.eq(flags[2])]
        return r

    def elaborate(self, platform):
        m = Module()
        spec, acc, W = self.spec, self.acc, self.win.width
        fmt = acc.fmt
        # product -> window grid
        mul = FloatMultiplier(spec.a_fmt, spec.b_fmt)
        m.submodules.mul = mul
        m.d.comb += [mul.a.eq(self.a), mul.b.eq(self.b)]
        prod = self._place(m, "prod_al", mul.sign, mul.man, mul.exp, mul.q0, mul.man_width, mul.exp_max)
        p_pinf, p_ninf = Signal(), Signal()
        m.d.comb += [p_pinf.eq(mul.inf & ~mul.sign), p_ninf.eq(mul.inf & mul.sign)]
        # the running sum's start: the bias rounded once to the accumulator (+0 without a bias)
        s_reg = Signal(unsigned(fmt.width))
        if spec.bias_fmt is not None:
            bv, bflags = self._decode(m, self.bias, spec.bias_fmt, "bias")
            s_start = self._round(m, "bias_round", bv, bflags, fmt).z
        else:
            s_start = 0
        s_src = Signal(unsigned(fmt.width))
        m.d.comb += s_src.eq(Mux(self.in_first, s_start, s_reg))
        # exact chunk sum (cnt: products already in P)
        cnt = Signal(range(max(2, acc.chunk)))
        P = Signal(signed(W))
        cflags = [Signal(name=n) for n in ("c_nan", "c_pinf", "c_ninf")]
        fresh = Signal()
        m.d.comb += fresh.eq(self.in_first | (cnt == 0))
        p_next = Signal(signed(W))
        f_next = [Signal(name=f"{c.name}_next") for c in cflags]
        m.d.comb += p_next.eq(Mux(fresh, 0, P) + prod)
        for f, c, new in zip(f_next, cflags, (mul.nan, p_pinf, p_ninf)):
            m.d.comb += f.eq(Mux(fresh, 0, c) | new)
        chunk_end = Signal()
        m.d.comb += chunk_end.eq(self.in_last | (Mux(self.in_first, 0, cnt) == acc.chunk - 1))
        # align s, add, normalize, round
        sv, sflags = self._decode(m, s_src, fmt, "s")
        total = Signal(signed(W))
        m.d.comb += total.eq(sv + p_next)
        rnd = self._round(m, "acc_round", total, [Signal(name=n) for n in ("x_nan", "x_pinf", "x_ninf")], fmt)
        m.d.comb += [rnd.nan.eq(sflags[0] | f_next[0]), rnd.pinf.eq(sflags[1] | f_next[1]),
                     rnd.ninf.eq(sflags[2] | f_next[2])]
        done = Signal()
        m.d.sync += done.eq(self.in_valid & self.in_last)
        with m.If(self.in_valid):
            m.d.sync += [s_reg.eq(Mux(chunk_end, rnd.z, s_src)), P.eq(p_next),
                         cnt.eq(Mux(chunk_end, 0, Mux(self.in_first, 0, cnt) + 1))]
            m.d.sync += [c.eq(f) for c, f in zip(cflags, f_next)]
        # output: one rounding of s to the output format; the flag also for a non-finite s
        ov, oflags = self._decode(m, s_reg, fmt, "o")
        out = self._round(m, "out_round", ov, oflags, spec.out_fmt)
        nonfinite = Signal()
        m.d.comb += nonfinite.eq(oflags[0] | oflags[1] | oflags[2])
        m.d.sync += self.out_valid.eq(done)
        with m.If(done):
            m.d.sync += [self.z.eq(out.z), self.ovf.eq(out.ovf | nonfinite)]
        m.d.comb += self.s.eq(s_reg)
        return m
