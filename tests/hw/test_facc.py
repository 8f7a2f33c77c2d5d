"""FloatAccPE in Amaranth's simulator == fewbits.sim.mac_reference with its float accumulator:
back-to-back tiles, K = 1, K = k_max, K not a multiple of the chunk, ties, cancellation,
overflow to inf mid-tile, NaN operands."""

import math
import random

import pytest
import torch
from fewbits.hw.facc import FloatAccPE
from fewbits.hw.simrun import run_tiles
from fewbits.sim import FormatError, MacSpec, mac_reference, parse_format


def _codes(fmt, rng, n, specials=False):
    """Random finite codes, a share of zeros and extremes; NaN/inf when ``specials``."""
    out = []
    for _ in range(n):
        r = rng.random()
        v = rng.choice([0.0, fmt.max, -fmt.max]) if r < 0.15 else rng.gauss(0, 1) * 2.0 ** rng.randint(-6, 6)
        if specials and r > 0.95:
            v = rng.choice([math.nan, math.inf, -math.inf])
        out.append(int(fmt.encode(torch.tensor([v], dtype=torch.float64))[0]))
    return out


def _run(spec, tiles):
    pe = FloatAccPE(spec)
    outs, lats = run_tiles(pe, [{"a": [t["a"]], "b": [[x] for x in t["b"]], "bias": [t["bias"]]} for t in tiles])
    assert len(outs) == len(tiles) and set(lats) == {pe.latency}
    for (z, ovf), t in zip(outs, tiles):
        K = len(t["a"])
        wz, wo = mac_reference(torch.tensor([t["a"]]), torch.tensor(t["b"]).reshape(K, 1), spec.a_fmt, spec.b_fmt,
                               spec.acc_fmt, spec.out_fmt, torch.tensor([t["bias"]]), spec.bias_fmt)
        assert (z[0][0], ovf[0][0]) == (int(wz[0, 0]), bool(wo[0, 0])), t


CASES = [  # a/b, accumulator, output, bias, k_max
    ("fp8_e4m3", "float:5:3,chunk=3", "bf16", "bf16", 7),
    ("fp8_e4m3", "float:8:10,chunk=4", "bf16", "fp8_e4m3", 9),
    ("fp8_e5m2", "fp16,chunk=1", "fp8_e4m3", "fp16", 6),
    ("fp8_e4m3", "float:4:3,round=rtz,chunk=2,special=fn", "fp8_e5m2", "fp8_e4m3", 5),
    ("fp8_e4m3", "float:5:4,round=rdn", "fp16", "bf16", 4),
    ("fp16", "fp32,chunk=2", "bf16", "fp16", 5),  # the common design: fp32 behind fp16 multipliers
    ("fp8_e4m3", "fp32", "bf16", "bf16", 32),
]


@pytest.mark.parametrize("seed", [71])
@pytest.mark.parametrize("ops,acc,out,bias,k_max", CASES, ids=[c[1] for c in CASES])
def test_pe_equals_mac_reference(ops, acc, out, bias, k_max, seed):
    rng = random.Random(seed)
    f = parse_format(ops)
    spec = MacSpec(f, f, parse_format(out), acc_fmt=acc, bias_fmt=bias, k_max=k_max)
    Ks = [1, k_max, 1, k_max - 1, 2, k_max] + [rng.randint(1, k_max) for _ in range(6)]
    tiles = [{"a": _codes(f, rng, K, specials=i % 4 == 3), "b": _codes(f, rng, K),
              "bias": _codes(spec.bias_fmt, rng, 1)[0]} for i, K in enumerate(Ks)]
    _run(spec, tiles)


def test_pe_ties_cancellation_and_overflow():
    """float:5:3 sums that tie (1 + 2**-4), cancel to +0 across chunk boundaries, overflow mid-tile."""
    f, e = parse_format("fp8_e4m3"), lambda v: int(parse_format("fp8_e4m3").encode(torch.tensor([v]))[0])
    for acc in ("float:5:3", "float:5:3,chunk=2", "float:5:3,round=rna,chunk=3"):
        spec = MacSpec(f, f, parse_format("bf16"), acc_fmt=acc, bias_fmt="bf16", k_max=8)
        tiles = [
            {"a": [e(1.0), e(2.0 ** -4), e(2.0 ** -4), e(2.0 ** -4)], "b": [e(1.0)] * 4, "bias": 0},
            {"a": [e(3.0), e(0.5), e(-3.0), e(-0.5)], "b": [e(1.5)] * 4, "bias": 0},
            {"a": [e(448.0)] * 8, "b": [e(448.0)] * 8, "bias": 0},  # float:5:3 overflows to inf
            {"a": [e(448.0)] * 5 + [e(-448.0)] * 3, "b": [e(448.0)] * 8, "bias": 0},
        ]
        _run(spec, tiles)


def test_pe_takes_float_formats_only():
    f = parse_format("fp8_e4m3")
    with pytest.raises(FormatError, match="float accumulator"):
        FloatAccPE(MacSpec(f, f, f, k_max=4))


def test_array_of_float_acc_pes_and_refusals():
    """A 2x3 MacArray with a float accumulator is FloatAccPEs (latency 2); fixed formats are one line."""
    from fewbits.hw.mac import MacArray, make_pe

    f = parse_format("fp8_e4m3")
    spec = MacSpec(f, f, parse_format("bf16"), acc_fmt="float:5:3,chunk=2", rows=2, cols=3, k_max=5)
    arr = MacArray(spec)
    assert arr.latency == 2 and isinstance(make_pe(spec), FloatAccPE)
    rng = random.Random(91)
    tiles = []
    for K in (1, 5, 3, 4):
        tiles.append({"a": [_codes(f, rng, K) for _ in range(2)],
                      "b": [_codes(f, rng, 3) for _ in range(K)], "bias": _codes(spec.bias_fmt, rng, 3)})
    outs, lats = run_tiles(arr, tiles)
    assert set(lats) == {2}
    for (z, ovf), t in zip(outs, tiles):
        wz, wo = mac_reference(torch.tensor(t["a"]), torch.tensor(t["b"]), f, f, spec.acc_fmt, spec.out_fmt,
                               torch.tensor(t["bias"]), spec.bias_fmt)
        assert z == wz.tolist() and ovf == wo.tolist()
    fx = parse_format("fixed:8:4")
    with pytest.raises(FormatError, match="float accumulator"):
        MacArray(MacSpec(fx, fx, fx, acc_fmt="fp32", k_max=4))


@pytest.mark.parametrize("ops,k_max", [("fp16", 6), ("fp8_e4m3", 32)])
def test_pe_window_edges(ops, k_max):
    """The window's ends: the smallest products (subnormal x subnormal) and k_max largest products
    of one sign plus the largest bias, with an fp32 accumulator (s reaches its bound)."""
    f = parse_format(ops)
    e = lambda v: int(f.encode(torch.tensor([v], dtype=torch.float64))[0])  # noqa: E731
    tiny = f.decode(torch.tensor([1])).item()
    spec = MacSpec(f, f, parse_format("fp32"), acc_fmt="fp32", bias_fmt=ops, k_max=k_max)
    tiles = [{"a": [e(tiny)], "b": [e(tiny)], "bias": 0},
             {"a": [e(tiny)] * 3, "b": [e(-tiny)] * 3, "bias": 0},
             {"a": [e(f.max)] * k_max, "b": [e(f.max)] * k_max, "bias": e(f.max)},
             {"a": [e(-f.max)] * k_max, "b": [e(f.max)] * k_max, "bias": e(-f.max)}]
    _run(spec, tiles)
