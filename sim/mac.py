"""The bit-exact MAC reference model: ``Z = requant(A @ B + bias)`` (DESIGN.md, the contract).

Products are exact, the sum is exact (modulo the accumulator width) and
order-independent, the bias lands exactly on the accumulator grid, and one
requantization gives the output.  Operands become exact integers on a grid
2**g; their sum is computed with float64 matmuls that are provably exact
(every partial sum an integer below 2**53), splitting wide operands into
S-bit digit planes where one matmul would not be exact.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from . import wide
from .accumulator import Accumulator, FloatAccumulator, as_accumulator
from .errors import FormatError
from .fixed import DynamicFixed, Fixed
from .floating import Float, scale2
from .modes import Overflow, Rounding
from .parse import parse_format
from .rounding import round_increment

EXACT = 53  # float64 holds every integer up to 2**53
MAX_ROUNDING_ACC = 62  # a per-product rounding accumulator lives in int64
MAX_FAST_OUT = 61  # outputs this narrow are requantized in plain int64


def _magnitude_increment(q_odd, negative, round_bit, sticky, mode):
    """Increment of a truncated magnitude (sign-magnitude rounding, as float rounders do)."""
    if mode is Rounding.RDN:
        return negative & (round_bit | sticky)
    if mode is Rounding.RTZ:
        return torch.zeros_like(round_bit)
    return round_increment(q_odd, torch.zeros_like(negative), round_bit, sticky, mode)


def shift_round(p: torch.Tensor, sh, mode: Rounding) -> torch.Tensor:
    """``round(p / 2**sh)`` for int64 ``p`` and a shift ``sh >= 1`` (int or tensor), like a hardware rounder.

    Floor-based: the quotient is the arithmetic shift, the round and sticky
    bits are the two's-complement bits shifted out.
    """
    sh = torch.as_tensor(sh, dtype=torch.int64)
    q = torch.bitwise_right_shift(p, torch.clamp(sh, 0, 63))
    rb = (torch.bitwise_right_shift(p, torch.clamp(sh - 1, 0, 63)) & 1).bool()
    low = torch.bitwise_left_shift(torch.ones_like(sh), torch.clamp(sh - 1, 0, 62)) - 1
    sticky = torch.where(sh - 1 > 62, p != 0, (p & low) != 0) & (sh >= 2)
    return q + round_increment((q & 1).bool(), p < 0, rb, sticky, mode).to(torch.int64)


def shift_left_wrapping(p: torch.Tensor, amount) -> torch.Tensor:
    """``p * 2**amount`` modulo 2**64 (amount >= 0)."""
    amount = torch.as_tensor(amount, dtype=torch.int64)
    factor = torch.bitwise_left_shift(torch.ones_like(amount), torch.clamp(amount, 0, 63))
    return torch.where(amount >= 64, torch.zeros_like(p), p * factor)


# ---- operands as exact integers -------------------------------------------------
@dataclasses.dataclass
class _Operand:
    """An operand matrix as exact integers ``sign * mag * 2**shift`` on the grid 2**g."""

    g: int  # grid exponent: value = integer * 2**g
    codes: torch.Tensor  # fixed: the two's-complement integers; float: unused
    sign: torch.Tensor | None = None  # float: 0/1
    mag: torch.Tensor | None = None  # float: integer mantissa (< 2**53)
    shift: torch.Tensor | None = None  # float: exponent - g (>= 0)
    nan: torch.Tensor | None = None
    inf: torch.Tensor | None = None
    width: int = 64
    signed: bool = True

    @property
    def is_float(self):
        return self.mag is not None

    def max_abs(self) -> int:
        """An upper bound on |integer| (Python int), from the data."""
        if self.is_float:
            if self.mag.numel() == 0:
                return 0
            bits = torch.where(self.mag > 0, self.shift + 53, torch.zeros_like(self.shift))
            return 1 << int(bits.max())
        if self.codes.numel() == 0:
            return 0
        if not self.signed and self.width == 64:
            return 1 << 64
        return max(abs(int(self.codes.min())), abs(int(self.codes.max())))

    def as_float64(self) -> torch.Tensor:
        """Exact float64 integers (caller ensured they are < 2**53... or merely representable)."""
        if self.is_float:
            v = scale2(self.mag.to(torch.float64), self.shift)
            return torch.where(self.sign.bool(), -v, v)
        return self.codes.to(torch.float64)

    def planes(self, S: int) -> dict[int, torch.Tensor]:
        """Digit planes {d: float64 tensor} with integer = sum(plane_d * 2**(d*S)), |plane| < 2**S."""
        mask = (1 << S) - 1
        out = {}
        if not self.is_float:
            c = self.codes
            D = -(-64 // S)
            for d in range(D):
                if d < D - 1:
                    p = (c >> (d * S)) & mask
                elif self.signed or self.width < 64:
                    p = c >> (d * S)
                else:
                    p = (c >> (d * S)) & ((1 << (64 - d * S)) - 1)
                if bool((p != 0).any()):
                    out[d] = p.to(torch.float64)
            return out
        a = torch.div(self.shift, S, rounding_mode="floor")
        b = self.shift - a * S
        # mag * 2**b spans digits a, a+1, ...: peel S bits at a time
        low = torch.bitwise_left_shift(self.mag & torch.bitwise_right_shift(torch.full_like(b, mask), b), b)
        rest = torch.bitwise_right_shift(self.mag, S - b)
        sgn = 1.0 - 2.0 * self.sign.to(torch.float64)
        pieces = [low]
        while bool((rest != 0).any()):
            pieces.append(rest & mask)
            rest = rest >> S
        D = (int(a.max()) if a.numel() else 0) + len(pieces)
        P = torch.zeros((D,) + tuple(self.mag.shape), dtype=torch.float64)
        for j, piece in enumerate(pieces):
            P.scatter_add_(0, (a + j).unsqueeze(0), (piece.to(torch.float64) * sgn).unsqueeze(0))
        nonzero = (P != 0).flatten(1).any(dim=1).tolist()
        out = {d: P[d] for d in range(D) if nonzero[d]}
        return out


def _operand(codes, fmt) -> _Operand:
    codes = torch.as_tensor(codes, dtype=torch.int64)
    if isinstance(fmt, (Fixed, DynamicFixed)):
        return _Operand(g=-fmt.frac, codes=codes, width=fmt.width, signed=fmt.signed)
    if isinstance(fmt, Float):
        sign, m, e = fmt.decompose(codes)
        return _Operand(g=fmt.q0, codes=codes, sign=sign, mag=m, shift=e - fmt.q0,
                        nan=fmt.is_nan(codes), inf=fmt.is_inf(codes))
    raise FormatError(f"bad operand format {fmt}: accepted fixed, ufixed, dfixed or float formats")


def _bounds(fmt):
    """(grid exponent, min integer, max integer) of every finite value of a format."""
    if isinstance(fmt, (Fixed, DynamicFixed)):
        return -fmt.frac, fmt.min_code, fmt.max_code
    if isinstance(fmt, Float):
        top = fmt.max_mantissa << (fmt.emax - fmt.man - fmt.q0)  # max as an integer on 2**q0
        return fmt.q0, -top, top
    raise FormatError(f"bad format {fmt}: accepted fixed, ufixed, dfixed or float formats")


def _signed_width(lo: int, hi: int) -> int:
    w = 2
    while not (-(1 << (w - 1)) <= lo and hi <= (1 << (w - 1)) - 1):
        w += 1
    return w


def _on_grid(x: int, s: int) -> int:
    """x * 2**s as an integer, magnitudes rounded up (a safe bound when s < 0)."""
    if s >= 0:
        return x << s
    m = (abs(x) + (1 << -s) - 1) >> -s
    return m if x >= 0 else -m


def sum_bounds(a_fmt, b_fmt, k_max, bias_fmt=None, acc_frac=None):
    """(frac, lo, hi): the exact grid and the range of k_max products plus a bias on it."""
    ga, alo, ahi = _bounds(parse_format(a_fmt))
    gb, blo, bhi = _bounds(parse_format(b_fmt))
    frac = -(ga + gb) if acc_frac is None else acc_frac
    corners = [alo * blo, alo * bhi, ahi * blo, ahi * bhi]
    plo, phi = (_on_grid(x, ga + gb + frac) for x in (min(corners), max(corners)))
    lo, hi = k_max * min(plo, 0), k_max * max(phi, 0)
    if bias_fmt is not None:
        gz, zlo, zhi = _bounds(parse_format(bias_fmt))
        lo += _on_grid(zlo, gz + frac)
        hi += _on_grid(zhi, gz + frac)
    return frac, lo, hi


def default_accumulator(a_fmt, b_fmt, k_max: int, bias_fmt=None) -> Accumulator:
    """The exact accumulator: the product grid (and the bias's, if finer), never overflowing at k_max."""
    a_fmt, b_fmt = parse_format(a_fmt), parse_format(b_fmt)
    if not isinstance(k_max, int) or k_max < 1:
        raise FormatError(f"bad k_max {k_max!r}: accepted an integer >= 1")
    frac = -(_bounds(a_fmt)[0] + _bounds(b_fmt)[0])
    if bias_fmt is not None:
        bias_fmt = parse_format(bias_fmt)
        frac = max(frac, -_bounds(bias_fmt)[0])
    frac, lo, hi = sum_bounds(a_fmt, b_fmt, k_max, bias_fmt, acc_frac=frac)
    return Accumulator(_signed_width(lo, hi), frac)


# ---- the sum ------------------------------------------------------------
def _digit_size(K: int) -> int:
    return max(8, min(26, (EXACT - max(1, math.ceil(math.log2(max(K, 1)))) ) // 2))


def _exact_sum(A: _Operand, B: _Operand, off: int, S: int) -> torch.Tensor:
    """Canonical limbs of ``sum_k A*B * 2**off`` (off >= 0), exact.

    One float64 matmul when the data's magnitudes keep every partial sum
    below 2**53; otherwise one matmul per pair of non-zero S-bit digit planes.
    """
    R, K = A.codes.shape
    C = B.codes.shape[1]
    if K == 0:
        return _place({0: torch.zeros((R, C), dtype=torch.int64)}, 0, off, S)
    if A.max_abs() * B.max_abs() * K < (1 << EXACT):
        return _place({0: (A.as_float64() @ B.as_float64()).to(torch.int64)}, 0, off, S)
    parts = {}
    for d, x in A.planes(S).items():
        for e, y in B.planes(S).items():
            p = (x @ y).to(torch.int64)  # |p| < 2**53
            parts[d + e] = parts[d + e] + p if d + e in parts else p
    if not parts:
        parts = {0: torch.zeros((R, C), dtype=torch.int64)}
    return _place(parts, S, off, S)


def _place(parts, step, off, S):
    """Canonical limbs of ``sum(parts[n] * 2**(n*step + off))`` for int64 parts, |part| < 2**62."""
    shape = next(iter(parts.values())).shape
    N = (max(parts) * step + off + 64) // S + 3
    L = torch.zeros((N,) + tuple(shape), dtype=torch.int64)
    mask = (1 << S) - 1
    for n, v in parts.items():
        a, b = divmod(n * step + off, S)
        # v * 2**b = low + rest * 2**S with 0 <= low < 2**S; rest keeps the sign
        L[a] += (v & (mask >> b)) << b
        rest = v >> (S - b)
        for i in range(a + 1, N - 1):
            L[i] += rest & mask
            rest = rest >> S
        L[-1] += rest
    return wide.normalize(L, S)


def _rounded_product_sum(A: _Operand, B: _Operand, acc: Accumulator, g_acc: int) -> torch.Tensor:
    """Sum of products each rounded onto a coarser accumulator grid, modulo 2**acc.width (int64)."""
    if acc.width > MAX_ROUNDING_ACC:
        raise FormatError(
            f"bad accumulator {acc}: one coarser than the exact product grid rounds each product and is "
            f"accepted up to {MAX_ROUNDING_ACC} bits; accepted: a narrower one, or the exact grid")
    R, K = A.codes.shape
    C = B.codes.shape[1]
    total = torch.zeros((R, C), dtype=torch.int64)
    fx = Fixed(acc.width, 0, overflow=Overflow.WRAP)

    def parts(op):
        if op.is_float:
            return op.sign, op.mag, op.shift + op.g
        c = op.codes
        return (c < 0).to(torch.int64), c.abs(), torch.full_like(c, op.g)

    sa, ma, ea = parts(A)
    sb, mb, eb = parts(B)
    mmax = lambda t: int(t.max()) if t.numel() else 0  # noqa: E731
    if mmax(ma) * mmax(mb) >= (1 << 62):
        raise FormatError("bad operands for a rounding accumulator: products must stay below 2**62; "
                          "accepted: operand mantissas of at most 31 bits each")
    for k in range(K):
        m = ma[:, k:k + 1] * mb[k:k + 1, :]
        neg = (sa[:, k:k + 1] ^ sb[k:k + 1, :]).bool()
        p = torch.where(neg, -m, m)
        sh = g_acc - (ea[:, k:k + 1] + eb[k:k + 1, :])
        code = torch.where(sh > 0, shift_round(p, sh, acc.round), shift_left_wrapping(p, -sh))
        code, _ = fx.wrap_codes(code)
        total, _ = fx.wrap_codes(total + code)
    return total


# ---- specials -------------------------------------------------------------
def _specials(A: _Operand, B: _Operand, bias_nan, bias_inf, bias_sign):
    """(nan, +inf, -inf) per output element, IEEE rules for the exact sum of products."""
    def has(op):
        return op.is_float and bool((op.nan | op.inf).any())

    if not (has(A) or has(B)) and (bias_nan is None or not bool((bias_nan | bias_inf).any())):
        return None

    def cls(op):
        shape = op.codes.shape
        if op.is_float:
            nan, inf = op.nan, op.inf
            neg = op.sign.bool()
            zero = (op.mag == 0) & ~nan & ~inf
        else:
            nan = inf = torch.zeros(shape, dtype=torch.bool)
            neg = op.codes < 0
            zero = op.codes == 0
        fin = ~nan & ~inf & ~zero
        f = lambda t: t.to(torch.float64)  # noqa: E731
        return dict(nan=f(nan), zero=f(zero), pinf=f(inf & ~neg), ninf=f(inf & neg),
                    pfin=f(fin & ~neg), nfin=f(fin & neg), inf=f(inf))

    a, b = cls(A), cls(B)
    nan = (a["nan"] @ torch.ones_like(b["nan"])) + (torch.ones_like(a["nan"]) @ b["nan"])
    nan = nan + a["inf"] @ b["zero"] + a["zero"] @ b["inf"]
    pos = a["pinf"] @ (b["pinf"] + b["pfin"]) + a["ninf"] @ (b["ninf"] + b["nfin"]) \
        + a["pfin"] @ b["pinf"] + a["nfin"] @ b["ninf"]
    neg = a["pinf"] @ (b["ninf"] + b["nfin"]) + a["ninf"] @ (b["pinf"] + b["pfin"]) \
        + a["pfin"] @ b["ninf"] + a["nfin"] @ b["pinf"]
    nan, pos, neg = nan > 0, pos > 0, neg > 0
    if bias_nan is not None:
        nan = nan | bias_nan
        pos = pos | (bias_inf & ~bias_sign)
        neg = neg | (bias_inf & bias_sign)
    nan = nan | (pos & neg)
    return nan, pos & ~nan, neg & ~nan


# ---- requantization ---------------------------------------------------------
def _requant_fixed_int64(v: torch.Tensor, sh: int, out: Fixed):
    """Requantization of sums known to satisfy |v| < 2**62 (the common case), in int64."""
    if sh > 0:
        q = shift_round(v, sh, out.round)
        big = torch.zeros_like(v, dtype=torch.bool)
    else:
        q = shift_left_wrapping(v, -sh)
        big = (v != 0) & ((-sh >= 62) | (v.abs() >= (1 << max(62 + sh, 0))))
    if out.overflow is Overflow.SAT:
        codes, ovf = out.saturate_codes(q)
        ends = torch.where(v < 0, out.min_code, out.max_code)
        return torch.where(big, ends, codes), ovf | big
    codes, changed = out.wrap_codes(q)
    return codes, changed | big


def _requant_fixed(L, S, sh: int, out: Fixed):
    """Requantization of a wide sum to a fixed-point code of up to 64 bits."""
    W = out.width
    neg = wide.is_negative(L)
    # floor(V / 2**sh) modulo 2**64, as an int64 bit pattern
    q = wide.extract(L, S, sh, 62) | (wide.extract(L, S, sh + 62, 2) << 62)
    if out.signed:
        inside = wide.fits_signed(L, S, sh + W - 1)  # floor in [-2**(W-1), 2**(W-1))
        low_w = q if W == 64 else q & ((1 << W) - 1)
        # the floor is one below the most negative code: rounding up may still land on it
        just_below = neg & ~inside & wide.fits_signed(L, S, sh + W) & (low_w == (1 << (W - 1)) - 1)
    else:
        inside = ~neg & wide.fits_signed(L, S, sh + W)  # floor in [0, 2**W)
        just_below = neg & wide.fits_signed(L, S, sh)  # floor == -1
    rb = wide.extract(L, S, sh - 1, 1).bool()
    sticky = wide.any_below(L, S, sh - 1)
    inc = round_increment((q & 1).bool(), neg, rb, sticky, out.round).to(torch.int64)
    top = out.max_code if out.max_code < 2**63 else -1  # unsigned 64: all ones
    carry_out = inc.bool() & (q == top)  # rounding stepped past the top code
    r = q + inc
    below = (r < out.min_code) if out.signed else torch.zeros_like(inside)
    ok = (inside & ~carry_out & ~below) | (just_below & inc.bool() & ~(r < out.min_code if out.signed else below))
    if out.overflow is Overflow.SAT:
        ends = torch.where(neg, torch.full_like(r, out.min_code), torch.full_like(r, top))
        return torch.where(ok, r, ends), ~ok
    return out.wrap_codes(r)[0], ~ok


def _requant_float(L, S, g_acc: int, out: Float):
    neg = wide.is_negative(L)
    M = torch.where(neg, wide.negate(L, S), L)
    p = wide.msb(M, S)
    E = p + g_acc
    if out.subnormals:
        qexp = torch.clamp(E, min=out.emin) - out.man
    else:
        qexp = torch.where(E < out.emin, torch.full_like(E, out.emin), E - out.man)
    sh = qexp - g_acc
    n = wide.extract(M, S, sh, min(out.man + 2, 62))
    rb = wide.extract(M, S, sh - 1, 1).bool()
    sticky = wide.any_below(M, S, sh - 1)
    inc = _magnitude_increment((n & 1).bool(), neg, rb, sticky, out.round).to(torch.int64)
    v = scale2((n + inc).to(torch.float64), torch.clamp(qexp, max=out.emax))
    v = torch.where(neg, -v, v)
    v = torch.where(p < 0, torch.zeros_like(v), v)  # an exact zero sum is +0: the accumulator has no -0
    z, ovf = out.encode_ovf(v)
    beyond = E > out.emax  # far beyond the range (maybe beyond float64): overflow by the format's rule
    if bool(beyond.any()):
        z = torch.where(beyond, out.encode(out.overflow_value(neg)), z)
        ovf = ovf | beyond
    return z, ovf


def mac_reference(a_codes, b_codes, a_fmt, b_fmt, acc_fmt, out_fmt, bias_codes=None, bias_fmt=None,
                  shift=None, bias_shift=None):
    """``(z_codes, overflow)`` of ``requant(A @ B + bias)`` under the MAC contract.

    ``a_codes`` R×K and ``b_codes`` K×C are int64 codes of ``a_fmt``/``b_fmt``;
    ``acc_fmt`` None means the exact accumulator for this K; ``bias_codes``
    (length C) are codes of ``bias_fmt`` (default ``out_fmt``).  With dynamic
    fixed point operands the accumulator's grid follows their current fracs
    (``fa + fb``), which makes the requantization shift ``fa + fb - fo``.
    ``shift`` (an int) sets that shift directly, as the hardware's runtime
    ``in_shift`` does: the output (and, unless ``bias_shift`` is given, a bias
    in a dynamic format) then sits on the grid ``acc.frac - shift``.
    ``bias_shift`` (an int) is the hardware's runtime ``in_bias_shift``
    ``fa + fb - fbias``: a fixed-point bias code lands on the accumulator as
    ``code * 2**bias_shift``, i.e. the bias sits on its own grid
    ``acc.frac - bias_shift`` (training quantizes it at its own range).
    A bias finer than a dynamic accumulator (``bias_shift < 0``) is added
    exactly, as if the accumulator held its low bits (the hardware keeps them
    as one sticky bit, which rounds the same), when the output is fixed point
    and coarser than the accumulator (shift >= 1); otherwise it is rejected.
    """
    a_fmt, b_fmt, out_fmt = parse_format(a_fmt), parse_format(b_fmt), parse_format(out_fmt)
    a_codes = torch.as_tensor(a_codes, dtype=torch.int64)
    b_codes = torch.as_tensor(b_codes, dtype=torch.int64)
    if a_codes.dim() != 2 or b_codes.dim() != 2 or a_codes.shape[1] != b_codes.shape[0]:
        raise FormatError(f"bad operand shapes {tuple(a_codes.shape)} @ {tuple(b_codes.shape)}: "
                          "accepted R×K @ K×C")
    R, K = a_codes.shape
    C = b_codes.shape[1]
    if bias_codes is not None and bias_fmt is None:
        bias_fmt = out_fmt
    bias_fmt = parse_format(bias_fmt) if bias_fmt is not None else None
    follows_products = False  # a dynamic design's accumulator: on the product grid of the current fracs
    if acc_fmt is None:
        acc = default_accumulator(a_fmt, b_fmt, max(K, 1), bias_fmt)
    else:
        acc = as_accumulator(parse_format(acc_fmt))
        if isinstance(acc, FloatAccumulator):
            return _float_acc_mac(a_codes, b_codes, a_fmt, b_fmt, acc, out_fmt, bias_codes, bias_fmt, shift, bias_shift)
        if isinstance(a_fmt, DynamicFixed) or isinstance(b_fmt, DynamicFixed):
            acc = dataclasses.replace(acc, frac=-(_bounds(a_fmt)[0] + _bounds(b_fmt)[0]))
            follows_products = True
    if isinstance(out_fmt, Accumulator) or not isinstance(out_fmt, (Fixed, DynamicFixed, Float)):
        raise FormatError(f"bad output format {out_fmt}: accepted fixed, ufixed, dfixed or float formats")

    if shift is not None:
        if isinstance(shift, bool) or not isinstance(shift, int):
            raise FormatError(f"bad shift {shift!r}: accepted an integer")
        if not isinstance(out_fmt, (Fixed, DynamicFixed)):
            raise FormatError(f"bad shift for output format {out_fmt}: a shift applies to fixed-point outputs")
        out_fmt = dataclasses.replace(out_fmt, frac=acc.frac - shift)
        if isinstance(bias_fmt, DynamicFixed) and bias_shift is None:
            bias_fmt = bias_fmt.with_frac(acc.frac - shift)
    if bias_shift is not None:
        if isinstance(bias_shift, bool) or not isinstance(bias_shift, int):
            raise FormatError(f"bad bias_shift {bias_shift!r}: accepted an integer")
        if not isinstance(bias_fmt, (Fixed, DynamicFixed)) or isinstance(bias_fmt, Accumulator):
            raise FormatError(f"bad bias_shift for bias format {bias_fmt}: a bias shift applies to fixed-point biases")
        bias_fmt = dataclasses.replace(bias_fmt, frac=acc.frac - bias_shift)
        follows_products = follows_products or acc_fmt is not None
    A, B = _operand(a_codes, a_fmt), _operand(b_codes, b_fmt)
    g_acc = -acc.frac
    g_prod = A.g + B.g
    S = _digit_size(K)

    Z = None
    if bias_codes is not None:
        bias_codes = torch.as_tensor(bias_codes, dtype=torch.int64).reshape(-1)
        if bias_codes.shape[0] != C:
            raise FormatError(f"bad bias length {bias_codes.shape[0]}: accepted one code per column ({C})")
        gz = _bounds(bias_fmt)[0]
        if gz < g_acc and follows_products and isinstance(out_fmt, (Fixed, DynamicFixed)) \
                and acc.frac - out_fmt.frac >= 1:
            # the bias's bits below the product grid only round (a sticky bit): add them exactly
            acc = dataclasses.replace(acc, width=acc.width + g_acc - gz, frac=-gz)
            g_acc = gz
        if gz < g_acc and follows_products:
            raise FormatError(f"bad bias format {bias_fmt}: it is finer than the product grid 2**{g_acc} and "
                              f"the output {out_fmt} is not coarser than the products (shift "
                              f"{acc.frac - getattr(out_fmt, 'frac', acc.frac)} < 1); accepted a bias on a grid "
                              f">= 2**{g_acc}, or a fixed-point output with shift >= 1")
        if gz < g_acc:
            raise FormatError(f"bad bias format {bias_fmt}: it is finer than the accumulator grid "
                              f"2**{g_acc} and cannot be added exactly; accepted a bias on a grid >= 2**{g_acc}")
        Z = _operand(bias_codes.reshape(1, C), bias_fmt)

    fast = _filtered_float(A, B, Z, acc, g_acc, out_fmt) if not follows_products else None
    if fast is not None:
        return _with_specials(A, B, Z, R, C, out_fmt, *fast)
    # The sum as int64 when it provably stays below 2**62 (the common case), else as wide limbs.
    small, L = None, None
    if g_acc <= g_prod:
        off = g_prod - g_acc
        bound = A.max_abs() * B.max_abs() * K
        if bound < (1 << EXACT) and bound << off < (1 << 61):
            small = shift_left_wrapping((A.as_float64() @ B.as_float64()).to(torch.int64), off)
        else:
            L = _exact_sum(A, B, off, S)
    else:
        small = _rounded_product_sum(A, B, acc, g_acc)  # modulo the accumulator width, < 2**61
    if Z is not None:
        zoff = _bounds(bias_fmt)[0] - g_acc
        zmax = Z.max_abs()
        if small is not None and zmax < (1 << EXACT) and zoff < 62 and zmax << zoff < (1 << 61):
            small = small + shift_left_wrapping(Z.as_float64().to(torch.int64), zoff)
        else:
            if L is None:
                L, small = _limbs(small, S), None
            one = _operand(torch.ones((1, 1), dtype=torch.int64), Fixed(2, 0))
            Lb = _exact_sum(one, Z, zoff, S)  # 1 × C on the accumulator grid
            n = max(L.shape[0], Lb.shape[0]) + 2
            L = wide.normalize(_pad(L, n) + _pad(Lb, n).expand(n, R, C), S)
    if small is not None:
        if acc.width <= MAX_ROUNDING_ACC:
            small, _ = Fixed(acc.width, 0, overflow=Overflow.WRAP).wrap_codes(small)
    else:
        L = wide.wrap(L, S, acc.width)

    if isinstance(out_fmt, Float):
        if small is not None and bool((small.abs() <= (1 << EXACT)).all()) and g_acc >= -1022:
            z, ovf = out_fmt.encode_ovf(scale2(small.to(torch.float64), g_acc))
        else:
            if L is None:
                L = _limbs(small, S)
            z, ovf = _requant_float(L, S, g_acc, out_fmt)
    elif small is not None and out_fmt.width <= MAX_FAST_OUT:
        z, ovf = _requant_fixed_int64(small, acc.frac - out_fmt.frac, out_fmt.fixed)
    else:
        if L is None:
            L = _limbs(small, S)
        z, ovf = _requant_fixed(L, S, acc.frac - out_fmt.frac, out_fmt.fixed)

    return _with_specials(A, B, Z, R, C, out_fmt, z, ovf)


def _with_specials(A, B, Z, R, C, out_fmt, z, ovf):
    """The finite sum's codes with NaN and infinities of the operands (and bias) put in by IEEE rules."""
    bias_nan = bias_inf = bias_sign = None
    if Z is not None:
        if Z.is_float:
            bias_nan, bias_inf, bias_sign = Z.nan.expand(R, C), Z.inf.expand(R, C), Z.sign.bool().expand(R, C)
        else:
            bias_nan = bias_inf = bias_sign = torch.zeros((R, C), dtype=torch.bool)
    sp = _specials(A, B, bias_nan, bias_inf, bias_sign)
    if sp is not None:
        nan, pinf, ninf = sp
        special = nan | pinf | ninf
        if bool(special.any()):
            val = torch.where(nan, math.nan, torch.where(pinf, math.inf, -math.inf)).to(torch.float64)
            zs, os_ = out_fmt.encode_ovf(val)
            z = torch.where(special, zs, z)
            ovf = torch.where(special, os_, ovf)
    return z, ovf


def _filtered_float(A: _Operand, B: _Operand, Z, acc: Accumulator, g_acc: int, out: Float):
    """``(z, ovf)`` of float operands onto a float output from one float64 matmul, when provably exact.

    The fixed per-call cost of the wide path dominates small tiles.  Products
    of significands of at most 53 bits together are exact in float64 and the
    computed sum ``s`` is within ``E = gamma * (|bias| + |A| @ |B|)`` of the
    exact one (any order; no float64 underflow or overflow on these grids).
    Rounding is monotonic, so where ``s - E`` and ``s + E`` round alike, with
    the same sign and overflow flag, that is the exact sum's rounding
    (``fewbits.training.fastmac`` uses the same bound).  None (use the exact
    path) unless every element is decided and the accumulator is exact.
    """
    if not (isinstance(out, Float) and A.is_float and B.is_float) or g_acc > A.g + B.g:
        return None
    if acc.overflow is not Overflow.SAT:
        return None
    K = A.codes.shape[1]
    if K == 0 or A.mag.max() >= (1 << 26) or B.mag.max() >= (1 << 26):
        return None  # products wider than 53 bits (fp64 operands): not exact in float64
    if A.g + B.g < -1000 or int(A.shift.max()) + int(B.shift.max()) + A.g + B.g + 54 + K.bit_length() > 1000:
        return None
    av, bv = _value64(A), _value64(B)
    if Z is None:
        s, t = av @ bv, av.abs() @ bv.abs()
    else:
        if not Z.is_float and Z.max_abs() >= (1 << EXACT):
            return None
        zv = _value64(Z)
        s, t = torch.addmm(zv, av, bv), torch.addmm(zv.abs(), av.abs(), bv.abs())
    gamma = (K + 3) * 2.0 ** -52
    if Z is not None and out.man <= 50:
        tp = av.abs() @ bv.abs()
        if bool((tp * (1.0 + gamma) < math.ldexp(1.0, 53 + A.g + B.g)).all()):
            # the products' sum is exact; one float64 add of the bias, made round-to-odd from its exact error
            # (TwoSum), rounds correctly onto any format of at most 51 significant bits
            v, o = out._round(_round_to_odd_sum(av @ bv, zv.expand_as(tp)) + 0.0)
            return out._pack(v), o
    g = A.g + B.g if Z is None else min(A.g + B.g, Z.g)
    # every partial sum a multiple of 2**g below 2**(53 + g): s is exact (s + 0.0: an exact zero is +0)
    exact = t * (1.0 + gamma) < math.ldexp(1.0, 53 + g)
    if bool(exact.all()):
        v, o = out._round(s + 0.0)
        return out._pack(v), o
    e = t * gamma + s.abs() * 2.0 ** -50
    lo, olo = out._round(torch.where(exact, s + 0.0, s - e))
    hi, ohi = out._round(torch.where(exact, s + 0.0, s + e))
    ok = (lo == hi) & (olo == ohi) & (torch.signbit(lo) == torch.signbit(hi)) & torch.isfinite(s) & torch.isfinite(e)
    if not bool(ok.all()):
        return None
    return out._pack(lo), olo


def _round_to_odd_sum(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x + y`` rounded to odd in float64 (exact sums stay exact; an inexact one gets an odd last bit)."""
    h = x + y
    yy = h - x
    err = (x - (h - yy)) + (y - yy)  # TwoSum: h + err == x + y exactly
    m, _ = torch.frexp(h)
    even = (torch.ldexp(m, torch.tensor(53)).to(torch.int64) & 1) == 0
    toward = torch.where(err > 0, math.inf, -math.inf)
    return torch.where((err != 0) & even, torch.nextafter(h, toward.to(h.dtype)), h)


def _value64(op: _Operand) -> torch.Tensor:
    """The operand's finite values in float64 (exact; NaN and infinities as 0, the specials come after)."""
    return scale2(op.as_float64(), op.g)


def _limbs(v: torch.Tensor, S: int) -> torch.Tensor:
    """Canonical limbs of an int64 sum (enough of them for any int64)."""
    return wide.from_int64(v, S, -(-63 // S) + 2)


def _pad(L, n):
    """The same value on n limbs (zeros above; not canonical until normalized)."""
    if L.shape[0] == n:
        return L
    return torch.cat([L, torch.zeros((n - L.shape[0],) + tuple(L.shape[1:]), dtype=L.dtype)])


# ---- the float accumulator ------------------------------------------------------
def _float_acc_mac(a_codes, b_codes, a_fmt, b_fmt, acc: FloatAccumulator, out_fmt, bias_codes, bias_fmt,
                   shift, bias_shift):
    """``mac_reference`` with a float accumulator: a running sum rounded once per chunk, ascending k.

    Vectorized over the R×C outputs; each chunk's products and the running sum
    are added exactly as wide limbs on one grid fine enough for all of them,
    then rounded to the accumulator format by the same rounder as the output
    (``_requant_float``), so one rounding per chunk and never two.
    """
    if shift is not None or bias_shift is not None or any(
            isinstance(f, DynamicFixed) for f in (a_fmt, b_fmt, out_fmt, bias_fmt)):
        raise FormatError(f"bad accumulator {acc} for dynamic fixed point: a float accumulator takes no runtime "
                          "shift; accepted fixed or float operands, bias and output")
    if not isinstance(out_fmt, (Fixed, Float)):
        raise FormatError(f"bad output format {out_fmt}: accepted fixed, ufixed, dfixed or float formats")
    R, K = a_codes.shape
    C = b_codes.shape[1]
    fmt = acc.fmt
    A, B = _operand(a_codes, a_fmt), _operand(b_codes, b_fmt)
    g = min(A.g + B.g, fmt.q0)
    Z = None
    if bias_codes is not None:
        bias_codes = torch.as_tensor(bias_codes, dtype=torch.int64).reshape(-1)
        if bias_codes.shape[0] != C:
            raise FormatError(f"bad bias length {bias_codes.shape[0]}: accepted one code per column ({C})")
        Z = _operand(bias_codes.reshape(1, C), bias_fmt)
        g = min(g, Z.g)
    S = _digit_size(acc.chunk + 1)
    s = _facc_bias(Z, fmt, g, S, R, C)
    for k0 in range(0, K, acc.chunk):
        k1 = min(K, k0 + acc.chunk)
        s = _facc_step(s, _columns(A, k0, k1), _rows(B, k0, k1), fmt, g, S)
    value = fmt.decode(s)
    z, ovf = out_fmt.encode_ovf(value)
    return z, ovf | ~torch.isfinite(value)


def _facc_bias(Z, fmt: Float, g: int, S: int, R: int, C: int) -> torch.Tensor:
    """The running sum's start: the bias rounded once to the accumulator (codes, R×C); +0 without one."""
    if Z is None:
        return fmt.encode(torch.zeros((R, C), dtype=torch.float64))
    one = _operand(torch.ones((1, 1), dtype=torch.int64), Fixed(2, 0))
    codes, _ = _requant_float(_exact_sum(one, Z, Z.g - g, S), S, g, fmt)
    if Z.is_float:
        special = Z.nan | Z.inf
        if bool(special.any()):
            val = torch.where(Z.nan, math.nan, torch.where(Z.sign.bool(), -math.inf, math.inf))
            codes = torch.where(special, fmt.encode(val.to(torch.float64)), codes)
    return codes.expand(R, C).clone()


def _facc_step(s: torch.Tensor, A: _Operand, B: _Operand, fmt: Float, g: int, S: int) -> torch.Tensor:
    """``round_fmt(s + exact sum of A @ B)`` for the accumulator codes ``s``; specials by ``fmt``'s rules."""
    L = _exact_sum(A, B, A.g + B.g - g, S)
    sign, m, e = fmt.decompose(s)  # specials decompose to 0: their finite part
    run = _Operand(g=g, codes=s, sign=sign, mag=m, shift=e - g)
    digits = run.planes(S)
    n = max(L.shape[0], max(digits, default=0) + 1) + 2
    L = _pad(L, n).clone()
    for d, plane in digits.items():
        L[d] += plane.to(torch.int64)
    codes, _ = _requant_float(wide.normalize(L, S), S, g, fmt)
    sp = _specials(A, B, None, None, None)
    current = fmt.decode(s)
    special = ~torch.isfinite(current)
    if sp is not None:
        nan, pinf, ninf = sp
        special = special | nan | pinf | ninf
    if bool(special.any()):
        chunk = torch.zeros_like(current)
        if sp is not None:
            chunk = torch.where(nan, math.nan, torch.where(pinf, math.inf, torch.where(ninf, -math.inf, 0.0)))
        # IEEE arithmetic on the specials (inf - inf = NaN, NaN wins), then the format's own rule for them
        codes = torch.where(special, fmt.encode(current + chunk.to(torch.float64)), codes)
    return codes


def _columns(op: _Operand, k0: int, k1: int) -> _Operand:
    return _slice(op, (slice(None), slice(k0, k1)))


def _rows(op: _Operand, k0: int, k1: int) -> _Operand:
    return _slice(op, (slice(k0, k1), slice(None)))


def _slice(op: _Operand, idx) -> _Operand:
    """The same operand restricted to some k (every per-element field sliced alike)."""
    cut = lambda t: None if t is None else t[idx]  # noqa: E731
    return dataclasses.replace(op, codes=op.codes[idx], sign=cut(op.sign), mag=cut(op.mag), shift=cut(op.shift),
                               nan=cut(op.nan), inf=cut(op.inf))
