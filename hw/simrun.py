"""Drive hw components in Amaranth's simulator (``amaranth.sim``, async testbenches).

Used by the unit tests: a combinational evaluator for single components and a
cycle-accurate tile driver for ``MacUnit``/``MacArray`` that also measures the
latency of every tile.
"""

from __future__ import annotations

from amaranth.sim import Simulator
from fewbits.hw.hwfmt import code_shape
from fewbits.hw.packing import element_index, pack, unpack


def run_comb(dut, cases, inputs, outputs):
    """Evaluate a combinational ``dut`` on ``cases`` (tuples ordered like ``inputs``).

    Returns one tuple per case of the raw integer values of ``outputs`` (port names).
    """
    results = []
    ins = [getattr(dut, n) for n in inputs]
    outs = [getattr(dut, n) for n in outputs]

    async def bench(ctx):
        for case in cases:
            for sig, v in zip(ins, case):
                ctx.set(sig, v)
            results.append(tuple(ctx.get(o) for o in outs))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return results


def fit(bits: int, sig) -> int:
    """Raw bits as the integer ``ctx.set`` expects for ``sig``'s shape (signed ports take negatives)."""
    shape = sig.shape()
    if shape.signed and bits >> (shape.width - 1):
        return bits - (1 << shape.width)
    return bits


def run_tiles(array, tiles, gaps=None, max_extra=16, stalls=None):
    """Run ``tiles`` back to back through a MacArray in the simulator.

    ``tiles``: dicts with ``a`` (R x K codes), ``b`` (K x C), ``bias`` (C codes) and,
    for dynamic fixed point, ``shift`` and ``bias_shift``. ``gaps[t]`` idle cycles before tile t (default 0);
    ``stalls[t]`` a set of k before which one cycle with ``in_valid`` low (and junk on every
    other input) is inserted inside tile t.
    Returns ``(outputs, latencies)``: per tile ``(z R x C codes, ovf R x C bools)``
    and the cycles from its ``in_last`` to its ``out_valid``.
    """
    s = array.spec
    unit = not hasattr(array, "in_a")  # a bare MacUnit: same protocol, 1 x 1, unpacked ports
    R, C = (1, 1) if unit else (s.rows, s.cols)
    port = (lambda n: getattr(array, {"in_a": "a", "in_b": "b", "in_bias": "bias", "in_shift": "shift",
                                      "in_bias_shift": "bias_shift", "out_z": "z", "out_ovf": "ovf"}.get(n, n))) \
        if unit else \
        (lambda n: getattr(array, n))
    gaps = gaps or [0] * len(tiles)
    outputs, last_cycles, valid_cycles = [], [], []

    def sample(ctx, cycle):
        if ctx.get(array.out_valid):
            z = unpack(ctx.get(port("out_z")), s.out_fmt.width, R * C, code_shape(s.out_fmt).signed)
            ovf = unpack(ctx.get(port("out_ovf")), 1, R * C)
            outputs.append(([[z[element_index(i, j, C)] for j in range(C)] for i in range(R)],
                            [[bool(ovf[element_index(i, j, C)]) for j in range(C)] for i in range(R)]))
            valid_cycles.append(cycle)

    async def bench(ctx):
        cycle = 0
        ctx.set(array.in_valid, 0)
        for tile, gap in zip(tiles, gaps):
            for _ in range(gap):
                ctx.set(array.in_valid, 0)
                sample(ctx, cycle)
                await ctx.tick()
                cycle += 1
            a, b = tile["a"], tile["b"]
            K = len(b)
            for k in range(K):
                if stalls and k in stalls[len(last_cycles)]:
                    ctx.set(array.in_valid, 0)
                    junk = ("in_first", "in_last", "in_a", "in_b", "in_bias") + \
                        (("in_shift", "in_bias_shift") if array.dynamic else ())
                    for n in junk:
                        sig = port(n)
                        ctx.set(sig, fit((0x5A5A5A5A5A5A5A5A5A * (cycle + 1)) & ((1 << len(sig)) - 1), sig))
                    sample(ctx, cycle)
                    await ctx.tick()
                    cycle += 1
                ctx.set(array.in_valid, 1)
                ctx.set(array.in_first, int(k == 0))
                ctx.set(array.in_last, int(k == K - 1))
                ctx.set(port("in_a"), fit(pack([a[i][k] for i in range(R)], s.a_fmt.width), port("in_a")))
                ctx.set(port("in_b"), fit(pack(b[k], s.b_fmt.width), port("in_b")))
                # bias/shift only matter with in_first; scramble them elsewhere to prove it
                bias = tile.get("bias") or [0] * C
                mask = (1 << (C * s.bias_fmt.width)) - 1
                ctx.set(port("in_bias"), fit(pack(bias, s.bias_fmt.width) ^ (0 if k == 0 else mask), port("in_bias")))
                if array.dynamic:
                    cfg = getattr(array, "unit", array)
                    for n, key, sw in (("in_shift", "shift", cfg.shift_width),
                                       ("in_bias_shift", "bias_shift", cfg.bias_shift_width)):
                        sh = tile.get(key, tile.get("shift", 0))  # no bias_shift: the bias on the output grid
                        other = ((sh + 3 + (1 << (sw - 1))) % (1 << sw)) - (1 << (sw - 1))
                        ctx.set(port(n), sh if k == 0 else other)
                if k == K - 1:
                    last_cycles.append(cycle)
                sample(ctx, cycle)
                await ctx.tick()
                cycle += 1
        ctx.set(array.in_valid, 0)
        ctx.set(array.in_first, 0)
        ctx.set(array.in_last, 0)
        for _ in range(array.latency + max_extra):
            sample(ctx, cycle)
            await ctx.tick()
            cycle += 1

    sim = Simulator(array)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    lat = [v - l for v, l in zip(valid_cycles, last_cycles)]
    return outputs, lat
