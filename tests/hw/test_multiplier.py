"""Multiplier vs fewbits.sim (exact products on the grid fa + fb) in the Amaranth simulator."""

import random

import pytest
from fewbits.sim import golden
from fewbits.hw.hwfmt import from_bits, to_bits
from fewbits.hw.multiplier import Multiplier
from fewbits.hw.simrun import run_comb
from fewbits.sim import Accumulator, Fixed


def check(dut, pairs):
    a_fmt, b_fmt = dut.a_fmt, dut.b_fmt
    w = a_fmt.width + b_fmt.width
    acc = Accumulator(w + 1, a_fmt.frac + b_fmt.frac)
    got = run_comb(dut, [(to_bits(a, a_fmt), to_bits(b, b_fmt)) for a, b in pairs], ["a", "b"], ["p"])
    a_vals = sorted({a for a, _ in pairs})
    b_vals = sorted({b for _, b in pairs})
    table = golden.product_on_grid(a_vals, b_vals, a_fmt, b_fmt, acc)
    ai = {a: i for i, a in enumerate(a_vals)}
    bi = {b: j for j, b in enumerate(b_vals)}
    pshape = dut.p.shape()
    for (a, b), (p,) in zip(pairs, got):
        hw = from_bits(p, Fixed(w, 0, signed=pshape.signed))
        assert hw == table[ai[a]][bi[b]], f"{a} * {b}: hw {hw} sim {table[ai[a]][bi[b]]}"


@pytest.mark.parametrize("sa", [True, False], ids=["a_signed", "a_unsigned"])
@pytest.mark.parametrize("sb", [True, False], ids=["b_signed", "b_unsigned"])
def test_exhaustive_4bit(sa, sb):
    dut = Multiplier(Fixed(4, 1, signed=sa), Fixed(4, 2, signed=sb))
    check(dut, dut.all_cases())


@pytest.mark.parametrize("seed", range(8))
def test_random_widths(seed):
    rng = random.Random(seed)
    fa = Fixed(rng.choice([1, 2, 3, 7, 16, 31, 32]), rng.randint(-4, 12), signed=rng.random() < 0.7)
    fb = Fixed(rng.choice([1, 2, 5, 8, 17, 32]), rng.randint(-4, 12), signed=rng.random() < 0.7)
    if not fa.signed and not fb.signed and fa.width + fb.width > 61:
        fb = Fixed(fb.width, fb.frac, signed=True)
    dut = Multiplier(fa, fb)
    check(dut, dut.standard_cases() + dut.random_cases(rng, 100))
