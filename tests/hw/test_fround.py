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


@pytest.mark.parametrize("lead", [False, True], ids=["count", "lead"])
@pytest.mark.parametrize("mode", list(Rounding), ids=str)
def test_rounder_runtime_exponent(mode, lead):
    """``exp_range``: a W-bit value times 2**exp (exp a runtime input) rounds as a fixed grid 2**exp does;
    with ``lead`` (fp32 significands into fp16: their top bit, or subnormal) the same."""
    out = Float(5, 10, round=mode)
    if lead:  # the significand of an fp32 code: normal (top bit set) or subnormal (exp at its least)
        fmt = Float(8, 23)
        dut = FloatRounder(Accumulator(25, 0), out, exp_range=(fmt.q0, fmt.q0 + 253), lead=23)
        rng = random.Random(f"lead-{mode}")
        cases = [(rng.choice([1, -1]) * ((1 << 23) | rng.randrange(1 << 23)), rng.randint(-60, 20)) for _ in range(120)]
        cases += [(rng.choice([1, -1]) * rng.randrange(1 << 23), fmt.q0) for _ in range(20)] + [(0, fmt.q0), (0, 5)]
    else:
        dut = FloatRounder(Accumulator(20, 0), out, exp_range=(-60, 30))
        rng = random.Random(f"count-{mode}")
        cases = [(rng.randrange(-(1 << 19), 1 << 19) >> rng.randrange(20), rng.randint(-60, 30)) for _ in range(160)]
        cases += [(v, e) for v in (0, 1, -1, (1 << 19) - 1, -(1 << 19)) for e in (-60, -45, -34, 0, 30)]
    W = dut.acc_fmt.width
    got = run_comb(dut, [(e, to_bits(v, Accumulator(W, 0)), 0, 0, 0) for v, e in cases],
                   ["exp", "acc", "nan", "pinf", "ninf"], ["z", "ovf"])
    for (v, e), g in zip(cases, got):
        wz, wo = golden.requantize([v], Accumulator(W, -e), out)
        assert (g[0], bool(g[1])) == (wz[0], wo[0]), f"value {v} * 2**{e}"
