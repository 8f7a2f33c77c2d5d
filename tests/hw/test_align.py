"""Product alignment vs fewbits.sim: float products (and fixed ones) onto a coarser, narrower accumulator.

Exercises the rounding with acc.round where the accumulator is coarser than the
product, and the modulo 2**width where it is narrower.
"""

import random

import pytest
from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from fewbits.sim import golden
from fewbits.hw.align import FloatAligner, align_static
from fewbits.hw.fmul import FloatMultiplier
from fewbits.hw.hwfmt import code_shape, from_bits, to_bits
from fewbits.hw.multiplier import Multiplier
from fewbits.hw.simrun import run_comb
from fewbits.sim import Accumulator, Fixed, Float, Rounding, Special, fp8_e4m3, fp8_e5m2


class FloatProductOnGrid(wiring.Component):
    """FloatMultiplier -> FloatAligner, the MacUnit's product path without its register."""

    def __init__(self, fa, fb, acc):
        self.fa, self.fb, self.acc_fmt = fa, fb, acc
        super().__init__({"a": In(fa.width), "b": In(fb.width), "p": Out(signed(acc.width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mul = mul = FloatMultiplier(self.fa, self.fb)
        m.submodules.al = al = FloatAligner(mul.q0, mul.man_width, mul.exp_max, self.acc_fmt)
        m.d.comb += [mul.a.eq(self.a), mul.b.eq(self.b),
                     al.sign.eq(mul.sign), al.man.eq(mul.man), al.exp.eq(mul.exp), self.p.eq(al.acc)]
        return m


class FixedProductOnGrid(wiring.Component):
    def __init__(self, fa, fb, acc):
        self.fa, self.fb, self.acc_fmt = fa, fb, acc
        super().__init__({"a": In(code_shape(fa)), "b": In(code_shape(fb)), "p": Out(signed(acc.width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mul = mul = Multiplier(self.fa, self.fb)
        m.d.comb += [mul.a.eq(self.a), mul.b.eq(self.b)]
        m.d.comb += self.p.eq(align_static(m, mul.p, self.acc_fmt.frac - self.fa.frac - self.fb.frac,
                                           self.acc_fmt))
        return m


def check(dut, pairs, fa, fb):
    acc = dut.acc_fmt
    got = run_comb(dut, [(to_bits(a, fa), to_bits(b, fb)) for a, b in pairs], ["a", "b"], ["p"])
    av, bv = sorted({a for a, _ in pairs}), sorted({b for _, b in pairs})
    ai, bi = {a: i for i, a in enumerate(av)}, {b: j for j, b in enumerate(bv)}
    want = golden.product_on_grid(av, bv, fa, fb, acc)
    for (a, b), (p,) in zip(pairs, got):
        hw = from_bits(p, acc)
        assert hw == want[ai[a]][bi[b]], f"{a:#x} * {b:#x}: hw {hw} sim {want[ai[a]][bi[b]]}"


def finite(fmt, codes):
    top = (1 << fmt.exp) - 1
    keep = []
    for c in codes:
        field = (c >> fmt.man) & top
        if fmt.special is Special.IEEE and field == top:
            continue
        if fmt.special is Special.FN and field == top and c & ((1 << fmt.man) - 1) == (1 << fmt.man) - 1:
            continue
        keep.append(c)
    return keep


@pytest.mark.parametrize("mode", list(Rounding), ids=str)
@pytest.mark.parametrize("fa,fb,acc", [
    (fp8_e4m3, fp8_e4m3, Accumulator(12, 4)),       # coarser (rounds) and narrower (wraps)
    (fp8_e5m2, fp8_e4m3, Accumulator(30, 10)),
    (Float(3, 2), Float(2, 1), Accumulator(8, 0)),
], ids=str)
def test_float_products_rounded(fa, fb, acc, mode):
    acc = Accumulator(acc.width, acc.frac, round=mode)
    dut = FloatProductOnGrid(fa, fb, acc)
    a_codes = finite(fa, range(1 << fa.width))
    rng = random.Random(str(acc) + str(fa))
    b_codes = finite(fb, FloatMultiplier.edge_codes(fb) + [rng.randrange(1 << fb.width) for _ in range(12)])
    check(dut, [(a, b) for a in a_codes for b in b_codes], fa, fb)


@pytest.mark.parametrize("mode", list(Rounding), ids=str)
def test_fixed_products_rounded(mode):
    fa, fb = Fixed(5, 3), Fixed(4, 2, signed=False)
    acc = Accumulator(6, 2, round=mode)  # 3 fraction bits dropped, and wrapped to 6 bits
    dut = FixedProductOnGrid(fa, fb, acc)
    pairs = [(a, b) for a in range(fa.min_code, fa.max_code + 1) for b in range(fb.min_code, fb.max_code + 1)]
    check(dut, pairs, fa, fb)
