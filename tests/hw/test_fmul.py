"""FloatMultiplier vs fewbits.sim: exact products (on the Kulisch grid) and the IEEE NaN/inf rules."""

import random

import pytest
from fewbits.sim import golden
from fewbits.hw.fmul import FloatMultiplier
from fewbits.hw.simrun import run_comb
from fewbits.sim import Accumulator, Float, Special, fp8_e4m3, fp8_e5m2

PAIRS = [
    (Float(2, 1), Float(2, 1)),                               # 4-bit floats: exhaustive below
    (Float(2, 1, special=Special.SAT), Float(2, 1, special=Special.FN)),
    (fp8_e4m3, fp8_e4m3),
    (fp8_e5m2, fp8_e4m3),
    (Float(3, 4, special=Special.SAT), Float(4, 3, bias=5)),
]


def check(dut, pairs):
    fa, fb = dut.a_fmt, dut.b_fmt
    got = run_comb(dut, pairs, ["a", "b"], ["sign", "man", "exp", "nan", "inf"])
    av, bv = sorted({a for a, _ in pairs}), sorted({b for _, b in pairs})
    ai, bi = {a: i for i, a in enumerate(av)}, {b: j for j, b in enumerate(bv)}
    kinds = golden.product_class(av, bv, fa, fb)
    # exact products on the Kulisch grid 2**(q0a + q0b): an accumulator code, wide enough here
    exact = golden.product_on_grid(av, bv, fa, fb, Accumulator(62, -(fa.q0 + fb.q0)))
    for (a, b), (s, man, e, nan, inf) in zip(pairs, got):
        kind = kinds[ai[a]][bi[b]]
        hw_kind = "nan" if nan else (("-inf" if s else "+inf") if inf else "finite")
        assert hw_kind == kind, f"{a:#x} * {b:#x}: hw {hw_kind} sim {kind}"
        if kind == "finite":
            want = exact[ai[a]][bi[b]]
            hw = (-1) ** s * (man << e)
            assert hw == want, f"{a:#x} * {b:#x}: hw {hw} sim {want}"


@pytest.mark.parametrize("fa,fb", PAIRS[:2], ids=str)
def test_exhaustive_4bit_floats(fa, fb):
    dut = FloatMultiplier(fa, fb)
    check(dut, [(a, b) for a in range(16) for b in range(16)])


@pytest.mark.parametrize("fa,fb", PAIRS[2:], ids=str)
@pytest.mark.parametrize("seed", range(2))
def test_standard_and_random(fa, fb, seed):
    dut = FloatMultiplier(fa, fb)
    rng = random.Random(seed)
    check(dut, dut.standard_cases() + dut.random_cases(rng, 150))
