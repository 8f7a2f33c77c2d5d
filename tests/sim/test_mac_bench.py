"""Timing of the issue's reference call: 64x784 @ 784x1200 (a benchmark, not a test of correctness)."""
from __future__ import annotations

import os
import time

import fewbits.sim as S
import pytest
import torch

CASES = {
    "fixed:8:4 x fixed:8:4 -> fixed:8:4": (S.Fixed(8, 4), S.Fixed(8, 4), S.Fixed(8, 4)),
    "fixed:8:6 x fixed:8:2 -> fixed:16:8,round=rna": (S.Fixed(8, 6), S.Fixed(8, 2), S.Fixed(16, 8, round=S.RNA)),
    "fp16 x fp16 -> fp16": (S.fp16, S.fp16, S.fp16),
    "fp16 x fp16 -> fp32": (S.fp16, S.fp16, S.fp32),
}


@pytest.mark.bench
@pytest.mark.parametrize("name", list(CASES))
def test_mac_reference_64x784x1200(name, capsys):
    a_fmt, b_fmt, out_fmt = CASES[name]
    g = torch.Generator().manual_seed(2014)
    a = a_fmt.encode(a_fmt.quantize(torch.randn(64, 784, generator=g, dtype=torch.float64)))
    b = b_fmt.encode(b_fmt.quantize(torch.randn(784, 1200, generator=g, dtype=torch.float64) * 0.1))
    bias = out_fmt.encode(torch.randn(1200, generator=g, dtype=torch.float64) * 0.1)
    S.mac_reference(a[:2], b[:, :3], a_fmt, b_fmt, None, out_fmt)  # warm-up
    times, cpu = [], []
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        z, ovf = S.mac_reference(a, b, a_fmt, b_fmt, None, out_fmt, bias_codes=bias)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    assert z.shape == (64, 1200) and ovf.shape == (64, 1200)
    with capsys.disabled():
        print(f"\nmac_reference 64x784 @ 784x1200 [{name}]: best {min(times):.3f} s, "
              f"median {sorted(times)[1]:.3f} s; CPU {min(cpu):.3f} s ({torch.get_num_threads()} threads, "
              f"load {os.getloadavg()[0]:.1f})")


SMALL = [("fp16", None), ("fp16", "fp32"), ("fp32", None), ("fp32", "fp32")]


@pytest.mark.bench
@pytest.mark.parametrize("shape", [(1, 1, 1), (32, 32, 32)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("fmt,acc", SMALL, ids=[f"{f}-{a or 'exact'}" for f, a in SMALL])
def test_mac_reference_per_call(fmt, acc, shape, capsys):
    """The fixed cost of one small call (co-simulation checks and small layers pay it per call); issue 12's
    target: under 1 ms for tiles up to 32x32x32 (before: 10 ms fp16, 25 ms fp32 whatever the size)."""
    f = S.parse_format(fmt)
    m, k, n = shape
    g = torch.Generator().manual_seed(12)
    a = f.encode(f.quantize(torch.randn(m, k, generator=g, dtype=torch.float64)))
    b = f.encode(f.quantize(torch.randn(k, n, generator=g, dtype=torch.float64)))
    bias = f.encode(f.quantize(torch.randn(n, generator=g, dtype=torch.float64)))
    S.mac_reference(a, b, f, f, acc, f, bias_codes=bias)  # warm-up (and any compilation)
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        z, ovf = S.mac_reference(a, b, f, f, acc, f, bias_codes=bias)
        times.append(time.perf_counter() - t0)
    assert z.shape == (m, n) and ovf.shape == (m, n)
    times.sort()
    with capsys.disabled():
        print(f"\nmac_reference per call [{fmt} acc {acc or 'exact'} {m}x{k}x{n}]: median {times[25] * 1e3:.3f} ms, "
              f"best {times[0] * 1e3:.3f} ms ({torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f})")
