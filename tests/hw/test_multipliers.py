"""Generated multiplier architectures (Booth radix-4, Dadda): bit-exact against fewbits.sim and
formally equal to Yosys's ``*``; the default architecture's Verilog is unchanged."""

import random

import pytest
from fewbits.hw.eda.formal import prove_multiplier
from fewbits.hw.multiplier import Multiplier
from fewbits.hw.multipliers import dadda_heights
from fewbits.sim import Fixed

from .test_multiplier import check

ARCHS = ["booth", "dadda"]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("sa", [True, False], ids=["a_signed", "a_unsigned"])
@pytest.mark.parametrize("sb", [True, False], ids=["b_signed", "b_unsigned"])
def test_exhaustive_small(arch, sa, sb):
    for wa, wb in [(4, 4), (1, 3), (3, 2), (5, 1)]:
        dut = Multiplier(Fixed(wa, 1, signed=sa), Fixed(wb, 2, signed=sb), arch=arch)
        check(dut, dut.all_cases())


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("seed", range(4))
def test_random_widths(arch, seed):
    rng = random.Random(1000 + seed)
    fa = Fixed(rng.choice([2, 7, 12, 16]), rng.randint(-4, 12), signed=rng.random() < 0.7)
    fb = Fixed(rng.choice([3, 8, 13, 16]), rng.randint(-4, 12), signed=rng.random() < 0.7)
    dut = Multiplier(fa, fb, arch=arch)
    check(dut, dut.standard_cases() + dut.random_cases(rng, 100))


# SAT on multiplier miters grows fast: 4-bit and mixed small widths here, 8-bit behind `slow`.
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("wa,wb,sa,sb", [
    (4, 4, True, True), (4, 4, False, False), (3, 5, True, False), (5, 2, False, True),
    pytest.param(8, 8, True, True, marks=pytest.mark.slow), pytest.param(8, 8, False, False, marks=pytest.mark.slow),
    pytest.param(6, 8, True, False, marks=pytest.mark.slow), pytest.param(8, 5, False, True, marks=pytest.mark.slow)])
def test_formally_equal_to_yosys_mul(arch, wa, wb, sa, sb, tmp_path):
    gold = Multiplier(Fixed(wa, 0, signed=sa), Fixed(wb, 0, signed=sb))
    gate = Multiplier(Fixed(wa, 0, signed=sa), Fixed(wb, 0, signed=sb), arch=arch)
    prove_multiplier(gate, gold, tmp_path)


def test_default_verilog_unchanged():
    from amaranth.back import verilog

    f = (Fixed(8, 3, signed=True), Fixed(6, 1, signed=False))
    assert verilog.convert(Multiplier(*f), name="m") == verilog.convert(Multiplier(*f, arch="yosys"), name="m")
    assert "*" in verilog.convert(Multiplier(*f), name="m")


def test_dadda_heights():
    assert dadda_heights(8) == [6, 4, 3, 2]
    assert dadda_heights(2) == []


def test_unknown_arch():
    with pytest.raises(ValueError, match="accepted yosys, booth, dadda"):
        Multiplier(Fixed(4, 0), Fixed(4, 0), arch="wallace")
