"""FloatRounder vs fewbits.sim (mac_reference's requantization to a float output)."""

import math
import random

import pytest
import torch
from fewbits.sim import golden
from fewbits.hw.fround import FloatRounder
from fewbits.hw.hwfmt import to_bits
from fewbits.hw.simrun import run_comb
from fewbits.sim import (
    Accumulator,
    Float,
    Rounding,
    Special,
    bf16,
    fp8_e4m3,
    fp8_e5m2,
    fp16,
)

OUTS = [fp16, bf16, fp8_e4m3, fp8_e5m2, Float(3, 2, special=Special.SAT), Float(4, 3, bias=3)]
ACCS = [Accumulator(40, 18), Accumulator(24, 30), Accumulator(16, -4), Accumulator(63, 40)]


def check(dut, cases):
    acc, out = dut.acc_fmt, dut.out_fmt
    got = run_comb(dut, [(to_bits(v, acc), n, p, q) for v, n, p, q in cases],
                   ["acc", "nan", "pinf", "ninf"], ["z", "ovf"])
    finite = [i for i, c in enumerate(cases) if not any(c[1:])]
    wz, wo = golden.requantize([cases[i][0] for i in finite], acc, out)
    want = dict(zip(finite, zip(wz, wo)))
    for i, (v, n, p, q) in enumerate(cases):
        if i not in want:  # specials: what the output format makes of NaN / +-inf (sim's encode_ovf)
            x = math.nan if n or (p and q) else (math.inf if p else -math.inf)
            z, o = out.encode_ovf(torch.tensor([x], dtype=torch.float64))
            want[i] = (int(z[0]), bool(o[0]))
        assert (got[i][0], bool(got[i][1])) == want[i], (
            f"acc={v} flags={(n, p, q)}: hw ({got[i][0]:#x}, {bool(got[i][1])}) sim ({want[i][0]:#x}, {want[i][1]})")


@pytest.mark.parametrize("mode", list(Rounding), ids=str)
@pytest.mark.parametrize("out", OUTS, ids=str)
def test_rounder(out, mode):
    out = Float(out.exp, out.man, out.bias, out.subnormals, out.special, mode)
    for acc in ACCS:
        dut = FloatRounder(acc, out)
        rng = random.Random(f"{acc}-{out}")
        check(dut, dut.standard_cases() + dut.random_cases(rng, 60))
