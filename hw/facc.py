"""A processing element with a floating-point accumulator: what real float MACs build.

Golden model: ``fewbits.sim.mac_reference`` with a ``FloatAccumulator`` (DESIGN.md, the
arithmetic contract): ``s = round_acc(bias)``; for each chunk of N consecutive k in ascending
order ``s = round_acc(s + exact sum of the chunk's products)``; ``z = requant_out(s)``, its
overflow flag also raised when ``s`` is not finite.

Datapath (one K step per cycle, no stall), a floating-point adder with one rounding:

* the chunk's exact sum ``P``: for chunk 1 the exact product of ``FloatMultiplier`` (sign,
  exponent, ``wa + wb``-bit significand); for chunk N > 1 a register on the products' own grid
  (``chunk_window``: N products, no more) adds the chunk's products, then sign/magnitude.  Either
  is normalized by a leading-one count (leading one at the top of its ``wp`` bits, exactly);
* ``s`` is the running-sum register decoded (sign, exponent, ``m + 1``-bit significand,
  subnormals unnormalized);
* swap: the operand whose significand field reaches higher (``T``, the exponent just above
  its field) is ``X``, the other ``Y`` (a zero operand is always ``Y``); both left-aligned in
  ``W = max(m + 3, max(m + 1, wp) + 1)`` bits;
* ``Y`` shifted right by ``d = T_X - T_Y`` (clamped at ``W``), the bits shifted out ORed into a
  sticky bit below the adder's LSB ``u``; signed add of ``X`` and ``Y + sticky * u/2``;
* ``FloatRounder`` (leading one, normalize, one rounding in the accumulator's mode, overflow and
  specials per its ``special``) on that sum with its runtime exponent writes the new ``s``.

Why this is the one rounding of the exact ``s + P`` (``m``: the accumulator's mantissa bits).
Let ``T`` be the exact sum and ``V`` the adder's value.  If no bit is shifted out, ``V = T``.
Otherwise ``V`` lies in the same open interval ``(k u, (k + 1) u)`` as ``T`` (the shifted-out
part is in ``(0, u)``, replaced by ``u/2`` with ``Y``'s sign), so ``V`` and ``T`` have the same
floor on grid ``u``, are both off it, and have the same sign: rounding either to a quantum
``Q >= 2u`` gives the same result (floor, round bit and sticky on ``Q`` only depend on those).
``Q >= 2u`` holds whenever bits are shifted out: ``Y``'s bits leave the adder only when
``d > W - wy >= 1``, i.e. ``d >= 2``; if ``X`` is normalized, ``|X| >= 2**(T_X - 1)`` and
``|Y| < 2**(T_X - 2)``, so ``|T| > 2**(T_X - 2)``, ``Q >= 2**(T_X - 2 - m)`` and
``2u = 2**(T_X - W + 1) <= Q`` as ``W >= m + 3``.  The only unnormalized ``X`` is a subnormal
``s``; then ``T_X = q0 + m + 1`` and ``Q >= 2**q0 >= 2u`` as ``W >= m + 2``.  With ``d <= 1``
(where cancellation can expose every bit) nothing is shifted out, as ``W >= wy + 1``.  An exact
zero sum is ``V = 0`` (a sticky makes ``V`` an odd multiple of ``u/2``) and rounds to +0.

Latency: ``out_valid`` 2 cycles after ``in_last``; the loop's critical path is decode, swap,
shift, add, normalize and round in one cycle.
"""

from __future__ import annotations

import math

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from fewbits.hw.align import FloatAligner
from fewbits.hw.fmul import FloatMultiplier, field_offset_max, float_fields
from fewbits.hw.fround import FloatRounder
from fewbits.sim import Accumulator, FormatError
from fewbits.sim.accumulator import FloatAccumulator


def _log2_ceil(x: float) -> int:
    return math.ceil(math.log2(x)) if x > 0 else 0


def _sbits(lo: int, hi: int) -> int:
    return max(abs(lo), abs(hi)).bit_length() + 1


def chunk_window(spec) -> Accumulator:
    """The fixed grid of one chunk's exact sum: the products' grid, ``|P| <= chunk * max|product|``."""
    a, b = spec.a_fmt, spec.b_fmt
    g = a.q0 + b.q0
    return Accumulator(_log2_ceil(spec.acc_fmt.chunk * a.max * b.max) + 2 - g, -g)


def _normalize(m, mag, name):
    """``mag`` shifted left until its leading one is the top bit (0 stays 0), and the shift: one stage
    per power of two (shift by 2**j when the top 2**j bits are zero), the count falls out of the stages."""
    w = len(mag)
    k = max(1, (w - 1).bit_length())
    cur = mag
    bits = []
    for j in reversed(range(k)):
        sh = 1 << j
        z = Signal(name=f"{name}_z{j}")
        nxt = Signal(unsigned(w), name=f"{name}_n{j}")
        m.d.comb += [z.eq(cur[max(0, w - sh):] == 0), nxt.eq(Mux(z, cur << sh, cur))]
        bits.append(z)
        cur = nxt
    lz = Signal(range(1 << k), name=f"{name}_lz")
    m.d.comb += lz.eq(Cat(*reversed(bits)))
    return cur, lz


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
        self.cwin = chunk_window(spec) if acc.chunk > 1 else None
        bias = spec.bias_fmt
        super().__init__({
            "in_valid": In(1), "in_first": In(1), "in_last": In(1),
            "a": In(unsigned(spec.a_fmt.width)), "b": In(unsigned(spec.b_fmt.width)),
            "bias": In(unsigned(bias.width)),
            "out_valid": Out(1), "z": Out(unsigned(spec.out_fmt.width)), "ovf": Out(1),
            "s": Out(unsigned(acc.fmt.width)),  # the running sum register (tests, debugging)
        })

    @staticmethod
    def _round(m, name, sign, man, off, fmt, out_fmt, flags):
        """One rounding of the float ``(-1)**sign * man * 2**(off + fmt.q0)`` to ``out_fmt``."""
        w = len(man) + 1
        # a normal input's leading one is its top bit; a subnormal's position does not matter when the
        # output's normals stop no lower (its least normal is then at or above the input's top bit)
        lead = len(man) - 1 if out_fmt.emin >= fmt.emin else None
        r = FloatRounder(Accumulator(w, 0), out_fmt, exp_range=(fmt.q0, fmt.q0 + field_offset_max(fmt)), lead=lead)
        m.submodules[name] = r
        nan, inf = flags
        m.d.comb += [r.acc.eq(Mux(sign, -man, man)), r.exp.eq(off + fmt.q0),
                     r.nan.eq(nan), r.pinf.eq(inf & ~sign), r.ninf.eq(inf & sign)]
        return r

    def _chunk_sum(self, m, mul):
        """The chunk's exact sum, normalized: (sign, significand, T, zero, (nan, +inf, -inf), chunk_end)."""
        spec, acc = self.spec, self.acc
        p_pinf, p_ninf = Signal(), Signal()
        m.d.comb += [p_pinf.eq(mul.inf & ~mul.sign), p_ninf.eq(mul.inf & mul.sign)]
        if acc.chunk == 1:  # the product itself
            wp = mul.man_width
            norm, lz = _normalize(m, mul.man, "p")
            T = Signal(signed(_sbits(mul.q0 + 1, mul.q0 + mul.exp_max + wp)), name="p_top")
            m.d.comb += T.eq(mul.exp - lz + (mul.q0 + wp))
            return mul.sign, norm, T, (mul.man == 0), (mul.nan, p_pinf, p_ninf), Const(1, 1), (mul.q0 + 1,
                                                                                              mul.q0 + mul.exp_max + wp)
        win = self.cwin
        al = FloatAligner(mul.q0, mul.man_width, mul.exp_max, win)
        m.submodules.prod_al = al
        m.d.comb += [al.sign.eq(mul.sign), al.man.eq(mul.man), al.exp.eq(mul.exp)]
        cnt = Signal(range(acc.chunk))  # products already in P
        P = Signal(signed(win.width))
        cflags = [Signal(name=n) for n in ("c_nan", "c_pinf", "c_ninf")]
        fresh = Signal()
        m.d.comb += fresh.eq(self.in_first | (cnt == 0))
        p_next = Signal(signed(win.width))
        f_next = [Signal(name=f"{c.name}_next") for c in cflags]
        m.d.comb += p_next.eq(Mux(fresh, 0, P) + al.acc)
        for f, c, new in zip(f_next, cflags, (mul.nan, p_pinf, p_ninf)):
            m.d.comb += f.eq(Mux(fresh, 0, c) | new)
        chunk_end = Signal()
        m.d.comb += chunk_end.eq(self.in_last | (Mux(self.in_first, 0, cnt) == acc.chunk - 1))
        with m.If(self.in_valid):
            m.d.sync += [P.eq(p_next), cnt.eq(Mux(chunk_end, 0, Mux(self.in_first, 0, cnt) + 1))]
            m.d.sync += [c.eq(f) for c, f in zip(cflags, f_next)]
        sign = p_next[-1]
        mag = Signal(unsigned(win.width - 1), name="c_mag")
        m.d.comb += mag.eq(Mux(sign, -p_next, p_next))
        norm, lz = _normalize(m, mag, "c")
        top = -win.frac + win.width - 1
        T = Signal(signed(_sbits(top - win.width + 2, top)), name="c_top")
        m.d.comb += T.eq(top - lz)
        return sign, norm, T, (mag == 0), f_next, chunk_end, (top - win.width + 2, top)

    def align_y(self, m, my, d, W):
        """``my`` shifted right by ``d`` (<= W) and the sticky OR of the bits shifted out."""
        mask = Signal(unsigned(W), name="y_mask")
        m.d.comb += mask.eq((Const(1, W + 1) << d) - 1)
        y = Signal(unsigned(W), name="y_sh")
        m.d.comb += y.eq(my >> d)
        return y, (my & mask).any()

    def elaborate(self, platform):
        m = Module()
        spec, acc = self.spec, self.acc
        fmt = acc.fmt
        man = fmt.man
        mul = FloatMultiplier(spec.a_fmt, spec.b_fmt)
        m.submodules.mul = mul
        m.d.comb += [mul.a.eq(self.a), mul.b.eq(self.b)]
        # the running sum's start: the bias rounded once to the accumulator (+0 without a bias)
        s_reg = Signal(unsigned(fmt.width))
        if spec.bias_fmt is not None:
            bs, bman, boff, bnan, binf = float_fields(m, self.bias, spec.bias_fmt, "bias")
            s_start = self._round(m, "bias_round", bs, bman, boff, spec.bias_fmt, fmt, (bnan, binf)).z
        else:
            s_start = 0
        s_src = Signal(unsigned(fmt.width))
        m.d.comb += s_src.eq(Mux(self.in_first, s_start, s_reg))
        ps, pm, pT, pzero, pflags, chunk_end, (plo, phi) = self._chunk_sum(m, mul)
        wp = len(pm)
        # s: (sign, significand, T) and its specials
        ss, sm, soff, snan, sinf = float_fields(m, s_src, fmt, "s")
        slo, shi = fmt.q0 + man + 1, fmt.q0 + man + 1 + field_offset_max(fmt)
        sT = Signal(signed(_sbits(slo, shi)), name="s_top")
        m.d.comb += sT.eq(soff + slo)
        # swap by T, left-align both in W bits
        W = max(man + 3, max(man + 1, wp) + 1)
        tlo, thi = min(slo, plo), max(shi, phi)
        p_big = Signal()
        diff = Signal(signed(_sbits(tlo - thi, thi - tlo)), name="t_diff")
        m.d.comb += [diff.eq(pT - sT), p_big.eq((pm != 0) & ((sm == 0) | (diff > 0)))]
        ms, mp = Signal(unsigned(W), name="s_al"), Signal(unsigned(W), name="p_al")
        m.d.comb += [ms.eq(sm << (W - man - 1)), mp.eq(pm << (W - wp))]
        mx, my = Signal(unsigned(W), name="x_m"), Signal(unsigned(W), name="y_m")
        tx = Signal(signed(_sbits(tlo, thi)), name="x_top")
        dr = Signal(signed(_sbits(tlo - thi, thi - tlo)), name="d_raw")
        sx, sy = Signal(name="x_sign"), Signal(name="y_sign")
        m.d.comb += [mx.eq(Mux(p_big, mp, ms)), my.eq(Mux(p_big, ms, mp)), tx.eq(Mux(p_big, pT, sT)),
                     dr.eq(Mux(p_big, diff, -diff)), sx.eq(Mux(p_big, ps, ss)), sy.eq(Mux(p_big, ss, ps))]
        d = Signal(range(W + 1), name="d")
        m.d.comb += d.eq(Mux(dr > W, W, Mux(dr < 0, 0, dr)))  # (dr < 0 only when Y is zero)
        ysh, sticky = self.align_y(m, my, d, W)
        # signed add on grid u/2: X, and Y with the sticky bit below its LSB
        xv, yv = Signal(signed(W + 3), name="x_v"), Signal(signed(W + 3), name="y_v")
        m.d.comb += [xv.eq(Mux(sx, -Cat(Const(0, 1), mx), Cat(Const(0, 1), mx))),
                     yv.eq(Mux(sy, -Cat(sticky, ysh), Cat(sticky, ysh)))]
        rnd = FloatRounder(Accumulator(W + 3, 0), fmt, exp_range=(tlo - W - 1, thi - W - 1))
        m.submodules.acc_round = rnd
        m.d.comb += [rnd.acc.eq(xv + yv), rnd.exp.eq(tx - (W + 1)),
                     rnd.nan.eq(snan | pflags[0]), rnd.pinf.eq((sinf & ~ss) | pflags[1]),
                     rnd.ninf.eq((sinf & ss) | pflags[2])]
        done = Signal()
        m.d.sync += done.eq(self.in_valid & self.in_last)
        with m.If(self.in_valid):
            m.d.sync += s_reg.eq(Mux(chunk_end, rnd.z, s_src))
        # output: one rounding of s to the output format; the flag also for a non-finite s
        os_, om, ooff, onan, oinf = float_fields(m, s_reg, fmt, "o")
        out = self._round(m, "out_round", os_, om, ooff, fmt, spec.out_fmt, (onan, oinf))
        negz = Signal()  # s = -0 (a negative sum rounded to zero) stays -0; the rounder's input cannot say so
        m.d.comb += negz.eq(os_ & (om == 0) & ~onan & ~oinf)
        m.d.sync += self.out_valid.eq(done)
        with m.If(done):
            m.d.sync += [self.z.eq(Mux(negz, 1 << (spec.out_fmt.width - 1), out.z)),
                         self.ovf.eq(out.ovf | onan | oinf)]
        m.d.comb += self.s.eq(s_reg)
        return m
