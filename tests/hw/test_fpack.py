"""fpack (the lean float datapath of FloatAccPE) vs fewbits.sim: ``round_pack`` against the golden model's
float rounding (``golden.requantize``: one rounding of ``sig * 2**k`` to a float), ``round_unpacked`` against
the value ``Float.decode`` gives that code, ``normalize`` with and without its limit and ``shift_right_sticky``
against plain integer arithmetic written here."""

import math
import random

import pytest
import torch
from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from fewbits.hw.fpack import normalize, round_pack, round_unpacked, sbits, shift_right_sticky
from fewbits.hw.simrun import run_comb
from fewbits.sim import Accumulator, Float, Rounding, Special, bf16, fp8_e4m3, fp16, fp32, golden


class _Pack(wiring.Component):
    def __init__(self, n, e_range, fmt, offset=0):
        self.n, self.e_range, self.fmt, self.offset = n, e_range, fmt, offset
        lo, hi = e_range
        super().__init__({"sign": In(1), "sig": In(unsigned(n)), "e": In(signed(sbits(lo - offset, hi - offset))),
                          "nan": In(1), "pinf": In(1), "ninf": In(1),
                          "z": Out(unsigned(fmt.width)), "ovf": Out(1),
                          # round_unpacked on the same inputs
                          "u_sign": Out(1), "u_top": Out(unsigned(fmt.exp)), "u_sig": Out(unsigned(fmt.man + 1)),
                          "u_nan": Out(1), "u_inf": Out(1), "u_ovf": Out(1)})

    def elaborate(self, platform):
        m = Module()
        args = ("t", self.sign, self.sig, self.e, self.e_range, self.fmt, (self.nan, self.pinf, self.ninf))
        z, ovf = round_pack(m, *args, offset=self.offset)
        u, uovf = round_unpacked(m, "u" + args[0], *args[1:], offset=self.offset)
        m.d.comb += [self.z.eq(z), self.ovf.eq(ovf), self.u_ovf.eq(uovf)]
        m.d.comb += [getattr(self, f"u_{n}").eq(v) for n, v in u._asdict().items()]
        return m


UNPACKED = ["u_sign", "u_top", "u_sig", "u_nan", "u_inf", "u_ovf"]


def _check_unpacked(fmt, code, ovf, got):
    """``round_unpacked``'s fields describe the value ``fmt.decode`` gives ``code`` (sign, NaN, infinity, or
    sig * 2**(top + q0 - 1) with a normal's hidden bit set and a subnormal's top 1), with the same flag."""
    sign, top, sig, nan, inf, uovf = got
    x = float(fmt.decode(torch.tensor([code]))[0])
    assert bool(uovf) == bool(ovf), f"code {code:#x}: ovf {uovf} vs {ovf}"
    assert (bool(nan), bool(inf)) == (math.isnan(x), math.isinf(x)), f"code {code:#x}: nan {nan} inf {inf}"
    if math.isnan(x):
        return
    assert sign == (math.copysign(1.0, x) < 0), f"code {code:#x}: sign {sign}"
    if math.isinf(x):
        return
    assert sig < 1 << (fmt.man + 1) and math.ldexp(sig, top + fmt.q0 - 1) == abs(x), f"code {code:#x}: {sig} {top}"
    if sig:   # the exponent is the format's field: a normal's hidden bit is set, a subnormal's top is 1
        assert (sig >> fmt.man == 1) if top > 1 else top == 1, f"code {code:#x}: sig {sig:#x} top {top}"


def _pack_cases(rng, n, e_range, fmt, count):
    """(sign, sig, e) meeting round_pack's precondition: top bit set, zero, or e <= emin; ties, tails and
    carries at the rounding position, values around the subnormal range and around overflow."""
    lo, hi = e_range
    top = 1 << (n - 1)
    es = sorted({lo, hi, fmt.emin, fmt.emin - 1, fmt.emax, fmt.emax + 1, fmt.emin - fmt.man - 1,
                 fmt.emin - fmt.man - 2} & set(range(lo, hi + 1)))
    below = max(0, n - fmt.man - 1)  # bits below the rounding position
    cases = [(0, 0, lo), (1, 0, hi)]
    for _ in range(count):
        e = rng.choice(es) if rng.random() < 0.5 else rng.randint(lo, hi)
        kind = rng.random()
        if kind < 0.3 and below:    # a tie, or a tie plus a tail, at the format's rounding position
            sig = top | (rng.randrange(1 << (n - 1)) >> below << below) | (1 << (below - 1))
            if rng.random() < 0.5 and below > 1:
                sig |= 1 << rng.randrange(below - 1)
        elif kind < 0.4:            # all ones: rounding carries into the exponent
            sig = (1 << n) - 1
        else:
            sig = top | rng.randrange(top)
        if e <= fmt.emin and rng.random() < 0.5:
            sig >>= rng.randrange(n + 1)    # unnormalized below the normals
        cases.append((rng.randrange(2), sig, e))
    return cases


FORMATS = [fp32, fp16, bf16, fp8_e4m3, Float(3, 2, special=Special.SAT), Float(4, 3, bias=3)]


@pytest.mark.parametrize("mode", list(Rounding), ids=str)
@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@pytest.mark.parametrize("n", [5, 28], ids=lambda n: f"n{n}")
def test_round_pack_equals_golden_rounding(fmt, mode, n):
    fmt = Float(fmt.exp, fmt.man, fmt.bias, fmt.subnormals, fmt.special, mode)
    e_range = (fmt.emin - fmt.man - n - 3, fmt.emax + 2)
    offset = 7 if n == 28 else 0
    dut = _Pack(n, e_range, fmt, offset)
    rng = random.Random(f"{fmt}-{n}")
    cases = _pack_cases(rng, n, e_range, fmt, 150)
    got = run_comb(dut, [(s, sig, e - offset, 0, 0, 0) for s, sig, e in cases],
                   ["sign", "sig", "e", "nan", "pinf", "ninf"], ["z", "ovf"] + UNPACKED)
    for (s, sig, e), (z, ovf, *unpacked) in zip(cases, got):
        k = e - n + 1   # value = (-1)**s * sig * 2**k
        wz, wo = golden.requantize([-sig if s else sig], Accumulator(n + 2, -k), fmt)
        if sig == 0:    # a zero keeps the sign it is given (the golden model's exact zero is +0)
            wz = [wz[0] | (s << (fmt.width - 1))]
        assert (z, bool(ovf)) == (wz[0], bool(wo[0])), f"sign {s} sig {sig:#x} e {e}: hw {z:#x} sim {wz[0]:#x}"
        _check_unpacked(fmt, wz[0], wo[0], unpacked)


@pytest.mark.parametrize("fmt", [fp16, fp8_e4m3, Float(3, 2, special=Special.SAT)], ids=str)
def test_round_pack_specials(fmt):
    """NaN in, +inf and -inf together, one infinity: the format's codes (sim's encode_ovf), whatever the value;
    unpacked, what decoding those codes gives (FN and SAT: finite codes)."""
    dut = _Pack(12, (-30, 30), fmt)
    cases = [(0, 0x800, 3, 1, 0, 0), (1, 0x900, 40 - 40, 0, 1, 1), (0, 0xfff, 29, 0, 1, 0), (1, 0x800, -3, 0, 0, 1)]
    got = run_comb(dut, cases, ["sign", "sig", "e", "nan", "pinf", "ninf"], ["z", "ovf"] + UNPACKED)
    for (s, sig, e, n, p, q), (z, ovf, *unpacked) in zip(cases, got):
        x = math.nan if n or (p and q) else (math.inf if p else -math.inf)
        wz, wo = fmt.encode_ovf(torch.tensor([x], dtype=torch.float64))
        assert (z, bool(ovf)) == (int(wz[0]), bool(wo[0]))
        _check_unpacked(fmt, int(wz[0]), bool(wo[0]), unpacked)


class _Norm(wiring.Component):
    def __init__(self, w, limited):
        self.w, self.limited = w, limited
        super().__init__({"mag": In(unsigned(w)), "limit": In(range(w + 1)),
                          "out": Out(unsigned(w)), "sh": Out(unsigned(w.bit_length() + 1))})

    def elaborate(self, platform):
        m = Module()
        out, sh = normalize(m, self.mag, "n", self.limit if self.limited else None)
        m.d.comb += [self.out.eq(out), self.sh.eq(sh)]
        return m


@pytest.mark.parametrize("limited", [False, True], ids=["full", "limited"])
@pytest.mark.parametrize("w", [11, 22, 28])
def test_normalize_shifts_by_min_of_leading_zeros_and_limit(w, limited):
    rng = random.Random(f"norm-{w}-{limited}")
    cases = [(rng.randrange(1 << w) >> rng.randrange(w + 1), rng.randrange(w + 1)) for _ in range(150)]
    cases += [(0, 0), (0, w), (1, w), (1, w - 1), (1 << (w - 1), 0), (1, 0)]
    got = run_comb(_Norm(w, limited), cases, ["mag", "limit"], ["out", "sh"])
    for (mag, lim), (out, sh) in zip(cases, got):
        lz = w - mag.bit_length()
        want = min(lz, lim) if limited else (lz if mag else (1 << (w - 1).bit_length()) - 1)
        assert (sh, out) == (want, (mag << want) & ((1 << w) - 1)), f"mag {mag:#x} limit {lim}"


class _Shift(wiring.Component):
    def __init__(self, w, dmax):
        self.w, self.dmax = w, dmax
        super().__init__({"v": In(unsigned(w)), "d": In(range(dmax + 1)), "out": Out(unsigned(w)), "st": Out(1)})

    def elaborate(self, platform):
        m = Module()
        out, st = shift_right_sticky(m, self.v, self.d, self.dmax, "s")
        m.d.comb += [self.out.eq(out), self.st.eq(st)]
        return m


@pytest.mark.parametrize("w,dmax", [(26, 26), (13, 12), (8, 3)])
def test_shift_right_sticky(w, dmax):
    rng = random.Random(f"shift-{w}-{dmax}")
    cases = [(rng.randrange(1 << w) >> rng.randrange(w), rng.randrange(dmax + 1)) for _ in range(150)]
    cases += [(1, dmax), ((1 << w) - 1, dmax), (0, dmax), (1 << (w - 1), 0)]
    got = run_comb(_Shift(w, dmax), cases, ["v", "d"], ["out", "st"])
    for (v, d), (out, st) in zip(cases, got):
        assert (out, bool(st)) == (v >> d, bool(v & ((1 << d) - 1))), f"v {v:#x} d {d}"
