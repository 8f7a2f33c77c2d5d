"""MacUnit and MacArray vs fewbits.sim.mac_reference, cycle by cycle in the Amaranth simulator.

Format combinations are drawn from a seeded RNG (the seed is in the test id);
tiles run back to back with no idle cycle, with K = 1 and K = k_max among them.
"""

import dataclasses
import random

import pytest

from fewbits.hw.fmul import FloatMultiplier
from fewbits.hw.mac import MacArray, MacUnit
from fewbits.hw.simrun import run_tiles
from fewbits.sim import DynamicFixed, Fixed, Float, MacSpec, Overflow, Rounding, Special, mac_reference


# ---- operand generators (biased to edges) ------------------------------------
def fixed_code(rng, f):
    r = rng.random()
    if r < 0.15:
        return rng.choice([f.min_code, f.max_code, 0])
    if r < 0.25 and f.signed and f.width > 1:
        return -(1 << (f.width - 1))  # the most negative code, symmetric or not
    return rng.randint(f.min_code, f.max_code)


def float_code(rng, f, specials=0.05):
    r = rng.random()
    if r < specials:
        return rng.choice(FloatMultiplier.edge_codes(f))
    if r < 0.2:  # subnormals and zero
        return (rng.getrandbits(1) << (f.exp + f.man)) | rng.randrange(1 << f.man)
    if r < 0.3:  # anywhere in the exponent range (specials included)
        return rng.randrange(1 << f.width)
    # finite, exponent near the bias so that sums cancel and round
    field = min(max(1, f.bias + rng.randint(-4, 4)), (1 << f.exp) - 2)
    return (rng.getrandbits(1) << (f.exp + f.man)) | (field << f.man) | rng.randrange(1 << f.man)


def code(rng, f, specials=0.05):
    return float_code(rng, f, specials) if isinstance(f, Float) else fixed_code(rng, f)


def make_tile(rng, spec, K, shift_fracs=None, specials=0.05):
    R, C = spec.rows, spec.cols
    a = [[code(rng, spec.a_fmt, specials) for _ in range(K)] for _ in range(R)]
    b = [[code(rng, spec.b_fmt, specials) for _ in range(C)] for _ in range(K)]
    bias = [code(rng, spec.bias_fmt, specials) for _ in range(C)]
    return {"a": a, "b": b, "bias": bias}


def expected(spec, tile, fracs=None):
    fa, fb, fo = spec.a_fmt, spec.b_fmt, spec.out_fmt
    fbias = spec.bias_fmt
    if fracs is not None:  # dynamic fixed point: the tile's current ranges
        fa, fb, fo = (f.with_frac(x) if isinstance(f, DynamicFixed) else f for f, x in zip((fa, fb, fo), fracs))
        fbias = fbias.with_frac(fo.frac) if isinstance(fbias, DynamicFixed) else fbias
    z, ovf = mac_reference(tile["a"], tile["b"], fa, fb, spec.acc_fmt, fo, tile["bias"], fbias)
    return z.tolist(), ovf.tolist()


def run_and_check(dut, spec, tiles, fracs_list=None):
    fracs_list = fracs_list or [None] * len(tiles)
    outs, lats = run_tiles(dut, tiles)
    assert len(outs) == len(tiles), f"{len(outs)} results for {len(tiles)} tiles"
    assert set(lats) == {dut.latency}, f"latencies {lats}, reported {dut.latency}"
    for t, (tile, fr, (z, ovf)) in enumerate(zip(tiles, fracs_list, outs)):
        wz, wo = expected(spec, tile, fr)
        for i in range(len(z)):
            for j in range(len(z[0])):
                assert (z[i][j], ovf[i][j]) == (wz[i][j], wo[i][j]), (
                    f"tile {t} element ({i},{j}) K={len(tile['b'])}: hw z={z[i][j]:#x} ovf={ovf[i][j]}, "
                    f"sim z={wz[i][j]:#x} ovf={wo[i][j]}; a row {tile['a'][i]}, b col "
                    f"{[r[j] for r in tile['b']]}, bias {tile['bias'][j]}")


def tiles_for(rng, spec, n, specials=0.05):
    ks = [1, spec.k_max] + [rng.randint(1, spec.k_max) for _ in range(n - 2)]
    return [make_tile(rng, spec, k, specials=specials) for k in ks]


def dyn_fracs(rng, spec):
    """Current fracs (fa, fb, fo) of a tile, with fo <= fa + fb so the bias is exact."""
    fa = rng.randint(-2, 6) if isinstance(spec.a_fmt, DynamicFixed) else spec.a_fmt.frac
    fb = rng.randint(-2, 6) if isinstance(spec.b_fmt, DynamicFixed) else spec.b_fmt.frac
    fo = rng.randint(fa + fb - 12, fa + fb) if isinstance(spec.out_fmt, DynamicFixed) else spec.out_fmt.frac
    return fa, fb, fo


# ---- random format combinations -----------------------------------------------
def rand_fixed(rng, maxw=12, dynamic=False):
    w = rng.randint(1, maxw)
    signed = w == 1 or rng.random() < 0.8
    signed = signed if w > 1 or True else signed
    sym = signed and w >= 2 and rng.random() < 0.15
    ovf = Overflow.SAT if sym else rng.choice(list(Overflow))
    mode = rng.choice(list(Rounding))
    if dynamic:
        return DynamicFixed(w, 0, signed, mode, ovf, sym)
    return Fixed(w, rng.randint(-3, 10), signed, mode, ovf, sym)


def rand_float(rng):
    e, m = rng.choice([(2, 1), (3, 2), (4, 3), (5, 2), (3, 4), (5, 3)])
    return Float(e, m, special=rng.choice(list(Special)), round=rng.choice(list(Rounding)))


def rand_spec(seed):
    rng = random.Random(seed)
    kind = ["fixed", "dfixed", "float", "fixed->float"][seed % 4]
    shape = rng.choice([(1, 1), (1, 4), (4, 1), (2, 3), (3, 2)])
    k_max = rng.choice([1, 3, 8])
    acc = None
    if kind == "fixed":
        a, b, out = rand_fixed(rng), rand_fixed(rng), rand_fixed(rng)
        bias = rand_fixed(rng) if rng.random() < 0.3 else None
        if bias is not None and bias.frac > a.frac + b.frac:
            bias = None
    elif kind == "dfixed":
        a, b, out = rand_fixed(rng, dynamic=True), rand_fixed(rng, dynamic=True), rand_fixed(rng, dynamic=True)
        bias = None
    elif kind == "float":
        a, b = rand_float(rng), rand_float(rng)
        out = rand_float(rng) if rng.random() < 0.7 else rand_fixed(rng)
        bias = None if isinstance(out, Float) else Fixed(8, 0)
    else:
        a, b, out, bias = rand_fixed(rng), rand_fixed(rng), rand_float(rng), None
    if bias is None and isinstance(out, Fixed) and out.frac > a.frac + b.frac and kind == "fixed":
        bias = Fixed(8, min(out.frac, a.frac + b.frac))
    spec = MacSpec(a, b, out, acc, bias, rows=shape[0], cols=shape[1], k_max=k_max)
    return spec, rng


SEEDS = list(range(32))


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed{s}")
def test_random_combination(seed):
    spec, rng = rand_spec(seed)
    dut = MacArray(spec.rows, spec.cols, spec=spec)
    n = 6
    if dut.dynamic:
        fracs = [dyn_fracs(rng, spec) for _ in range(n)]
        tiles = tiles_for(rng, spec, n)
        for t, fr in zip(tiles, fracs):
            t["shift"] = fr[0] + fr[1] - fr[2]
        run_and_check(dut, spec, tiles, fracs)
    else:
        run_and_check(dut, spec, tiles_for(rng, spec, n))


@pytest.mark.parametrize("sa,sb", [(True, True), (True, False), (False, True)])
def test_mac_unit_exhaustive_4bit(sa, sb):
    """Every pair of 4-bit codes through one PE (K = 2 with a repeated pair, so products are summed)."""
    a_fmt, b_fmt = Fixed(4, 2, signed=sa), Fixed(4, 1, signed=sb)
    out = Fixed(5, 2, round=Rounding.RNE)
    spec = MacSpec(a_fmt, b_fmt, out, k_max=2)
    dut = MacUnit(spec)
    tiles = []
    rng = random.Random(0)
    for a in range(a_fmt.min_code, a_fmt.max_code + 1):
        for b in range(b_fmt.min_code, b_fmt.max_code + 1):
            tiles.append({"a": [[a, a]], "b": [[b], [b]], "bias": [fixed_code(rng, out)]})
    run_and_check(dut, spec, tiles)


@pytest.mark.parametrize("fmt", [Fixed(6, 3), Float(3, 2)], ids=str)
def test_gaps_and_stalls(fmt):
    """Idle cycles between tiles and in_valid low inside tiles (junk on the other inputs): same results."""
    out = Fixed(7, 3, round=Rounding.RNA) if isinstance(fmt, Fixed) else Float(4, 3)
    spec = MacSpec(fmt, fmt, out, rows=2, cols=2, k_max=4)
    dut = MacArray(2, 2, spec=spec)
    rng = random.Random(5)
    tiles = tiles_for(rng, spec, 4)
    tiles[0] = make_tile(rng, spec, 4)
    stalls = [{1, 3}, set(), {0, 1, 2}, {1}]
    outs, lats = run_tiles(dut, tiles, gaps=[0, 3, 1, 0], stalls=stalls)
    assert len(outs) == 4 and set(lats) == {dut.latency}
    for tile, (z, ovf) in zip(tiles, outs):
        assert (z, ovf) == expected(spec, tile)


@pytest.mark.parametrize("rows,cols,a,b,out", [
    (32, 32, Fixed(4, 2), Fixed(4, 1, round=Rounding.RNA), Fixed(6, 2, round=Rounding.RNA)),   # the largest
    (1, 32, Float(4, 3, special=Special.FN), Float(3, 2), Float(5, 2)),
    (32, 1, DynamicFixed(6), DynamicFixed(5), DynamicFixed(7, round=Rounding.RTZ)),
], ids=["32x32-fixed", "1x32-float", "32x1-dfixed"])
def test_edge_shapes_short_run(rows, cols, a, b, out):
    spec = MacSpec(a, b, out, rows=rows, cols=cols, k_max=4)
    dut = MacArray(rows, cols, spec=spec)
    rng = random.Random(f"{rows}x{cols}")
    tiles = [make_tile(rng, spec, 1), make_tile(rng, spec, 4), make_tile(rng, spec, 2)]
    fracs = None
    if dut.dynamic:
        fracs = [dyn_fracs(rng, spec) for _ in tiles]
        for t, fr in zip(tiles, fracs):
            t["shift"] = fr[0] + fr[1] - fr[2]
    run_and_check(dut, spec, tiles, fracs)


@pytest.mark.parametrize("a,b,out", [
    ("fixed:8:6", "fixed:8:7", "fixed:8:5"),
    ("dfixed:11", "dfixed:11", "dfixed:11"),
    ("fp16", "fp16", "fp16"),                 # a 90-bit Kulisch accumulator
    ("fp8_e4m3", "fp8_e4m3", "bf16"),         # 262 bits: the bf16 bias sets the grid and range
], ids=lambda x: str(x))
def test_issue_example_formats(a, b, out):
    """The issue's four format combinations (2x2 here), with wide accumulators, specials and K = k_max."""
    from fewbits.sim import parse_format

    spec = MacSpec(parse_format(a), parse_format(b), parse_format(out), rows=2, cols=2, k_max=6)
    dut = MacArray(2, 2, spec=spec)
    rng = random.Random(a + out)
    tiles = tiles_for(rng, spec, 5, specials=0.02)
    fracs = None
    if dut.dynamic:
        fracs = [dyn_fracs(rng, spec) for _ in tiles]
        for t, fr in zip(tiles, fracs):
            t["shift"] = fr[0] + fr[1] - fr[2]
    run_and_check(dut, spec, tiles, fracs)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(32, 160), ids=lambda s: f"seed{s}")
def test_random_combination_sweep(seed):
    test_random_combination(seed)
