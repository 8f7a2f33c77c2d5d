"""Sign-magnitude float rounding at a static position: the lean datapath pieces of ``FloatAccPE``.

Golden model: ``Float`` rounding in ``fewbits.sim`` (one rounding of an exact value to the
format, subnormals, overflow per the rounding mode and ``special``), as in ``mac_reference``.

* ``shift_right_sticky``: a log shifter whose shifted-out bits are ORed into a sticky bit;
* ``normalize``: a log shifter moving the leading one to the top, at most ``limit`` places
  (the subnormal clamp), and the shift it made;
* ``round_pack``: a magnitude ``sig`` (``n`` bits) with the exponent ``e`` of its top bit, i.e.
  the value ``(-1)**sign * sig * 2**(e - n + 1)``, rounded once to a float format.  Its
  precondition: ``sig``'s top bit is set, or ``sig == 0``, or ``e <= fmt.emin``; then the
  format's grid below the top bit is static (``man`` bits below it; an ``e < emin`` is first
  shifted right onto ``emin`` with a sticky), so one increment at a fixed position rounds it.
  Everything the formats make impossible (a right shift, rounding bits, an overflow) is not built.
* ``round_unpacked``: the same rounding as ``Unpacked`` fields (sign, exponent field, significand with its
  hidden bit, NaN and infinity flags: what decoding ``round_pack``'s code gives), so that a register between
  two roundings needs neither an encoder nor a decoder.
"""

from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import Cat, Const, Mux, Signal, signed, unsigned
from fewbits.hw.fround import select_code, special_codes
from fewbits.hw.rounding import magnitude_increment
from fewbits.sim import Special


def sbits(lo: int, hi: int) -> int:
    """Width of a signed signal holding every integer in [lo, hi]."""
    return max(abs(lo), abs(hi), 1).bit_length() + 1


def shift_right_sticky(m, v, d, dmax: int, name: str):
    """``v >> d`` (``d`` unsigned, <= ``dmax``) and the OR of the bits shifted out."""
    w = len(v)
    cur, sticky = v, Const(0, 1)
    for j in range(max(1, dmax.bit_length())):
        sh = 1 << j
        if sh > dmax or j >= len(d):
            break
        nxt = Signal(unsigned(w), name=f"{name}_r{j}")
        st = Signal(name=f"{name}_st{j}")
        m.d.comb += [nxt.eq(Mux(d[j], cur >> sh, cur)), st.eq(sticky | (d[j] & cur[:min(sh, w)].any()))]
        cur, sticky = nxt, st
    return cur, sticky


def normalize(m, mag, name: str, limit=None):
    """``mag`` shifted left until its leading one is the top bit, by at most ``limit`` (an unsigned Value,
    None: no limit), and the shift.  Stage ``j`` shifts by ``2**j`` when the top ``2**j`` bits are zero and
    the shift so far plus ``2**j`` stays within ``limit``: both conditions say ``shift + 2**j <= min(lz, limit)``,
    so the stages add up to ``min(lz, limit)`` (0 stays 0)."""
    w = len(mag)
    k = max(1, (w - 1).bit_length())
    cur = mag
    done = Const(0, k + 1)
    for j in reversed(range(k)):
        sh = 1 << j
        z = Signal(name=f"{name}_z{j}")
        cond = cur[max(0, w - sh):] == 0
        if limit is not None:
            cond = cond & (done + sh <= limit)
        nxt = Signal(unsigned(w), name=f"{name}_n{j}")
        acc = Signal(unsigned(k + 1), name=f"{name}_s{j}")
        m.d.comb += [z.eq(cond), nxt.eq(Mux(z, cur << sh, cur)), acc.eq(done | Mux(z, sh, 0))]
        cur, done = nxt, acc
    return cur, done


class Unpacked(NamedTuple):
    """A float as ``FloatAccPE`` keeps it between cycles: the fields a decoder would take out of its code.
    ``top`` = max(exponent field, 1) (the field of a normal, 1 for a subnormal; unspecified for a zero),
    ``sig`` the significand with its hidden bit (``man + 1`` bits; 0 for a zero, NaN or infinity), and the
    NaN/infinity flags.  The value is ``(-1)**sign * sig * 2**(top + fmt.q0 - 1)`` when finite."""
    sign: object
    top: object
    sig: object
    nan: object
    inf: object


def unpack_const(fmt, code: int) -> tuple:
    """``Unpacked`` of a constant code, in Python (what ``fmul.float_fields`` decodes in gates)."""
    sign = (code >> (fmt.exp + fmt.man)) & 1
    field = (code >> fmt.man) & ((1 << fmt.exp) - 1)
    mfield = code & ((1 << fmt.man) - 1)
    top = (1 << fmt.exp) - 1
    if fmt.special is Special.IEEE:
        nan, inf = int(field == top and mfield != 0), int(field == top and mfield == 0)
    elif fmt.special is Special.FN:
        nan, inf = int(field == top and mfield == (1 << fmt.man) - 1), 0
    else:
        nan, inf = 0, 0
    sig = 0 if nan or inf else (mfield | (1 << fmt.man) if field else mfield)
    return sign, max(field, 1), sig, nan, inf


def _round(m, name, sign, sig, e, e_range, fmt, offset):
    """The rounding shared by ``round_pack`` and ``round_unpacked``: (mant, normal, eb, over), ``eb`` the
    biased exponent (the field of a normal result; 1 for a subnormal one)."""
    man, emin, emax = fmt.man, fmt.emin, fmt.emax
    lo, hi = e_range
    n = len(sig)
    N = man + 3   # the significand, the round bit and one sticky bit: the bits below it only matter as one OR
    sg = Signal(unsigned(N), name=f"{name}_sig")
    if n <= N:
        m.d.comb += sg.eq(sig << (N - n))
    else:
        m.d.comb += sg.eq(Cat(sig[:n - N + 1].any(), sig[n - N + 1:]))
    if lo < emin:  # below the normals: onto emin's grid, the bits shifted out kept as a sticky bit
        # (a shift of man + 2 already leaves only the sticky bit: more changes nothing)
        rmax = min(emin - lo, man + 2)
        r = Signal(range(rmax + 1), name=f"{name}_rsh")
        m.d.comb += r.eq(Mux(e >= emin - offset, 0, Mux(emin - offset - e >= rmax, rmax, emin - offset - e)))
        shifted, st = shift_right_sticky(m, sg, r, rmax, f"{name}_sub")
        sg2 = Signal(unsigned(N), name=f"{name}_sig2")
        m.d.comb += sg2.eq(shifted | st)
        e1 = Signal(signed(sbits(emin - offset, hi - offset)), name=f"{name}_e1")
        m.d.comb += e1.eq(Mux(e < emin - offset, emin - offset, e))
        sg, lo = sg2, emin
    else:
        e1 = e
    q = sg[N - 1 - man:]
    rb = sg[N - 2 - man]
    sticky = sg[0]
    inc = magnitude_increment(q[0], sign, rb, sticky, fmt.round)
    q2 = Signal(unsigned(man + 2), name=f"{name}_q")
    m.d.comb += q2.eq(q + inc)
    carry, normal = q2[man + 1], q2[man] | q2[man + 1]
    # the biased exponent after rounding, in one adder: e + offset + bias (+ 1 on a carry)
    eb = Signal(signed(sbits(lo + fmt.bias, hi + 1 + fmt.bias)), name=f"{name}_eb")
    k = offset + fmt.bias
    m.d.comb += eb.eq(e1 + Mux(carry, k + 1, k))
    mant = q2[:man]  # a carry leaves q2 = 2**(man + 1): its mantissa bits are zero
    over = Signal(name=f"{name}_over")
    max_mant = (1 << man) - 1 - (1 if fmt.special is Special.FN else 0)
    top = emax + fmt.bias
    if hi + 1 <= emax - (0 if max_mant == (1 << man) - 1 else 1):
        m.d.comb += over.eq(0)
    elif max_mant == (1 << man) - 1:
        m.d.comb += over.eq(normal & (eb > top))
    else:
        m.d.comb += over.eq(normal & ((eb > top) | ((eb == top) & (mant > max_mant))))
    return mant, normal, eb, over


def round_pack(m, name: str, sign, sig, e, e_range, fmt, flags, offset: int = 0):
    """``(-1)**sign * sig * 2**(e + offset - len(sig) + 1)`` rounded once to ``fmt`` (its mode and specials):
    ``(code, ovf)``.  ``e`` a signed Value, ``e + offset`` in ``e_range``; ``flags`` = (nan, +inf, -inf)
    inputs.  A zero ``sig`` gives a zero of ``sign`` (the caller clears ``sign`` for an exact +0).  ``offset``
    lets a caller keep exponents in the domain where its decoder makes them for free (e.g. the field)."""
    mant, normal, eb, over = _round(m, name, sign, sig, e, e_range, fmt, offset)
    field = Signal(unsigned(fmt.exp), name=f"{name}_field")
    m.d.comb += field.eq(Mux(normal, eb, 0))
    z = Signal(unsigned(fmt.width), name=f"{name}_z")
    ovf = Signal(name=f"{name}_ovf")
    finite = Cat(mant, field, sign)
    select_code(m, fmt, z, ovf, sign, finite, over, *flags)
    return z, ovf


def round_unpacked(m, name: str, sign, sig, e, e_range, fmt, flags, offset: int = 0):
    """``round_pack``'s result as ``Unpacked`` (what decoding its code gives, without building the code or
    the decoder) and its ``ovf``.  Finite: ``top`` = ``eb`` (a subnormal's is 1, see ``_round``), ``sig`` =
    the rounded significand; the special and overflow cases are ``unpack_const`` of ``select_code``'s
    constant codes, so a format whose NaN or overflow code is finite (FN, SAT) gets that finite value."""
    mant, normal, eb, over = _round(m, name, sign, sig, e, e_range, fmt, offset)
    nan_in, pinf_in, ninf_in = flags
    nanc, nan_ovf, inf_pos, inf_neg, inf_ovf, big_pos, big_neg = special_codes(fmt)
    is_nan = nan_in | (pinf_in & ninf_in)
    is_inf = (pinf_in | ninf_in) & ~is_nan
    finite = (sign, eb[:fmt.exp], Cat(mant, normal), Const(0, 1), Const(0, 1))
    fields = [Signal(1, name=f"{name}_u_sign"), Signal(unsigned(fmt.exp), name=f"{name}_u_top"),
              Signal(unsigned(fmt.man + 1), name=f"{name}_u_sig"), Signal(name=f"{name}_u_nan"),
              Signal(name=f"{name}_u_inf")]
    c_nan, c_pinf, c_ninf = unpack_const(fmt, nanc), unpack_const(fmt, inf_pos), unpack_const(fmt, inf_neg)
    c_bpos, c_bneg = unpack_const(fmt, big_pos), unpack_const(fmt, big_neg)
    for i, f in enumerate(fields):
        m.d.comb += f.eq(Mux(is_nan, c_nan[i], Mux(is_inf, Mux(ninf_in, c_ninf[i], c_pinf[i]),
                                                    Mux(over, Mux(sign, c_bneg[i], c_bpos[i]), finite[i]))))
    ovf = Signal(name=f"{name}_ovf")
    m.d.comb += ovf.eq(Mux(is_nan, nan_ovf, Mux(is_inf, inf_ovf, over)))
    return Unpacked(*fields), ovf
