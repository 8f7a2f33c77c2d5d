"""Test tiles for MacUnit / MacArray (FloPoCo-style standard and random cases) and their golden results.

A tile is a dict: ``a`` (R x K codes), ``b`` (K x C), ``bias`` (C codes), and for
dynamic fixed point ``fracs`` (the tile's current fa, fb, fo) and ``shift``
(= fa + fb - fo, what ``in_shift`` carries).  ``expected(spec, tile)`` is
``mac_reference`` with the formats at those ranges.
"""

from __future__ import annotations

import random

from fewbits.sim import DynamicFixed, Float, mac_reference

from .fmul import FloatMultiplier


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
    return float_code(rng, f, specials) if isinstance(f, Float) else fixed_code(rng, f)


def _dynamic(spec) -> bool:
    return any(isinstance(f, DynamicFixed) for f in (spec.a_fmt, spec.b_fmt, spec.out_fmt, spec.bias_fmt))


def with_ranges(rng, spec, tile):
    """Give a dynamic-fixed-point tile its current ranges (fo <= fa + fb, so the bias is exact)."""
    if not _dynamic(spec):
        return tile
    fa = rng.randint(-2, 6) if isinstance(spec.a_fmt, DynamicFixed) else spec.a_fmt.frac
    fb = rng.randint(-2, 6) if isinstance(spec.b_fmt, DynamicFixed) else spec.b_fmt.frac
    fo = rng.randint(fa + fb - 12, fa + fb) if isinstance(spec.out_fmt, DynamicFixed) else spec.out_fmt.frac
    tile["fracs"] = (fa, fb, fo)
    tile["shift"] = fa + fb - fo
    return tile


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
    if isinstance(f, Float):
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
    return tiles


def _extremes(f):
    """Codes whose K-fold sums reach both ends of the range: min/max (most negative), +-max finite."""
    if isinstance(f, Float):
        top = (1 << f.exp) - (2 if f.special.value == "ieee" else 1)
        mx = (top << f.man) | ((1 << f.man) - (2 if f.special.value == "fn" else 1))
        return [mx, mx | (1 << (f.exp + f.man)), 1]  # +max, -max, the least subnormal
    vals = {f.min_code, f.max_code}
    if f.signed and f.width > 1:
        vals.add(-(1 << (f.width - 1)))
    return sorted(vals)


def expected(spec, tile):
    """``(z, ovf)`` R x C lists from ``mac_reference`` with the tile's formats (and ranges)."""
    fa, fb, fo, fbias = spec.a_fmt, spec.b_fmt, spec.out_fmt, spec.bias_fmt
    if "fracs" in tile:
        x_a, x_b, x_o = tile["fracs"]
        fa = fa.with_frac(x_a) if isinstance(fa, DynamicFixed) else fa
        fb = fb.with_frac(x_b) if isinstance(fb, DynamicFixed) else fb
        fo = fo.with_frac(x_o) if isinstance(fo, DynamicFixed) else fo
        fbias = fbias.with_frac(x_o) if isinstance(fbias, DynamicFixed) else fbias
    z, ovf = mac_reference(tile["a"], tile["b"], fa, fb, spec.acc_fmt, fo, tile["bias"], fbias)
    return z.tolist(), ovf.tolist()
