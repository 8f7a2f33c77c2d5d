"""MAC-contract matmuls through float64 BLAS, exact by proof or by a checked error bound.

Fixed point: when every partial sum is an integer below 2**53 units of the
finest grid, one float64 matmul *is* the exact accumulator.

Float formats: products of two such floats are exact in float64 but their sum
is not.  ``s = fl(bias + a @ b)`` is within ``E = gamma * (|bias| + |a| @ |b|)``
(``|a_i| @ |b_j|`` itself bounded by ``||a_i|| ||b_j||``, Cauchy-Schwarz, without a second matmul)
of the exact sum (any summation order; no float64 underflow or overflow on
these grids, which non-finite results betray).  Rounding to the output format
is monotonic, so where ``s - E`` and ``s + E`` round to the same value with
the same overflow flag, that is the exact sum's rounding; where ``|bias| + |a| @ |b|``
stays below 2**53 units of the finest grid, ``s`` is exact; every other element
(ties, exact cancellations, non-finite operands) is recomputed by
``fewbits.sim.mac_reference`` on its rows and columns.

Float accumulators (``float_acc_sums``): a compiled loop in ascending k, exact by an
error-free transformation (TwoSum) and rounding to odd, with an exact fallback for the
elements the transformation cannot certify (proof in its docstring).
"""

from __future__ import annotations

import math

import torch

from . import fastfloat
from .fastq import _njit

#: products of two float64-exact significands of these widths are exact
MAX_PRODUCT_BITS = 53


def max_code(fmt) -> int:
    """The largest |code| of a fixed-point format."""
    return max(-fmt.min_code, fmt.max_code)


def exact_float64_sum(a, b, bias) -> bool:
    """Whether ``a.values @ b.values (+ bias)`` in float64 is exact whatever the summation order.

    True for fixed-point operands (and bias) when ``K * max|a| * max|b| + max|bias|``,
    counted in units of the finest grid involved, stays below 2**53 (the formats'
    ranges bound the data, so no pass over it is needed).
    """
    if a.values.dtype != torch.float64 or b.values.dtype != torch.float64:
        return False
    return exact_fixed_sum(a.values.shape[1], a.fmt, b.fmt, None if bias is None else bias.fmt)


def exact_fixed_sum(k: int, a_fmt, b_fmt, bias_fmt=None) -> bool:
    """Whether any float64 sum of ``k`` products of ``a_fmt`` and ``b_fmt`` values (and a bias) is exact:
    fixed-point formats whose ``k * max|a| * max|b| + max|bias|``, counted in units of the finest
    grid involved, stays below 2**53 (and far from float64's range)."""
    fmts = [a_fmt, b_fmt] + ([] if bias_fmt is None else [bias_fmt])
    if any(f.kind not in ("fixed", "dfixed") for f in fmts):
        return False
    g_prod = -(a_fmt.frac + b_fmt.frac)
    g = g_prod if bias_fmt is None else min(g_prod, -bias_fmt.frac)
    if g < -1074:
        return False
    bound = (k * max_code(a_fmt) * max_code(b_fmt)) << (g_prod - g)
    if bias_fmt is not None:
        bound += max_code(bias_fmt) << (-bias_fmt.frac - g)
    return bound < (1 << 53) and math.ldexp(float(bound), g) < 2.0 ** 1000


def filtered_float_applies(a, b, bias, out_fmt) -> bool:
    """Float operands whose products are exact in float64, a float output (bias: any format)."""
    if a.fmt.kind != "float" or b.fmt.kind != "float" or out_fmt.kind != "float":
        return False
    if a.values.dtype != torch.float64 or b.values.dtype != torch.float64:
        return False
    if (a.fmt.man + 1) + (b.fmt.man + 1) > MAX_PRODUCT_BITS:
        return False
    # every product is a multiple of 2**(qa + qb) and below 2**(ea + eb + 2): float64-normal sums
    return a.fmt.q0 + b.fmt.q0 >= -1000 and a.fmt.emax + b.fmt.emax + 2 + math.log2(max(1, a.values.shape[1])) < 1000


_kernels: dict = {}


def _interval_kernel(mode: str):
    """The bound check and rounding of ``filtered_float_mac``, one pass over the float64 sums ``s``.

    The bound ``t`` of ``|bias| + |a| @ |b|`` is either given (``t2``, R x C) or formed per element
    from the row and column norms (``cs``: ``na[i] * nb[j] + bb[j]``), never materialized.
    ``sb`` are the bit patterns of ``s`` (the binade without a libm call).
    """
    key = mode
    if key not in _kernels:
        one = fastfloat.element(mode)
        one_nb = fastfloat.element(mode, have_bits=False)

        @_njit()
        def check(s, sb, cs, t2, na, nb, bb, gamma, exact_t, out, flags, pow2, man, emin, sub, vmax, bp, bn,
                  sp):  # pragma: no cover
            # flags: 1 = overflowed, 2 = not provably the exact sum's rounding (recompute)
            R, C = s.shape
            ovf = 0
            unsure = 0
            for i in range(R):
                for j in range(C):
                    v = s[i, j]
                    t = na[i] * nb[j] + bb[j] if cs else t2[i, j]
                    e = t * gamma + abs(v) * 2.0 ** -50
                    if not (math.isfinite(v) and math.isfinite(e)):
                        flags[i, j] = 2
                        unsure += 1
                        continue
                    if t * (1.0 + gamma) < exact_t:
                        # every partial sum is a multiple of the grid below 2**53 of it: s is exact
                        # (v + 0.0: an exact zero sum is +0; its bits are those of v unless v is -0)
                        r, o = one(v + 0.0, sb[i, j] & 0x7FFFFFFFFFFFFFFF if v == 0.0 else sb[i, j], pow2, man,
                                   emin, sub, vmax, bp, bn, sp)
                        out[i, j] = r
                        flags[i, j] = o
                        ovf += o
                        continue
                    lo, olo = one_nb(v - e, 0, pow2, man, emin, sub, vmax, bp, bn, sp)
                    hi, ohi = one_nb(v + e, 0, pow2, man, emin, sub, vmax, bp, bn, sp)
                    if lo == hi and olo == ohi and math.copysign(1.0, lo) == math.copysign(1.0, hi):
                        out[i, j] = lo
                        flags[i, j] = olo
                        ovf += olo
                    else:
                        flags[i, j] = 2
                        unsure += 1
            return ovf, unsure

        _kernels[key] = check
    return _kernels[key]


def _grid_exponent(fmt) -> int:
    """Every finite value of ``fmt`` is an integer times 2**this."""
    return fmt.q0 if fmt.kind == "float" else -fmt.frac


def _norms_safe(a_fmt, b_fmt, k: int) -> bool:
    """Squares of every finite value of both formats are float64-normal, and ``k`` of them stay far below
    its largest value: float64 norms then have the relative error of a sum (for the Cauchy-Schwarz bound)."""
    return 2 * min(a_fmt.q0, b_fmt.q0) >= -1022 and 2 * (max(a_fmt.emax, b_fmt.emax) + 1) + math.log2(max(1, k)) < 1000


def filtered_float_mac(a, b, bias, out_fmt, exact_grid: bool = True, norm_bound: bool = True):
    """``(values, overflow flags)`` of ``requant(a @ b + bias)`` onto float ``out_fmt``, exactly.

    ``a``/``b``/``bias`` are ``QT``s (float64 values on their formats' grids).
    ``exact_grid=False`` skips the below-2**53 shortcut (tests exercise the bound alone).
    ``norm_bound``: bound ``|a| @ |b|`` by row and column norms (Cauchy-Schwarz) instead of a
    second matmul; looser, so a few more elements go to the exact recompute.
    """
    out, _ovf, flags = filtered_float_mac_counts(a, b, bias, out_fmt, True, exact_grid, norm_bound)
    return out, flags


def filtered_float_mac_counts(a, b, bias, out_fmt, want_flags: bool = False, exact_grid: bool = True,
                              norm_bound: bool = True, col_major: bool = False):
    """``filtered_float_mac`` as ``(values, overflow count, flags or None)``: the flags only when
    asked for (hooks).  ``col_major`` (no bias): the values come back column-major (their ``.t()``
    contiguous), computed as ``(b.T @ a.T).T``: the same products, the same exact sums."""
    if col_major and bias is None:
        out, ovf, flags = filtered_float_mac_counts(b.t(), a.t(), None, out_fmt, want_flags, exact_grid, norm_bound)
        return out.t(), ovf, None if flags is None else flags.t()
    from fewbits.sim import mac_reference

    K = a.values.shape[1]
    av, bv = a.values.contiguous(), b.values.contiguous()
    s = av @ bv if bias is None else torch.addmm(bias.values, av, bv)
    N = s.shape[1]
    bb = bias.values.abs().reshape(-1).contiguous() if bias is not None else torch.zeros(N, dtype=torch.float64)
    if norm_bound and _norms_safe(a.fmt, b.fmt, K):
        # Cauchy-Schwarz: sum_k |a_ik| |b_kj| <= ||a_i|| ||b_j||, no second matmul; the factor covers
        # the float64 roundings of the norms and their product (squares neither underflow nor overflow)
        na = torch.linalg.vector_norm(av, dim=1)
        nb = torch.linalg.vector_norm(bv, dim=0) * (1.0 + (K + 10) * 2.0 ** -52)
        cs, t2 = True, torch.zeros(1, 1, dtype=torch.float64)
    else:
        t2 = av.abs() @ bv.abs() if bias is None else torch.addmm(bias.values.abs(), av.abs(), bv.abs())
        cs, na, nb = False, torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    # gamma_{K+1} = (K+1)u / (1 - (K+1)u) with u = 2**-53, doubled for the rounding of t itself
    gamma = (K + 3) * 2.0 ** -52
    # products are multiples of 2**(qa + qb), the bias of its own grid: below 2**53 of the finest,
    # a float64 sum is exact whatever the order
    g = a.fmt.q0 + b.fmt.q0 if bias is None else min(a.fmt.q0 + b.fmt.q0, _grid_exponent(bias.fmt))
    out = torch.empty_like(s)
    flags = torch.empty(s.shape, dtype=torch.uint8)
    sn = s.numpy()
    ovf, unsure = _interval_kernel(out_fmt.round.value)(
        sn, sn.view("int64"), cs, t2.numpy(), na.numpy(), nb.contiguous().numpy(), bb.numpy(), gamma,
        math.ldexp(1.0, 53 + g) if exact_grid else 0.0, out.numpy(), flags.numpy(), fastfloat.pow2_table(),
        *fastfloat.params(out_fmt))
    if unsure:
        u = flags == 2
        rows, cols = u.any(dim=1).nonzero().flatten(), u.any(dim=0).nonzero().flatten()
        z, zo = mac_reference(a.fmt.encode(av[rows]), b.fmt.encode(bv[:, cols]), a.fmt, b.fmt, None, out_fmt,
                              None if bias is None else bias.fmt.encode(bias.values.reshape(-1)[cols]),
                              None if bias is None else bias.fmt)
        sub = u[rows][:, cols]
        block = out[rows][:, cols]
        block[sub] = out_fmt.decode(z)[sub]
        fl = flags[rows][:, cols]
        fl[sub] = zo[sub].to(torch.uint8)
        out[rows.unsqueeze(1), cols.unsqueeze(0)] = block
        flags[rows.unsqueeze(1), cols.unsqueeze(0)] = fl
        ovf = int((flags == 1).sum())
    return out, int(ovf), (flags == 1) if want_flags else None


def filtered_float_round(s: torch.Tensor, t: torch.Tensor, k: int, a_fmt, b_fmt, bias_fmt, out_fmt):
    """``filtered_float_mac``'s check on sums computed elsewhere (a float64 convolution).

    ``s``: float64 sums of at most ``k`` exact float64 products of ``a_fmt`` and ``b_fmt`` values
    (plus a bias of ``bias_fmt``), in any order; ``t``: an upper bound of ``|bias| + sum |products|``
    per element.  Returns ``(values, overflow count)``, or None when some element is not provably
    the exact sum's rounding (the caller recomputes the whole product exactly).
    """
    g = a_fmt.q0 + b_fmt.q0 if bias_fmt is None else min(a_fmt.q0 + b_fmt.q0, _grid_exponent(bias_fmt))
    s2 = s.contiguous().view(s.shape[0], -1)
    t2 = t.contiguous().view(s2.shape)
    out = torch.empty_like(s2)
    flags = torch.empty(s2.shape, dtype=torch.uint8)
    sn = s2.numpy()
    one = torch.zeros(1, dtype=torch.float64).numpy()
    ovf, unsure = _interval_kernel(out_fmt.round.value)(
        sn, sn.view("int64"), False, t2.numpy(), one, one, one, (k + 3) * 2.0 ** -52, math.ldexp(1.0, 53 + g),
        out.numpy(), flags.numpy(), fastfloat.pow2_table(), *fastfloat.params(out_fmt))
    if unsure:
        return None
    return out.view(s.shape), int(ovf)


# ---- float accumulators ---------------------------------------------------------
#: the round-to-odd argument needs two spare bits below the accumulator's significand in float64's 53
MAX_ACC_MAN = 50


def float_acc_applies(a, b, bias, acc) -> bool:
    """Whether ``float_acc_mac`` is exact for these operands and float accumulator ``acc``.

    Products must be exact in float64 (significands of at most 53 bits together, no float64
    underflow: the grids are above 2**-1074), the accumulator's significand at most
    ``MAX_ACC_MAN + 1`` bits and its range far inside float64's (so a float64 rounded to odd
    still has two bits below the accumulator's grid, and no partial sum overflows float64).
    """
    fmts = [a.fmt, b.fmt] + ([] if bias is None else [bias.fmt])
    if any(f is None or f.kind not in ("fixed", "float") for f in fmts):
        return False
    if a.values.dtype != torch.float64 or b.values.dtype != torch.float64:
        return False
    bits = [(f.man + 1) if f.kind == "float" else f.width for f in (a.fmt, b.fmt)]
    fmt = acc.fmt
    if bits[0] + bits[1] > MAX_PRODUCT_BITS or fmt.man > MAX_ACC_MAN:
        return False
    if fmt.q0 < -1072 or fmt.emax > 1000 or _grid_exponent(a.fmt) + _grid_exponent(b.fmt) < -1074:
        return False
    top = [f.emax + 1 if f.kind == "float" else f.width - f.frac for f in fmts]
    k = max(1, acc.chunk)
    return top[0] + top[1] + math.log2(k) < 1000 and (bias is None or top[2] < 1000)


def _is_fp32_rne(fmt) -> bool:
    """IEEE binary32 with ties to even: a float64 -> float32 conversion is its one rounding."""
    return (fmt.exp, fmt.man, fmt.bias, fmt.subnormals, fmt.special.value, fmt.round.value) == \
        (8, 23, 127, True, "ieee", "rne")


def _facc_kernel(mode: str):
    key = ("facc", mode)
    if key not in _kernels:
        import numpy as np

        one = fastfloat.element(mode)

        @_njit()
        def run(A, B, s, chunk, bad, xb, eb, f32, pow2, man, emin, sub, vmax, bp, bn, sp):  # pragma: no cover
            # s: R×C running sums (float64 values of the accumulator), bad: R×C flags (1 = recompute);
            # xb/eb: one row of partial sums and their errors (xi: xb's bit patterns)
            R, K = A.shape
            C = B.shape[1]
            xi = xb.view(np.int64)
            for i in range(R):
                si = s[i]
                bi = bad[i]
                for k0 in range(0, K, chunk):
                    k1 = min(K, k0 + chunk)
                    if chunk == 1:
                        a = A[i, k0]
                        if a == 0.0:
                            continue  # s + (+-0) is s, already on the accumulator (non-finite b: checked outside)
                        for j in range(C):
                            p = a * B[k0, j]  # exact: significands of <= 53 bits together, no underflow
                            h = si[j]
                            x = h + p  # TwoSum: x + err == h + p exactly
                            bb = x - h
                            xb[j] = x
                            eb[j] = (h - (x - bb)) + (p - bb)
                    else:
                        for j in range(C):
                            xb[j] = si[j]
                            eb[j] = 0.0
                        for k in range(k0, k1):
                            a = A[i, k]
                            if a == 0.0:
                                continue
                            for j in range(C):
                                p = a * B[k, j]
                                h = xb[j]
                                x = h + p
                                bb = x - h
                                err = (h - (x - bb)) + (p - bb)
                                xb[j] = x
                                e = eb[j]
                                y = e + err  # the errors' own TwoSum: must be exact, else recompute
                                cc = y - e
                                f = (e - (y - cc)) + (err - cc)
                                eb[j] = y
                                bi[j] |= f != 0.0  # (NaN too: a non-finite partial sum)
                        for j in range(C):  # the exact sum h + E as x + err
                            h = xb[j]
                            e = eb[j]
                            x = h + e
                            bb = x - h
                            xb[j] = x
                            eb[j] = (h - (x - bb)) + (e - bb)
                    for j in range(C):
                        # round x + err to odd in float64: an even x moves one ulp toward err
                        err = eb[j]
                        step = 1 if (err > 0.0) == (xb[j] > 0.0) else -1
                        xi[j] += step * ((err != 0.0) & ((xi[j] & 1) == 0))
                    # ... then round once to the accumulator (>= 2 spare bits: one correct rounding)
                    if f32:
                        for j in range(C):
                            v = np.float64(np.float32(xb[j]))
                            si[j] = v
                            bi[j] |= not math.isfinite(v)
                    else:
                        for j in range(C):
                            v, _o = one(xb[j], xi[j], pow2, man, emin, sub, vmax, bp, bn, sp)
                            si[j] = v
                            bi[j] |= not math.isfinite(v)
        _kernels[key] = run
    return _kernels[key]


def float_acc_sums(a, b, bias, acc) -> torch.Tensor:
    """The float accumulator's final running sums ``s`` (float64 values of ``acc.fmt``), R×C.

    Exact (equal to ``mac_reference`` with ``acc``; tests/training/test_fastmac_facc.py).  Proof: each
    product is exact in float64 (``float_acc_applies``).  Per element and chunk, TwoSum turns
    ``h + p`` into ``x + err`` with no error (binary floating point, no overflow), so the
    chunk's exact sum plus ``s`` equals ``h + sum(err)``; the errors are summed with TwoSum too,
    and an element whose error sum was not exact (or whose sum went non-finite) is flagged.
    For the others ``h + E`` is exact, its TwoSum gives ``x + err`` and rounding ``x`` to odd
    (``x`` itself if ``err == 0``, else the neighbour of ``x`` toward ``err`` with an odd last
    bit) yields a 53-bit value that rounds to the accumulator (``<= 51`` bits, every mode) as
    the exact sum does (Boldo & Melquiond 2008: rounding to odd with two spare bits).  Flagged
    elements are recomputed by ``mac_reference`` on their rows and columns.
    """
    import numpy as np

    from fewbits.sim import mac_reference

    fmt = acc.fmt
    av, bv = a.values.contiguous(), b.values.contiguous()
    R, K = av.shape
    C = bv.shape[1]
    if bias is None:
        s = torch.zeros((R, C), dtype=torch.float64)
    else:
        s0 = fastfloat.quantize_float(bias.values.reshape(1, -1).to(torch.float64), fmt).values + 0.0
        s = s0.expand(R, C).contiguous()
    bad = torch.zeros((R, C), dtype=torch.uint8)
    # non-finite operands (NaN, infinities): those rows and columns go to the reference
    bad |= (~torch.isfinite(av)).any(dim=1, keepdim=True).to(torch.uint8)
    bad |= (~torch.isfinite(bv)).any(dim=0, keepdim=True).to(torch.uint8)
    if bias is not None:
        bad |= (~torch.isfinite(bias.values.reshape(1, -1))).expand(R, C).to(torch.uint8)
    _facc_kernel(fmt.round.value)(
        av.numpy(), bv.numpy(), s.numpy(), acc.chunk, bad.numpy(), np.empty(C), np.empty(C), _is_fp32_rne(fmt),
        fastfloat.pow2_table(), *fastfloat.params(fmt))
    u = bad.bool()
    if bool(u.any()):
        rows, cols = u.any(dim=1).nonzero().flatten(), u.any(dim=0).nonzero().flatten()
        z, _ = mac_reference(a.fmt.encode(av[rows]), b.fmt.encode(bv[:, cols]), a.fmt, b.fmt, acc, fmt,
                             None if bias is None else bias.fmt.encode(bias.values.reshape(-1)[cols]),
                             None if bias is None else bias.fmt)
        block = s[rows][:, cols]
        block[u[rows][:, cols]] = fmt.decode(z)[u[rows][:, cols]]
        s[rows.unsqueeze(1), cols.unsqueeze(0)] = block
    return s
