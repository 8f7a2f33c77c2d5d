"""MacUnit and MacArray vs fewbits.sim.mac_reference, cycle by cycle in the Amaranth simulator.

Format combinations are drawn from a seeded RNG (the seed is in the test id);
tiles run back to back with no idle cycle, with K = 1 and K = k_max among them.
"""

import random

import pytest
from fewbits.hw.cases import (
    expected,
    fixed_code,
    random_tile,
    random_tiles,
)
from fewbits.hw.mac import MacArray, MacUnit
from fewbits.hw.simrun import run_tiles
from fewbits.sim import DynamicFixed, Fixed, Float, MacSpec, Overflow, Rounding, Special


def run_and_check(dut, spec, tiles, gaps=None, stalls=None):
    outs, lats = run_tiles(dut, tiles, gaps=gaps, stalls=stalls)
    assert len(outs) == len(tiles), f"{len(outs)} results for {len(tiles)} tiles"
    assert set(lats) == {dut.latency}, f"latencies {lats}, reported {dut.latency}"
    for t, (tile, (z, ovf)) in enumerate(zip(tiles, outs)):
        wz, wo = expected(spec, tile)
        for i in range(len(z)):
            for j in range(len(z[0])):
                assert (z[i][j], ovf[i][j]) == (wz[i][j], wo[i][j]), (
                    f"tile {t} element ({i},{j}) K={len(tile['b'])} shift={tile.get('shift')}: "
                    f"hw z={z[i][j]:#x} ovf={ovf[i][j]}, sim z={wz[i][j]:#x} ovf={wo[i][j]}; "
                    f"a row {tile['a'][i]}, b col {[r[j] for r in tile['b']]}, bias {tile['bias'][j]}")


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
    dut = MacArray(spec)
    run_and_check(dut, spec, random_tiles(spec, rng, 6))


def test_standard_cases():
    """The arrays' own edge tiles (min/max, saturation both sides, specials) for three datapaths."""
    for spec in (MacSpec(Fixed(4, 1), Fixed(3, 2, signed=False), Fixed(4, 2, round=Rounding.RNA), rows=2, cols=2,
                         k_max=9),
                 MacSpec(DynamicFixed(4), DynamicFixed(3), DynamicFixed(4, overflow=Overflow.WRAP), rows=1, cols=3,
                         k_max=5),
                 MacSpec(Float(3, 2), Float(2, 1, special=Special.FN), Float(3, 1, round=Rounding.RTZ), rows=3,
                         cols=3, k_max=4)):
        dut = MacArray(spec)
        run_and_check(dut, spec, dut.standard_cases())


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
    dut = MacArray(spec)
    rng = random.Random(5)
    tiles = random_tiles(spec, rng, 4)
    tiles[0] = random_tile(rng, spec, 4)
    run_and_check(dut, spec, tiles, gaps=[0, 3, 1, 0], stalls=[{1, 3}, set(), {0, 1, 2}, {1}])


@pytest.mark.parametrize("rows,cols,a,b,out", [
    (32, 32, Fixed(4, 2), Fixed(4, 1, round=Rounding.RNA), Fixed(6, 2, round=Rounding.RNA)),   # the largest
    (1, 32, Float(4, 3, special=Special.FN), Float(3, 2), Float(5, 2)),
    (32, 1, DynamicFixed(6), DynamicFixed(5), DynamicFixed(7, round=Rounding.RTZ)),
], ids=["32x32-fixed", "1x32-float", "32x1-dfixed"])
def test_edge_shapes_short_run(rows, cols, a, b, out):
    spec = MacSpec(a, b, out, rows=rows, cols=cols, k_max=4)
    dut = MacArray(spec)
    rng = random.Random(f"{rows}x{cols}")
    tiles = [random_tile(rng, spec, 1), random_tile(rng, spec, 4), random_tile(rng, spec, 2)]
    run_and_check(dut, spec, tiles)


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
    dut = MacArray(spec)
    rng = random.Random(a + out)
    run_and_check(dut, spec, random_tiles(spec, rng, 5, specials=0.02))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(32, 160), ids=lambda s: f"seed{s}")
def test_random_combination_sweep(seed):
    test_random_combination(seed)


# ---- in_bias_shift: the bias on its own dynamic range (training's fbias != fo) -------------------------
def _bias_specs():
    return [MacSpec(DynamicFixed(6), DynamicFixed(5), DynamicFixed(7, round=mode), bias_fmt=DynamicFixed(9),
                    rows=1, cols=4, k_max=3) for mode in Rounding] + \
        [MacSpec(DynamicFixed(4, signed=False), DynamicFixed(5), DynamicFixed(4, overflow=Overflow.WRAP),
                 bias_fmt=DynamicFixed(3, signed=False), rows=2, cols=2, k_max=2)]


def _floored(tile):
    """The tile with a finer bias floored onto the product grid (what hardware without the sticky bit adds)."""
    bs = tile["bias_shift"]
    return dict(tile, bias=[c >> -bs for c in tile["bias"]], bias_shift=0) if bs < 0 else tile


@pytest.mark.parametrize("seed", range(5), ids=lambda s: f"seed{s}")  # seed 4: an unsigned bias
def test_bias_shift_coarser_finer_extremes(seed):
    """Biases coarser and finer than the products (up to both ends of in_bias_shift, the most negative
    code among them), and output saturation from a shifted bias: hw == mac_reference(bias_shift=)."""
    spec = _bias_specs()[seed]
    dut = MacArray(spec)
    rng = random.Random(seed)
    from fewbits.hw.cases import bias_shift_tiles

    tiles = bias_shift_tiles(spec, rng) + random_tiles(spec, rng, 8)
    lo = -(1 << (dut.unit.bias_shift_width - 1))
    shifts = [t["bias_shift"] for t in tiles]
    assert lo in shifts and -lo - 1 in shifts and min(shifts) < 0 < max(shifts)
    lowest = spec.bias_fmt.min_code  # the most negative code of a signed bias
    assert any(lowest in t["bias"] and t["bias_shift"] < 0 for t in tiles)
    run_and_check(dut, spec, tiles)
    ovf = [any(map(any, expected(spec, t)[1])) for t in tiles]
    assert any(ovf), "a shifted bias must saturate the output somewhere"
    # not vacuous: the bits of a finer bias below the product grid change some rounded outputs (RDN: none)
    assert any(expected(spec, t) != expected(spec, _floored(t)) for t in tiles if t["bias_shift"] < 0) \
        == (spec.out_fmt.round is not Rounding.RDN)


@pytest.mark.parametrize("mode", list(Rounding), ids=str)
def test_bias_shift_finer_bias_rounds_like_its_exact_value(mode):
    """A bias one to four bits finer than the products: ties and near-ties of the output, K = 2, one PE."""
    spec = MacSpec(DynamicFixed(4), DynamicFixed(4), DynamicFixed(5, round=mode), bias_fmt=DynamicFixed(6), k_max=2)
    dut = MacUnit(spec)
    tiles = []
    for d in range(1, 5):
        for z in range(-32, 32):
            tiles.append({"a": [[1, -1]], "b": [[3], [1]], "bias": [z], "fracs": (2, 2, 2), "shift": 2,
                          "bias_shift": -d})
    run_and_check(dut, spec, tiles)
    assert any(expected(spec, t) != expected(spec, _floored(t)) for t in tiles) == (mode is not Rounding.RDN)


def test_finer_bias_without_a_coarser_output_is_rejected():
    """The one combination the hardware does not define (shift < 1 with a finer bias) is an error in sim."""
    from fewbits.sim import FormatError

    spec = MacSpec(DynamicFixed(4), DynamicFixed(4), DynamicFixed(5), k_max=2)
    with pytest.raises(FormatError, match="finer than the product grid"):
        expected(spec, {"a": [[1]], "b": [[1]], "bias": [1], "fracs": (1, 1, 2), "shift": 0, "bias_shift": -1})
