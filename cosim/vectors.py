"""Vector sources: random (recorded seed), exhaustive small widths, corner cases, training captures.

Each returns ``MatMul`` jobs in the design's formats; ``tiles.tile`` turns them
into tiles with their expected codes.  Random codes are uniform bit patterns
(so floats include subnormals, infinities and NaNs) mixed with small values
(so sums do not always saturate).
"""

from __future__ import annotations

import numpy as np
import torch
from fewbits.sim.spec import runtime_shifts

from .tiles import MatMul


def all_codes(fmt) -> np.ndarray:
    """Every code of a format (as ``fewbits.sim`` int64 codes), for exhaustive runs."""
    if fmt.kind == "float":
        return np.arange(1 << fmt.width, dtype=np.int64)
    return np.arange(fmt.min_code, fmt.max_code + 1, dtype=np.int64)


def random_codes(rng: np.random.Generator, fmt, shape) -> np.ndarray:
    """Half uniform codes, half values near one (gaussian), all valid codes of ``fmt``."""
    n = int(np.prod(shape))
    if fmt.kind == "float":
        u = rng.integers(0, 1 << fmt.width, size=n, dtype=np.int64)
    else:
        u = rng.integers(fmt.min_code, fmt.max_code + 1, size=n, dtype=np.int64)
    g = fmt.encode(torch.from_numpy(rng.standard_normal(n) * (2.0 ** rng.integers(-3, 3, n)))).numpy()
    pick = rng.random(n) < 0.5
    return np.where(pick, u, g).reshape(shape)


def dynamic_fracs(rng, spec, n: int):
    """``n`` (fa, fb, fo, fbias) of a dynamic design: fracs around the width, shift 0..wa+wb, and the
    bias on its own grid (as training has it): the output's, coarser, or finer than the products."""
    out = []
    wa, wb, wz = spec.a_fmt.width, spec.b_fmt.width, spec.bias_fmt.width
    for i in range(n):
        fa = int(rng.integers(-2, wa + 2))
        fb = int(rng.integers(-2, wb + 2))
        fo = int(rng.integers(fa + fb - (wa + wb), fa + fb + 1))  # shift fa + fb - fo in [0, wa + wb]
        kind = i % 3 if fo < fa + fb else i % 2  # a finer bias needs shift >= 1
        fz = [fo, int(rng.integers(fa + fb - (wa + wb) - 4, fa + fb + 1)),
              int(rng.integers(fa + fb + 1, fa + fb + wz + 3))][kind]
        out.append((fa, fb, fo, fz))
    return out


def _fmts(spec, fr=None):
    if fr is None:
        return spec.a_fmt, spec.b_fmt, spec.out_fmt, spec.bias_fmt
    fa, fb, fo, fz = fr if len(fr) == 4 else (*fr, fr[2])
    return (spec.a_fmt.with_frac(fa), spec.b_fmt.with_frac(fb), spec.out_fmt.with_frac(fo),
            spec.bias_fmt.with_frac(fz))


def random_matmuls(spec, tiles: int, seed: int, k_max: int | None = None) -> list[MatMul]:
    """About ``tiles`` random tiles in a few matrix groups with different K (1..k_max, default <= 64)."""
    rng = np.random.default_rng(seed)
    R, C = spec.rows, spec.cols
    kmax = min(spec.k_max, k_max or 64)
    groups = max(1, min(8, tiles // 4))
    fracs = dynamic_fracs(rng, spec, groups) if spec.dynamic else [None] * groups
    out = []
    left = tiles
    for g in range(groups):
        n = -(-left // (groups - g))
        left -= n
        if n <= 0:
            continue
        tr = int(np.ceil(np.sqrt(n)))
        tc = -(-n // tr)
        K = int(rng.integers(1, kmax + 1)) if g else kmax
        fa, fb, fo, fz = _fmts(spec, fracs[g])
        a = random_codes(rng, fa, (tr * R, K))
        b = random_codes(rng, fb, (K, tc * C))
        bias = random_codes(rng, fz, (tc * C,))
        out.append(MatMul(f"random[seed={seed},g={g},K={K}]", a, b, fa, fb, fo, bias, fz, kind="random"))
    if spec.dynamic and tiles >= 8:
        # a negative shift (output finer than the products: a left shift), with a bias no finer than them
        fa, fb = (int(v) for v in rng.integers(0, 4, 2))
        fo = fa + fb + int(rng.integers(1, 4))
        fa_, fb_, fo_, fz_ = _fmts(spec, (fa, fb, fo, fa + fb - int(rng.integers(0, 4))))
        K = int(rng.integers(1, kmax + 1))
        tr = max(1, int(np.sqrt(tiles // 8)))
        out.append(MatMul(f"random[seed={seed},negative shift,K={K}]", random_codes(rng, fa_, (tr * R, K)),
                          random_codes(rng, fb_, (K, tr * C)), fa_, fb_, fo_,
                          random_codes(rng, fz_, (tr * C,)), fz_, kind="random"))
    return out


def exhaustive_matmuls(spec, max_pairs: int = 1 << 16) -> list[MatMul]:
    """Every pair (a, b) of codes as K=1 products (outer product of all codes), zero and random bias."""
    fa, fb, fo, fz = _fmts(spec, (spec.a_fmt.width // 2, spec.b_fmt.width // 2, 1) if spec.dynamic else None)
    ca, cb = all_codes(fa), all_codes(fb)
    if len(ca) * len(cb) > max_pairs:
        raise ValueError(f"exhaustive: {len(ca)} x {len(cb)} pairs exceed {max_pairs}; accepted widths "
                         f"whose code pairs fit (e.g. two 4-bit or 8-bit operands)")
    zero = np.zeros(len(cb), dtype=np.int64)
    mms = [MatMul(f"exhaustive[{fa} x {fb}]", ca.reshape(-1, 1), cb.reshape(1, -1), fa, fb, fo, zero, fz,
                  kind="exhaustive")]
    return mms


def corner_codes(fmt) -> np.ndarray:
    """Extreme and special codes of one format."""
    if fmt.kind == "float":
        E, M = fmt.exp, fmt.man
        sign = 1 << (E + M)
        top = ((1 << E) - 1) << M
        mags = [0, 1, 2, (1 << M) - 1, 1 << M, (1 << M) + 1,  # subnormals, min normal
                ((fmt.bias) << M), ((fmt.bias) << M) | 1,  # 1.0 and 1+ulp
                top - 1, top - (1 << M),  # max finite (IEEE), and max of the exponent below
                top, top | 1, top | (1 << (M - 1)), top | ((1 << M) - 1)]  # inf / NaNs (or FN/SAT values)
        mags = [m for m in mags if 0 <= m < sign]
        return np.unique(np.array(mags + [m | sign for m in mags], dtype=np.int64))
    lo, hi = fmt.min_code, fmt.max_code
    c = [lo, lo + 1, lo // 2, -1, 0, 1, 2, hi // 2, hi - 1, hi]
    return np.unique(np.array([v for v in c if lo <= v <= hi], dtype=np.int64))


def corner_matmuls(spec, seed: int = 0) -> list[MatMul]:
    """Corners: every pair of extreme codes, saturation both ways over K, rounding ties of the out format."""
    rng = np.random.default_rng(seed)
    # dynamic: the bias one bit finer than the products (floored + sticky in hardware) when shift >= 1
    pf = spec.a_fmt.width + spec.b_fmt.width - 4
    fa, fb, fo, fz = _fmts(spec, (spec.a_fmt.width - 2, spec.b_fmt.width - 2, 0, pf + 1 if pf >= 1 else 0)
                           if spec.dynamic else None)
    ca, cb = corner_codes(fa), corner_codes(fb)
    cz = corner_codes(fz)
    K = min(spec.k_max, 16)
    mms = []
    zero = np.zeros(len(cb), dtype=np.int64)
    mms.append(MatMul("corner[pairs]", ca.reshape(-1, 1), cb.reshape(1, -1), fa, fb, fo, zero, fz, kind="corner"))
    bz = rng.choice(cz, size=len(cb))
    mms.append(MatMul("corner[pairs+bias]", ca.reshape(-1, 1), cb.reshape(1, -1), fa, fb, fo, bz, fz,
                      kind="corner"))
    # saturation both ways: every pair of extremes repeated over K steps (most negative x most negative too)
    a_rep = np.repeat(ca.reshape(-1, 1), K, axis=1)
    b_rep = np.repeat(cb.reshape(1, -1), K, axis=0)
    mms.append(MatMul(f"corner[K={K} repeated extremes]", a_rep, b_rep, fa, fb, fo,
                      np.zeros(len(cb), dtype=np.int64), fz, kind="corner"))
    mms.append(MatMul(f"corner[K={K} repeated extremes+bias]", a_rep, b_rep, fa, fb, fo, bz, fz, kind="corner"))
    mms += tie_matmuls(spec, fa, fb, fo, fz, rng)
    return mms


def is_tie(v: np.ndarray, fo) -> np.ndarray:
    """Finite float64 values exactly halfway between two neighbouring codes of ``fo``."""
    import dataclasses as dc

    from fewbits.sim import Float, Rounding

    v = np.asarray(v, dtype=np.float64)
    fin = np.isfinite(v)
    vv = np.where(fin, v, 0.0)
    if fo.kind == "float":
        rtz = dc.replace(fo, round=Rounding.RTZ)
        finer = Float(fo.exp, fo.man + 1, bias=fo.bias, round=Rounding.RTZ)
        t = torch.from_numpy(vv)
        on_finer = (finer.quantize(t) == t).numpy()
        off_grid = (rtz.quantize(t) != t).numpy()
        return fin & on_finer & off_grid & (np.abs(vv) < fo.max)
    t = vv * 2.0 ** fo.frac
    return fin & (t - np.floor(t) == 0.5) & (t > fo.min_code - 1) & (t < fo.max_code + 1)


def tie_matmuls(spec, fa, fb, fo, fz, rng, want: int = 24) -> list[MatMul]:
    """K=1 products that land exactly halfway between two output codes (ties, both signs)."""
    n = 1 << 14
    a = random_codes(rng, fa, (n,))
    b = random_codes(rng, fb, (n,))
    va = fa.decode(torch.from_numpy(a)).numpy()
    vb = fb.decode(torch.from_numpy(b)).numpy()
    tie = is_tie(va * vb, fo)
    pos, neg = np.nonzero(tie & (va * vb > 0))[0], np.nonzero(tie & (va * vb < 0))[0]
    idx = np.concatenate([pos[: want // 2], neg[: want // 2]])
    if len(idx) == 0:
        return []
    # a K=1 outer product: its diagonal holds the tie pairs (the other elements are extra products)
    return [MatMul(f"corner[rounding ties of {fo}]", a[idx].reshape(-1, 1), b[idx].reshape(1, -1), fa, fb, fo,
                   np.zeros(len(idx), dtype=np.int64), fz, kind="corner")]


def capture_matmuls(path, spec) -> tuple[list[MatMul], list[dict]]:
    """The matmuls of a training capture that ``spec``'s hardware computes, and the ones skipped (why).

    The capture is read and fitted to the design by ``fewbits.sim.capture`` (its one mismatch rule:
    operands converted only when exact, output codes compared only in the design's output format)."""
    from fewbits.sim.capture import fit, read_capture

    out, skipped = [], []
    for m in read_capture(path).matmuls:
        f = fit(m, spec, compare_outputs=True)
        why = [f] if isinstance(f, str) else []
        if spec.dynamic and not why and f.bias is not None:
            sh, bsh = runtime_shifts(f.fa.frac, f.fb.frac, f.fo.frac, f.fz.frac)
            if bsh < 0 and sh < 1:  # the one combination the port contract leaves undefined (hw/README.md)
                why.append(f"bias {f.fz} finer than the products (bias shift {bsh}) with shift {sh} < 1")
        if why:
            skipped.append({"name": m.name, "reason": "; ".join(why)})
            continue
        out.append(MatMul(f"capture[{m.name}]", f.a, f.b, f.fa, f.fb, f.fo, f.bias, f.fz,
                          z=m.z, ovf=m.overflow.astype(bool), kind="capture"))
    return out, skipped
