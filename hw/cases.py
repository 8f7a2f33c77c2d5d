"""Test tiles for MacUnit / MacArray (FloPoCo-style standard and random cases) and their golden results.

A tile is a dict: ``a`` (R x K codes), ``b`` (K x C), ``bias`` (C codes), and for
dynamic fixed point ``fracs`` (the tile's current fa, fb, fo), ``shift``
(= fa + fb - fo, what ``in_shift`` carries) and ``bias_shift`` (= fa + fb - fbias,
what ``in_bias_shift`` carries: the bias has its own range, as in training).
``expected(spec, tile)`` is ``mac_reference`` with the formats at those ranges.
"""

from __future__ import annotations

import random

from fewbits.hw.fmul import FloatMultiplier
from fewbits.sim import mac_reference
from fewbits.sim.spec import runtime_shifts


# ---- operand codes ------------------------------------------------------------
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
    return float_code(rng, f, specials) if f.kind == "float" else fixed_code(rng, f)


def _shift_limits(spec):
    """(in_shift, in_bias_shift) ranges [lo, hi] of a dynamic design's ports."""
    from fewbits.hw.ports import shift_range

    return [shift_range(spec, "in_shift"), shift_range(spec, "in_bias_shift")]


def with_ranges(rng, spec, tile, shift=None, bias_shift=None):
    """Give a dynamic-fixed-point tile its current ranges: the output's (``shift``) and the bias's own
    (``bias_shift``: on the output grid, coarser, finer than the products, or at the port's extremes).

    A bias finer than the products needs shift >= 1 (``mac_reference`` rejects it otherwise).
    """
    if not spec.dynamic:
        return tile
    fa = rng.randint(-2, 6) if spec.a_fmt.kind == "dfixed" else spec.a_fmt.frac
    fb = rng.randint(-2, 6) if spec.b_fmt.kind == "dfixed" else spec.b_fmt.frac
    (_, _), (blo, bhi) = _shift_limits(spec)
    static_shift, static_bias_shift = runtime_shifts(fa, fb, spec.out_fmt.frac, spec.bias_fmt.frac)
    if bias_shift is None:
        if spec.bias_fmt.kind != "dfixed":
            bias_shift = static_bias_shift
        else:
            r = rng.random()
            wz, W = spec.bias_fmt.width, spec.acc_fmt.width
            bias_shift = None if r < 0.3 else rng.randint(-wz - 2, W + 2) if r < 0.85 else rng.choice([blo, bhi])
    if shift is None:
        if spec.out_fmt.kind == "dfixed":
            low = 1 if bias_shift is not None and bias_shift < 0 else -3
            shift = rng.randint(low, 12)
        else:
            shift = static_shift
    if bias_shift is None:
        bias_shift = shift  # the bias on the output's grid
    if bias_shift < 0 and shift < 1:
        bias_shift = 0
    tile["fracs"] = (fa, fb, fa + fb - shift)
    tile["shift"] = shift
    tile["bias_shift"] = bias_shift
    return tile


def bias_shift_tiles(spec, rng):
    """K = 1 tiles whose biases (edge codes, the most negative too) sit coarser and finer than the
    products, up to both ends of ``in_bias_shift``, some large enough to saturate the output; and
    both ends of ``in_shift``."""
    if not spec.dynamic:
        return []
    R, C = spec.rows, spec.cols
    (slo, shi), (blo, bhi) = _shift_limits(spec)
    wz, W = spec.bias_fmt.width, spec.acc_fmt.width
    ez = _edges(spec.bias_fmt)
    ea, eb = _edges(spec.a_fmt), _edges(spec.b_fmt)
    out = []
    cases = [(1, bs) for bs in sorted({blo, -wz - 1, -wz, -1})]              # finer: floor + sticky
    cases += [(s, bs) for s in (0, 3) for bs in sorted({0, 1, W - wz, W - 1, W, bhi})]  # coarser, saturating
    cases += [(slo, 0), (shi, 0), (slo, bhi), (shi, blo)]                     # in_shift at its ends
    for n, (sh, bs) in enumerate(cases):
        a = [[ea[(n + i) % len(ea)]] for i in range(R)]
        b = [[eb[(n + j) % len(eb)] for j in range(C)]]
        bias = [ez[(n + j) % len(ez)] for j in range(C)]
        out.append(with_ranges(rng, spec, {"a": a, "b": b, "bias": bias}, shift=sh, bias_shift=bs))
    return out


def random_tile(rng, spec, K, specials=0.05):
    R, C = spec.rows, spec.cols
    tile = {"a": [[code(rng, spec.a_fmt, specials) for _ in range(K)] for _ in range(R)],
            "b": [[code(rng, spec.b_fmt, specials) for _ in range(C)] for _ in range(K)],
            "bias": [code(rng, spec.bias_fmt, specials) for _ in range(C)]}
    return with_ranges(rng, spec, tile)


def random_tiles(spec, rng: random.Random, n=6, specials=0.05, k_cap=None):
    """``n`` tiles biased to edge codes; the first two have K = 1 and K = k_max (capped at ``k_cap``)."""
    kmax = min(spec.k_max, k_cap or spec.k_max)
    ks = [1, kmax] + [rng.randint(1, kmax) for _ in range(max(0, n - 2))]
    return [random_tile(rng, spec, k, specials) for k in ks[:n]]


def _edges(f):
    """Interesting operand codes of one format."""
    if f.kind == "float":
        return FloatMultiplier.edge_codes(f)
    vals = {f.min_code, f.max_code, 0, min(1, f.max_code), max(-1, f.min_code)}
    if f.signed and f.width > 1:
        vals.add(-(1 << (f.width - 1)))
    return sorted(vals)


def standard_tiles(spec, k_cap=64):
    """Edge tiles: zero, min/max codes (most negative x most negative), saturation both sides at
    K = k_max, every pair of edge codes at K = 1, and for floats subnormal/inf/NaN combinations."""
    R, C = spec.rows, spec.cols
    rng = random.Random(0)
    K = min(spec.k_max, k_cap)
    ea, eb, ez = _edges(spec.a_fmt), _edges(spec.b_fmt), _edges(spec.bias_fmt)

    def const_tile(a, b, k, bias):
        return with_ranges(rng, spec, {"a": [[a] * k for _ in range(R)], "b": [[b] * C for _ in range(k)],
                                       "bias": [bias] * C})

    tiles = [const_tile(0, 0, 1, 0)]
    for a in _extremes(spec.a_fmt):
        for b in _extremes(spec.b_fmt):
            tiles.append(const_tile(a, b, K, 0))     # accumulate to the extremes (saturation both sides)
    # K = 1: every pair of edge codes, spread over rows/cols, biases cycling through the edge codes
    pairs = [(a, b) for a in ea for b in eb]
    n = 0
    for start in range(0, len(pairs), R * C):
        chunk = pairs[start:start + R * C]
        chunk += [chunk[-1]] * (R * C - len(chunk))
        a = [[chunk[i * C][0]] for i in range(R)]
        b = [[chunk[j][1] for j in range(C)]]
        bias = [ez[(n + j) % len(ez)] for j in range(C)]
        n += C
        tiles.append(with_ranges(rng, spec, {"a": a, "b": b, "bias": bias}))
    return tiles + bias_shift_tiles(spec, rng)


def _extremes(f):
    """Codes whose K-fold sums reach both ends of the range: min/max (most negative), +-max finite."""
    if f.kind == "float":
        top = (1 << f.exp) - (2 if f.special.value == "ieee" else 1)
        mx = (top << f.man) | ((1 << f.man) - (2 if f.special.value == "fn" else 1))
        return [mx, mx | (1 << (f.exp + f.man)), 1]  # +max, -max, the least subnormal
    vals = {f.min_code, f.max_code}
    if f.signed and f.width > 1:
        vals.add(-(1 << (f.width - 1)))
    return sorted(vals)


def expected(spec, tile):
    """``(z, ovf)`` R x C lists from ``mac_reference`` with the tile's formats (and ranges, and the
    runtime ``shift``/``bias_shift`` the hardware gets; no ``bias_shift``: the bias on the output grid)."""
    fa, fb, fo = spec.a_fmt, spec.b_fmt, spec.out_fmt
    kw = {}
    if "fracs" in tile:
        x_a, x_b, x_o = tile["fracs"]
        fa = fa.with_frac(x_a) if fa.kind == "dfixed" else fa
        fb = fb.with_frac(x_b) if fb.kind == "dfixed" else fb
        fo = fo.with_frac(x_o) if fo.kind == "dfixed" else fo
    if "shift" in tile:
        kw = {"shift": tile["shift"], "bias_shift": tile.get("bias_shift", tile["shift"])}
    z, ovf = mac_reference(tile["a"], tile["b"], fa, fb, spec.acc_fmt, fo, tile["bias"], spec.bias_fmt, **kw)
    return z.tolist(), ovf.tolist()
