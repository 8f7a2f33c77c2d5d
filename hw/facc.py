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
* ``s`` is the running-sum register, kept unpacked (``fpack.Unpacked``: sign, exponent field, the
  ``m + 1``-bit significand with its hidden bit, NaN and infinity flags; exactly what decoding the
  accumulator format's code would give, so no encoder after the rounding and no decoder before the
  adder or the output conversion).  Exponents are kept as ``T - t_off`` with ``T`` the exponent just
  above a significand's field, so that ``s``'s is its exponent field (1 for a subnormal): no adder;
* swap: the operand whose significand field reaches higher is ``X``, the other ``Y`` (a zero operand
  is always ``Y``; at equal ``T`` the larger significand is ``X`` when ``s`` cannot be subnormal, see
  below); both left-aligned in ``W = max(m + 3, max(m + 1, wp) + 1)`` bits;
* ``Y`` shifted right by ``d = T_X - T_Y`` (clamped at ``W``), the bits shifted out ORed into a
  sticky bit below the adder's LSB ``u``; a sign-magnitude add or subtract of ``X`` and
  ``Y + sticky * u/2`` (``W + 2`` bits: the carry on top, the sticky bit at the bottom), negated
  once when it is negative (only possible when ``s`` can be subnormal);
* ``fpack.normalize`` moves the leading one to the top (not below the accumulator's least normal:
  a shift limit, built only when a sum can be subnormal), and ``fpack.round_unpacked`` rounds once
  at the static position (``m`` bits below the top, a round bit and the OR of the rest), in the
  accumulator's mode, with its overflow and specials: the new ``s``.
* The bias (start) and the output are ``_convert``: one rounding from a decoded float (the bias to
  the unpacked ``s``, ``s`` to the output's code by ``round_pack``), with a subnormal normalized
  first only where the target has normals below the source's least normal (fp16 -> fp32);
  conversions that cannot round build no rounding logic.

**When no sum can be subnormal.**  Every exact sum is a multiple of ``2**g`` with ``g`` the finest of
the products' grid (``a.q0 + b.q0``) and the bias's (``bias.q0``): rounding a multiple of ``2**g`` to
a power-of-two grid gives a multiple of ``2**g`` again.  When ``2**g`` is a normal of the accumulator
(fp16, e4m3 and e5m2 operands with an fp16 or fp8 bias into fp32: ``g = -48, -18, -32 >= -126``; not
bf16 or fp32 operands, whose products reach ``2**-266``), a nonzero ``s`` is never subnormal, every ``X`` is normalized, the
difference ``X - Y`` of a same-``T`` pair is made non-negative by the swap, and the normalizer needs
no limit.

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
``s`` (the product or chunk sum is normalized first); then ``T_X = q0 + m + 1`` and ``Q >= 2**q0 >= 2u`` as ``W >= m + 2``.  With ``d <= 1``
(where cancellation can expose every bit) nothing is shifted out, as ``W >= wy + 1``.  An exact
zero sum is ``V = 0`` (a sticky makes ``V`` an odd multiple of ``u/2``) and rounds to +0.

Latency: ``out_valid`` 2 cycles after ``in_last``; the loop's critical path is decode, swap,
shift, add, normalize and round in one cycle (its length in gates: docs/HARDWARE.md).
"""

from __future__ import annotations

import math

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from fewbits.hw.align import FloatAligner
from fewbits.hw.fmul import FloatMultiplier, field_offset_max, float_fields
from fewbits.hw.fpack import Unpacked, normalize, round_pack, round_unpacked, sbits, shift_right_sticky
from fewbits.sim import Accumulator, FormatError
from fewbits.sim.accumulator import FloatAccumulator


def _log2_ceil(x: float) -> int:
    return math.ceil(math.log2(x)) if x > 0 else 0


def chunk_window(spec) -> Accumulator:
    """The fixed grid of one chunk's exact sum: the products' grid, ``|P| <= chunk * max|product|``."""
    a, b = spec.a_fmt, spec.b_fmt
    g = a.q0 + b.q0
    return Accumulator(_log2_ceil(spec.acc_fmt.chunk * a.max * b.max) + 2 - g, -g)


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
        })

    @staticmethod
    def _convert(m, name, sign, man, e, offset, src, dst, flags, unpacked):
        """One rounding of a decoded ``src`` float to ``dst``: ``man`` its significand (``src.man + 1`` bits,
        hidden bit included), ``e + offset`` the exponent of its top bit (``src.emin`` for a subnormal),
        ``flags`` = (nan, inf).  ``unpacked``: ``(Unpacked, ovf)`` (``round_unpacked``), else ``(code, ovf)``.
        A subnormal is normalized first only where ``dst`` has normals below ``src.emin``, by at most the
        difference; conversions that cannot round build no rounding logic."""
        nan, inf = flags
        lo, hi = src.emin, src.emin + field_offset_max(src)
        if dst.emin < src.emin:
            lim = min(src.emin - dst.emin, len(man) - 1)
            man, sh = normalize(m, man, f"{name}_n", None if lim == len(man) - 1 else Const(lim, range(lim + 1)))
            e2 = Signal(signed(sbits(lo - lim - offset, hi - offset)), name=f"{name}_e2")
            m.d.comb += e2.eq(e - sh)
            e, lo = e2, lo - lim
        rnd = round_unpacked if unpacked else round_pack
        return rnd(m, name, sign, man, e, (lo, hi), dst, (nan, inf & ~sign, inf & sign), offset=offset)

    @staticmethod
    def _top(code, fmt):
        """max(exponent field, 1) of a float code: the field with its low bit ORed with 'field is zero'."""
        field = code[fmt.man:fmt.man + fmt.exp]
        return Cat(field[0] | (field == 0), field[1:])

    def _chunk_sum(self, m, mul, t_off):
        """The chunk's exact sum, normalized: (sign, significand, T - t_off, zero, (nan, +inf, -inf), chunk_end,
        T's range)."""
        spec, acc = self.spec, self.acc
        p_pinf, p_ninf = Signal(), Signal()
        m.d.comb += [p_pinf.eq(mul.inf & ~mul.sign), p_ninf.eq(mul.inf & mul.sign)]
        if acc.chunk == 1:  # the product itself
            wp = mul.man_width
            norm, lz = normalize(m, mul.man, "p")
            # mul.exp = max(field_a, 1) - 1 + max(field_b, 1) - 1, taken from the codes with the two -1 folded into
            # the constant (max(field, 1) is one OR into the low bit)
            fa, fb = spec.a_fmt, spec.b_fmt
            ta, tb = (self._top(self.a, fa), self._top(self.b, fb))
            T = Signal(signed(sbits(mul.q0 + 1 - t_off, mul.q0 + mul.exp_max + wp - t_off)), name="p_top")
            m.d.comb += T.eq(ta + tb - lz + (mul.q0 + wp - t_off - 2))
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
        norm, lz = normalize(m, mag, "c")
        top = -win.frac + win.width - 1
        T = Signal(signed(sbits(top - win.width + 2 - t_off, top - t_off)), name="c_top")
        m.d.comb += T.eq(top - t_off - lz)
        return sign, norm, T, (mag == 0), f_next, chunk_end, (top - win.width + 2, top)

    def align_y(self, m, my, d, dmax):
        """``my`` shifted right by ``d`` (<= dmax) and the sticky OR of the bits shifted out."""
        return shift_right_sticky(m, my, d, dmax, "y")

    def elaborate(self, platform):
        m = Module()
        spec, acc = self.spec, self.acc
        fmt = acc.fmt
        man = fmt.man
        mul = FloatMultiplier(spec.a_fmt, spec.b_fmt)
        m.submodules.mul = mul
        m.d.comb += [mul.a.eq(self.a), mul.b.eq(self.b)]
        # the running sum register, unpacked (fpack.Unpacked: sign, top = max(field, 1), significand with its
        # hidden bit, NaN and infinity flags): what decoding its fp code would give, without the encoder
        # after the rounding, the decoder before the adder or the one before the output conversion
        widths = (1, fmt.exp, man + 1, 1, 1)
        # (no reset: s is written on every tile's first step before it is read)
        s_reg = Unpacked(*(Signal(unsigned(w), name=f"s_{n}", reset_less=True)
                           for w, n in zip(widths, Unpacked._fields)))
        # the running sum's start: the bias rounded once to the accumulator (+0 without a bias)
        if spec.bias_fmt is not None:
            bf = spec.bias_fmt
            bsign, bman, boff, bnan, binf = float_fields(m, self.bias, bf, "bias")
            s_start = self._convert(m, "bias", bsign, bman, boff, bf.emin, bf, fmt, (bnan, binf), True)[0]
        else:
            s_start = Unpacked(0, 1, 0, 0, 0)
        s_src = Unpacked(*(Signal(unsigned(w), name=f"s_src_{n}") for w, n in zip(widths, Unpacked._fields)))
        m.d.comb += [d.eq(Mux(self.in_first, a, b)) for d, a, b in zip(s_src, s_start, s_reg)]
        # exponents are kept as T - t_off, where T is the exponent just above a significand's field: s's is then
        # its exponent field (1 for a subnormal), with no adder
        slo, shi = fmt.q0 + man + 1, fmt.q0 + man + 1 + field_offset_max(fmt)
        t_off = slo - 1
        ps, pm, pT, pzero, pflags, chunk_end, (plo, phi) = self._chunk_sum(m, mul, t_off)
        wp = len(pm)
        # s: (sign, significand, T) and its specials
        ss, sm, snan, sinf = s_src.sign, s_src.sig, s_src.nan, s_src.inf
        sT = Signal(signed(sbits(1, shi - t_off)), name="s_top")
        m.d.comb += sT.eq(s_src.top)
        # swap by T, left-align both in W bits
        W = max(man + 3, max(man + 1, wp) + 1)
        tlo, thi = min(slo, plo), max(shi, phi)
        p_big = Signal()
        diff = Signal(signed(sbits(tlo - thi, thi - tlo)), name="t_diff")
        ms, mp = Signal(unsigned(W), name="s_al"), Signal(unsigned(W), name="p_al")
        m.d.comb += [ms.eq(sm << (W - man - 1)), mp.eq(pm << (W - wp))]
        # Every exact sum is a multiple of 2**g (g: the finest of the products' and the bias's grids), so when
        # 2**g is a normal of the accumulator, s is never subnormal: X (normalized, or the larger at equal T)
        # is then never smaller than Y, the difference never negative, and no sum needs the subnormal limit.
        g = min([spec.a_fmt.q0 + spec.b_fmt.q0] + ([spec.bias_fmt.q0] if spec.bias_fmt is not None else []))
        normal_s = g >= fmt.emin
        bigger = (diff > 0) | ((diff == 0) & (mp > ms)) if normal_s else diff > 0
        # a normalized significand is zero exactly when its top bit is clear: the product's always (it is
        # normalized), s's when it is never subnormal
        p_zero, s_zero = ~pm[-1], (~sm[-1] if normal_s else sm == 0)
        m.d.comb += [diff.eq(pT - sT), p_big.eq(~p_zero & (s_zero | bigger))]
        mx, my = Signal(unsigned(W), name="x_m"), Signal(unsigned(W), name="y_m")
        tx = Signal(signed(sbits(tlo - t_off, thi - t_off)), name="x_top")
        dr = Signal(signed(sbits(tlo - thi, thi - tlo)), name="d_raw")
        sx, sy = Signal(name="x_sign"), Signal(name="y_sign")
        m.d.comb += [mx.eq(Mux(p_big, mp, ms)), my.eq(Mux(p_big, ms, mp)), tx.eq(Mux(p_big, pT, sT)),
                     sx.eq(Mux(p_big, ps, ss)), sy.eq(Mux(p_big, ss, ps))]
        m.d.comb += dr.eq(tx - Mux(p_big, sT, pT))
        # the shift: dr's low bits, all ones when dr is out of their range (dr >= 2**nd > W shifts every bit out,
        # as all ones does; dr < 0 only when Y is zero, which any shift leaves zero)
        nd = W.bit_length()
        d = Signal(unsigned(nd), name="d")
        m.d.comb += d.eq(dr[:nd] | dr[nd:].any().replicate(nd))
        ysh, sticky = self.align_y(m, my, d, (1 << nd) - 1)
        # sign-magnitude add on grid u/2 (bit 0: the sticky bit, bit W + 1: the carry); a negative
        # difference (only without a sticky bit: |Y| > |X| needs d = 0 or a subnormal X) is negated once
        sub = Signal(name="sub")
        m.d.comb += sub.eq(sx ^ sy)
        xe, ye = Cat(Const(0, 1), mx), Cat(sticky, ysh)
        raw = Signal(unsigned(W + 2), name="sum_raw")
        m.d.comb += raw.eq(xe + Mux(sub, ~ye, ye) + sub)
        neg = Signal(name="sum_neg")
        mag = Signal(unsigned(W + 2), name="sum_mag")
        if normal_s:
            m.d.comb += mag.eq(Mux(sub, raw[:W + 1], raw))
        else:
            m.d.comb += [neg.eq(sub & ~raw[W + 1]), mag.eq(Mux(sub, (raw[:W + 1] ^ neg.replicate(W + 1)) + neg, raw))]
        sign = Signal(name="sum_sign")
        # normalize: the top bit of the W + 2 is exponent tx; shift left to the leading one, but not below emin
        # (tx - emin = the stored tx - t_off + t_off - emin = the stored tx)
        emin = fmt.emin
        if normal_s:
            norm, sh = normalize(m, mag, "sum")
            elo = g
            nonzero = norm[-1]   # normalized without a limit: the top bit is set unless the sum is zero
        else:
            lim = Signal(range(W + 3), name="norm_lim")
            m.d.comb += lim.eq(Mux(tx <= 0, 0, Mux(tx >= W + 2, W + 2, tx)))
            norm, sh = normalize(m, mag, "sum", lim)
            elo = min(tlo, emin)
            nonzero = mag != 0
        m.d.comb += sign.eq((sx ^ neg) & nonzero)  # an exact zero is +0
        e = Signal(signed(sbits(min(elo, tlo) - t_off - 2 * (W + 2), thi - t_off)), name="sum_e")
        m.d.comb += e.eq(tx - sh)
        s_new, _ = round_unpacked(m, "acc", sign, norm, e, (elo, thi), fmt,
                                  (snan | pflags[0], (sinf & ~ss) | pflags[1], (sinf & ss) | pflags[2]), offset=t_off)
        done = Signal()
        m.d.sync += done.eq(self.in_valid & self.in_last)
        with m.If(self.in_valid):
            m.d.sync += [r.eq(Mux(chunk_end, n, o)) for r, n, o in zip(s_reg, s_new, s_src)]
        # output: one rounding of s to the output format; the flag also for a non-finite s (s = -0 stays -0)
        z, ovf = self._convert(m, "o", s_reg.sign, s_reg.sig, s_reg.top, fmt.emin - 1, fmt, spec.out_fmt,
                               (s_reg.nan, s_reg.inf), False)
        # z and ovf: registers without a reset (they are read with out_valid only, which has one)
        z_r, ovf_r = Signal.like(self.z, reset_less=True, name="z_r"), Signal(reset_less=True, name="ovf_r")
        m.d.sync += self.out_valid.eq(done)
        with m.If(done):
            m.d.sync += [z_r.eq(z), ovf_r.eq(ovf | s_reg.nan | s_reg.inf)]
        m.d.comb += [self.z.eq(z_r), self.ovf.eq(ovf_r)]
        return m
