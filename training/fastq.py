"""Saturating fixed-point quantization of float64 tensors in a few in-place passes.

Training quantizes millions of values per batch (weights, weight gradients,
momentum, stored parameters).  ``fmt.encode_ovf`` followed by ``fmt.decode``
goes through int64 codes and boolean flag tensors; here the codes stay
integer-valued float64 (exact below 2**53) and only the counts the range
controller needs leave the function.  ``quantize_fixed(x, fmt).values`` equals
``fmt.decode(fmt.encode(x))`` (up to the sign of zero), and its counts equal
what ``RangeController.observe`` derives from ``fmt.encode_ovf(x)``
(tests/training/test_fastq.py checks both against ``fewbits.sim``).
"""

from __future__ import annotations

import dataclasses
import functools
import os

import torch

#: codes of these widths are exact float64 integers, and any |y| >= 2**51 saturates
MAX_WIDTH = 52


@dataclasses.dataclass
class Quantized:
    values: torch.Tensor  #: float64, on the format's grid
    n: int  #: number of elements
    overflow: int  #: elements that saturated
    narrower: int  #: elements that would saturate with one integer bit fewer (incl. ``overflow``)
    max_abs: float  #: largest magnitude after saturation
    mask: torch.Tensor | None = None  #: per-element overflow flags (only when asked for)


def supports(fmt) -> bool:
    """Whether ``quantize_fixed`` handles ``fmt`` (the caller falls back to ``encode_ovf`` otherwise)."""
    from fewbits.sim import Overflow, Rounding

    if fmt is None or fmt.kind not in ("fixed", "dfixed"):
        return False
    if fmt.overflow is not Overflow.SAT or fmt.width > MAX_WIDTH:
        return False
    # RDN of a value that underflows x * 2**frac to -0 must still floor to -1: left to encode_ovf
    return fmt.round is not Rounding.RDN or fmt.frac >= 0


_kernels: dict = {}


@functools.cache
def _numba():
    """numba, its cache folder under fewbits' cache root (``fewbits.files.cache_root``).

    Set once, here, where kernels are compiled, on numba's own config: nothing is written to
    ``os.environ`` (a child process would inherit it), and an explicit ``NUMBA_CACHE_DIR`` wins."""
    import numba

    from fewbits.files import cache_root

    if not os.environ.get("NUMBA_CACHE_DIR"):
        numba.config.CACHE_DIR = str(cache_root() / "numba")
    return numba


def _njit(**kw):
    # one thread: torch's own OpenMP workers would fight a second thread pool for the cores
    return _numba().njit(nogil=True, error_model="numpy", **kw)


def _rounder(mode: str):
    """``round(y)`` to an integer-valued float, exactly, in one rounding mode (inlined)."""
    import numpy as np

    if mode == "rne":
        return _njit(inline="always")(lambda y: np.rint(y))
    if mode == "rna":
        # ties away from zero as floor((floor(2|y|) + 1) / 2): every step exact, unlike |y| + 0.5
        return _njit(inline="always")(lambda y: np.copysign(np.floor((np.floor(np.abs(y) * 2.0) + 1.0) * 0.5), y))
    if mode == "rtz":
        return _njit(inline="always")(lambda y: np.trunc(y))
    if mode == "rdn":
        return _njit(inline="always")(lambda y: np.floor(y))
    raise TypeError(f"not a rounding mode: {mode!r}")


def _element(mode: str):
    """One element onto a grid: ``(value, overflowed, overflows one integer bit narrower)``.

    ``x * 2**frac`` is exact (an underflow only loses magnitudes far below one
    half, which round to zero anyway).  NaN gives code 0, flagged, as in
    ``Fixed.encode_ovf``.  Selects, not branches: the loops stay vectorized.
    """
    rnd = _rounder(mode)

    @_njit(inline="always")
    def element(x, scale, inv, lo, hi):  # pragma: no cover - compiled
        r = rnd(x * scale)
        nan = r != r
        o = (r > hi) | (r < lo) | nan
        n = o | (r > hi * 0.5) | (r < lo * 0.5)  # 2r leaves the range at one more fraction bit
        c = r if r < hi else hi
        c = c if c > lo else lo
        c = 0.0 if nan else c
        return c * inv, o, n

    return element


def _kernel(mode: str):
    """``quantize_fixed``'s loop for one rounding mode, compiled on first use (numba)."""
    key = ("quantize", mode)
    if key not in _kernels:
        element = _element(mode)

        @_njit()
        def quantize(x, out, scale, inv, lo, hi):  # pragma: no cover - compiled
            ovf = 0
            narrower = 0
            for i in range(x.size):
                v, o, n = element(x[i], scale, inv, lo, hi)
                out[i] = v
                ovf += o
                narrower += n
            return ovf, narrower

        _kernels[key] = quantize
    return _kernels[key]


def grid(fmt):
    """The scalars a kernel needs for one grid: 2**frac, 2**-frac, min and max code."""
    return 2.0 ** fmt.frac, 2.0 ** -fmt.frac, float(fmt.min_code), float(fmt.max_code)


def momentum_step_kernel(prop_mode: str, update_mode: str, unit_rows: bool = False, norms: bool = True):
    """The parameter update in one pass over a K x N parameter (update.py states the rule).

    Per element: ``u = Q_prop(m * u - lr * g)``, ``w = Q_update(w + u)``, both
    in place, counting overflows, and per column of ``w`` its sum of squares
    (for the max-column-norm constraint) and its narrower-overflow count.
    ``unit_rows``: the arrays are N x K instead (a row per output unit, ``nn.Linear``'s
    layout); each unit's sum of squares still adds its K squares in ascending k, from 0.
    ``norms=False`` leaves ``sumsq`` alone (no max-norm constraint): the loop vectorizes.
    """
    key = ("step", prop_mode, update_mode, unit_rows, norms)
    if key not in _kernels:
        qp, qu = _element(prop_mode), _element(update_mode)

        @_njit()
        def step(w, u, g, m, lr, ps, pi, plo, phi, us, ui, ulo, uhi, sumsq, col_narrower):  # pragma: no cover
            R, C = w.shape
            po = pn = wo = 0
            for i in range(R):
                ss = 0.0  # a unit's sum of squares (unit_rows), in ascending k
                cn = 0
                ur, gr = u[i], g[i]
                # two loops over the row (momentum, then weights): each vectorizes, one fused loop
                # did not (7x slower here); the same operations per element
                for j in range(C):
                    uv, o, n = qp(m * ur[j] - lr * gr[j], ps, pi, plo, phi)
                    ur[j] = uv
                    po += o
                    pn += n
                wr = w[i]
                for j in range(C):
                    wv, o, n = qu(wr[j] + ur[j], us, ui, ulo, uhi)
                    wr[j] = wv
                    wo += o
                    if unit_rows:
                        cn += n
                    else:
                        col_narrower[j] += n
                if norms:  # a third loop: the ordered float sum does not vectorize, the loops above do
                    for j in range(C):
                        if unit_rows:
                            ss += wr[j] * wr[j]
                        else:
                            sumsq[j] += wr[j] * wr[j]
                if unit_rows:
                    col_narrower[i] = cn
                    if norms:
                        sumsq[i] = ss
            return po, pn, wo

        _kernels[key] = step
    return _kernels[key]


def column_scale_kernel(mode: str, unit_rows: bool = False):
    """``w[:, j] = Q(w[:, j] * factor[j])`` in place for the columns with ``active[j]``
    (``unit_rows``: ``w[j, :]``, an N x K array)."""
    key = ("scale", mode, unit_rows)
    if key not in _kernels:
        q = _element(mode)

        @_njit()
        def scale(w, factor, active, s, inv, lo, hi):  # pragma: no cover - compiled
            R, C = w.shape
            ovf = narrower = 0
            for i in range(R):
                for j in range(C):
                    jj = i if unit_rows else j
                    if active[jj]:
                        v, o, n = q(w[i, j] * factor[jj], s, inv, lo, hi)
                        w[i, j] = v
                        ovf += o
                        narrower += n
            return ovf, narrower

        _kernels[key] = scale
    return _kernels[key]


def requantize_in_place(x: torch.Tensor, fmt) -> tuple[int, int]:
    """Round and saturate a contiguous float64 tensor onto ``fmt`` in place: (overflow, narrower)."""
    a = x.view(-1).numpy()
    return _kernel(fmt.round.value)(a, a, *grid(fmt))


def quantize_fixed(x: torch.Tensor, fmt, want_mask: bool = False, want_max: bool = False) -> Quantized:
    """``x`` rounded and saturated onto ``fmt``'s grid (NaN -> 0, flagged, as ``encode_ovf`` does).

    ``want_mask`` adds the per-element overflow flags, ``want_max`` the largest magnitude
    (the range controller tracks it only in its first epoch); both cost extra passes.
    """
    x = x.detach()
    if x.dtype != torch.float64:
        x = x.to(torch.float64)
    x = x.contiguous()
    out = torch.empty_like(x)
    ovf, narrower = _kernel(fmt.round.value)(x.view(-1).numpy(), out.view(-1).numpy(), *grid(fmt))
    mask = fmt.encode_ovf(x)[1] if want_mask else None  # hooks (captures, tests): sim's own flags
    top = float(out.abs().max()) if want_max and out.numel() else 0.0
    return Quantized(out, x.numel(), int(ovf), int(narrower), top, mask)
