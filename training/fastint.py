"""Exact fixed-point matmuls as int8 matrix products of split codes (``torch._int_mm``).

The MAC contract's exact accumulator sums integer code products; a float64 matmul does
it exactly below 2**53 (``fastmac.exact_fixed_sum``) but at float64's speed.  Here the
codes are cut into base-128 digits that fit int8 and multiplied by int8 matrix products
accumulated in int32 (oneDNN's VNNI/AMX kernels on CPUs that have them):

* a code ``c`` with ``|c| <= M`` is ``sum_p d_p * 128**p``: ``r_0 = c``,
  ``d_p = r_p - 128 * rint(r_p / 128)``, ``r_{p+1} = rint(r_p / 128)``, the last digit
  ``r_{P-1}`` itself; every digit but the last has ``|d_p| <= 64``, the last
  ``|r_{P-1}| <= M / 128**(P-1) + 1/2`` (``_tops``), so all fit int8 once that is <= 127;
* ``A @ B = sum_{p,q} (A_p @ B_q) * 128**(p+q)``.  Each ``A_p @ B_q`` is a sum of ``K``
  integer products bounded by ``top_p * top_q``: if ``K * top_p * top_q < 2**31`` no
  partial sum in any order leaves int32, so the int32 result is exact whatever the
  kernel's blocking;
* the terms are recombined in float64: every partial sum of the recombination is an
  integer bounded by ``K * (sum_p top_p 128**p) * (sum_q top_q 128**q)``, exact below 2**53
  (``plan`` checks this bound, slightly above ``exact_fixed_sum``'s ``K * M_a * M_b``).

``plan`` decides from the formats alone (no pass over the data); the caller scales the
integer sums by ``2**-(frac_a + frac_b)`` (a power of two: exact) and adds the bias as the
float64 path does.  tests/training/test_fastint.py checks the sums against ``mac_reference``
on codes at the ends of their ranges.
"""

from __future__ import annotations

import functools

import torch

from .fastmac import max_code
from .fastq import _njit

BASE = 128
INT32_BOUND = 1 << 31
#: the int8 products cost about their outputs (~3 ns per element and digit pair: the int32 write
#: and its recombination), a float64 matmul about K * 0.11 ns per output (both measured here,
#: one thread, /tmp bench of 784 x 100 x 1200 and 100 x 784 x 1200): below this many terms per
#: digit pair the float64 matmul is faster (a weight gradient over a batch of 100 stays float64)
MIN_K_PER_PRODUCT = 32
FLOAT64_EXACT = 1 << 53


def _tops(m: int) -> list[int]:
    """Largest |digit| of each base-128 digit of codes up to ``m`` (lowest first), or [] if more than 3."""
    tops = []
    r = m
    while r > 127:
        tops.append(BASE // 2)
        r = (r + BASE // 2) // BASE  # |rint(c / 128)| <= floor(|c| / 128 + 1/2)
    tops.append(r)
    return tops if len(tops) <= 3 else []


@functools.cache
def available() -> bool:
    """``torch._int_mm`` on this CPU (int8 x int8 -> int32)."""
    try:
        a = torch.ones(2, 8, dtype=torch.int8)
        return bool(torch._int_mm(a, a.t().contiguous()).sum() == 32)
    except (RuntimeError, AttributeError):
        return False


def plan(k: int, a_fmt, b_fmt, bias_fmt=None):
    """``(tops_a, tops_b)``: the digits of both operands when the int8 products are exact and so is
    their float64 recombination with the bias (``fastmac.exact_fixed_sum``'s bound with the digit
    sums in place of the largest codes), else None."""
    fmts = (a_fmt, b_fmt) if bias_fmt is None else (a_fmt, b_fmt, bias_fmt)
    if any(f is None or f.kind not in ("fixed", "dfixed") for f in fmts):
        return None
    ta, tb = _tops(max_code(a_fmt)), _tops(max_code(b_fmt))
    if not 0 < len(ta) <= 3 or not 0 < len(tb) <= 3 or k * max(ta) * max(tb) >= INT32_BOUND:
        return None
    sa = sum(t * BASE ** p for p, t in enumerate(ta))
    sb = sum(t * BASE ** p for p, t in enumerate(tb))
    g_prod = -(a_fmt.frac + b_fmt.frac)
    g = g_prod if bias_fmt is None else min(g_prod, -bias_fmt.frac)
    bound = (k * sa * sb) << (g_prod - g)
    if bias_fmt is not None:
        bound += max_code(bias_fmt) << (-bias_fmt.frac - g)
    if bound >= FLOAT64_EXACT:
        return None
    return ta, tb


_kernels: dict = {}


def _split_kernel(n: int):
    """The loop of ``digits`` for ``n`` digits (1 to 3), unrolled so that it vectorizes."""
    key = ("split", n)
    if key not in _kernels:
        import numpy as np

        @_njit()
        def split(x, scale, out):  # pragma: no cover - compiled
            d0, d1, d2 = out[0], out[min(1, n - 1)], out[n - 1]
            for i in range(x.size):
                r = x[i] * scale  # the code: an integer (the values are on the grid)
                if n == 1:
                    d0[i] = np.int8(r)
                else:
                    q = np.rint(r * (1.0 / 128.0))
                    d0[i] = np.int8(r - q * 128.0)
                    if n == 2:
                        d1[i] = np.int8(q)
                    else:
                        q2 = np.rint(q * (1.0 / 128.0))
                        d1[i] = np.int8(q - q2 * 128.0)
                        d2[i] = np.int8(q2)

        _kernels[key] = split
    return _kernels[key]


def digits(values: torch.Tensor, fmt, n: int) -> torch.Tensor:
    """The ``n`` base-128 digits (int8, lowest first, stacked on a new first dimension) of the codes
    of ``values`` (float64 on ``fmt``'s grid), in ``values``' own layout: a transposed contiguous
    matrix gives transposed digit matrices (no copy of the values)."""
    src = values
    transposed = values.dim() == 2 and not values.is_contiguous() and values.t().is_contiguous()
    if transposed:
        src = values.t()
    src = src.contiguous()
    out = torch.empty((n, *src.shape), dtype=torch.int8)
    _split_kernel(n)(src.view(-1).numpy(), 2.0 ** fmt.frac, out.view(n, -1).numpy())
    return out.transpose(1, 2) if transposed else out


def _combine_kernel():
    if "combine" not in _kernels:

        @_njit()
        def combine(prods, weights, scale, bias, out):  # pragma: no cover - compiled
            # prods: T x (R*C) int32, out: R x C; the sum over t unrolled for T <= 4 (vectorizes)
            T = prods.shape[0]
            R, C = out.shape
            p0, p1, p2, p3 = prods[0], prods[min(1, T - 1)], prods[min(2, T - 1)], prods[min(3, T - 1)]
            w0, w1, w2, w3 = weights[0], weights[min(1, T - 1)], weights[min(2, T - 1)], weights[min(3, T - 1)]
            for i in range(R):
                o = out[i]
                base = i * C
                for j in range(C):
                    k = base + j
                    s = p0[k] * w0  # integers below 2**53: exact in any order
                    if T > 1:
                        s += p1[k] * w1
                    if T > 2:
                        s += p2[k] * w2
                    if T > 3:
                        s += p3[k] * w3
                    o[j] = s * scale + bias[j]  # a power of two, then the bias: exact (``plan``)
            for t in range(4, T):  # more than 4 products (3-digit codes): further passes
                pt, wt = prods[t], weights[t]
                for i in range(R):
                    for j in range(C):
                        out[i, j] += pt[i * C + j] * wt * scale
        _kernels["combine"] = combine
    return _kernels["combine"]


def _blas_layout(m: torch.Tensor) -> torch.Tensor:
    """``m`` itself if row- or column-major with both sides above 1, else a row-major copy
    (``torch._int_mm`` 2.13 misreads e.g. a 4 x 1 matrix of strides (1, 4): tests/training/test_fastint.py)."""
    r, c = m.shape
    if r > 1 and c > 1 and m.stride() in ((c, 1), (1, r)):
        return m
    return m.contiguous() if r > 1 and c > 1 else m.clone(memory_format=torch.contiguous_format)


def exact_matmul(a_digits: torch.Tensor, b_digits: torch.Tensor, scale: float, bias: torch.Tensor | None):
    """``scale * sum_{p,q} (A_p @ B_q) 128**(p+q) + bias`` (float64, M x N), exact when ``plan`` holds
    and ``scale`` is the power of two of the product grid."""
    import numpy as np

    P, Q = a_digits.shape[0], b_digits.shape[0]
    M, N = a_digits.shape[1], b_digits.shape[2]
    prods = torch.empty((P * Q, M, N), dtype=torch.int32)
    weights = np.empty(P * Q)
    for p in range(P):
        for q in range(Q):
            torch._int_mm(_blas_layout(a_digits[p]), _blas_layout(b_digits[q]), out=prods[p * Q + q])
            weights[p * Q + q] = float(BASE ** (p + q))
    out = torch.empty((M, N), dtype=torch.float64)
    b = torch.zeros(N, dtype=torch.float64) if bias is None else bias.reshape(-1).to(torch.float64).contiguous()
    _combine_kernel()(prods.view(P * Q, -1).numpy(), weights, float(scale), b.numpy(), out.numpy())
    return out


def _digits_of(q, n: int) -> torch.Tensor:
    if q.digits is None or q.digits.shape[0] != n:
        q.digits = digits(q.values, q.fmt, n)
    return q.digits


def exact_product(a, b, bias, col_major: bool = False, min_k: int = MIN_K_PER_PRODUCT) -> torch.Tensor | None:
    """``a @ b + bias`` of fixed-point ``QT``s (float64, exact) through int8 products, or None when
    ``plan`` (or ``torch._int_mm``) does not apply.  The digits are cached on the ``QT``s (a layer's
    quantized weights serve its forward and input-gradient products).  ``col_major`` (no bias): the
    result column-major, computed as ``(b.T @ a.T).T``.  ``min_k``: fewer terms per digit pair go to
    the float64 matmul instead (``MIN_K_PER_PRODUCT``)."""
    if a.values.dim() != 2 or b.values.dim() != 2:
        return None
    k = a.values.shape[1]
    p = plan(k, a.fmt, b.fmt, None if bias is None else bias.fmt)
    if p is None or k < min_k * len(p[0]) * len(p[1]) or not available():
        return None
    scale = 2.0 ** -(a.fmt.frac + b.fmt.frac)
    da, db = _digits_of(a, len(p[0])), _digits_of(b, len(p[1]))
    if col_major and bias is None:
        return exact_matmul(db.transpose(1, 2), da.transpose(1, 2), scale, None).t()
    return exact_matmul(da, db, scale, None if bias is None else bias.values)
