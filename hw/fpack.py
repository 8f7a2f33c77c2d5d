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
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Signal, signed, unsigned
from fewbits.hw.fround import select_code
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


def round_pack(m, name: str, sign, sig, e, e_range, fmt, flags, offset: int = 0):
    """``(-1)**sign * sig * 2**(e + offset - len(sig) + 1)`` rounded once to ``fmt`` (its mode and specials):
    ``(code, ovf)``.  ``e`` a signed Value, ``e + offset`` in ``e_range``; ``flags`` = (nan, +inf, -inf)
    inputs.  A zero ``sig`` gives a zero of ``sign`` (the caller clears ``sign`` for an exact +0).  ``offset``
    lets a caller keep exponents in the domain where its decoder makes them for free (e.g. the field)."""
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
    field = Signal(unsigned(fmt.exp), name=f"{name}_field")
    m.d.comb += field.eq(Mux(normal, eb, 0))
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
    z = Signal(unsigned(fmt.width), name=f"{name}_z")
    ovf = Signal(name=f"{name}_ovf")
    finite = Cat(mant, field, sign)
    select_code(m, fmt, z, ovf, sign, finite, over, *flags)
    return z, ovf
