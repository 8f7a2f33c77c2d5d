"""Exact, slow, test-only models of the fewbits.sim arithmetic.

Written from DESIGN.md / docs/SIM_API.md and IEEE-754 with Python ints and
``fractions.Fraction`` only -- no numpy, no torch, nothing from fewbits.sim --
so that the tests compare the vectorized implementation against an
independent second reading of the contract.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

MODES = ("rne", "rna", "rtz", "rdn")
HALF = Fraction(1, 2)


def pow2(e: int) -> Fraction:
    """2**e as an exact Fraction for any integer e."""
    return Fraction(1 << e) if e >= 0 else Fraction(1, 1 << -e)


def round_int(q: Fraction, mode: str) -> int:
    """Round a rational to an integer with one of the four rounding modes."""
    q = Fraction(q)
    fl = q.numerator // q.denominator  # floor
    rem = q - fl
    if rem == 0:
        return fl
    if mode == "rdn":
        return fl
    if mode == "rtz":
        return fl if q > 0 else fl + 1
    if rem > HALF:
        return fl + 1
    if rem < HALF:
        return fl
    if mode == "rna":  # tie: away from zero
        return fl + 1 if q > 0 else fl
    if mode == "rne":  # tie: to even
        return fl if fl % 2 == 0 else fl + 1
    raise ValueError(mode)


def wrap_signed(c: int, width: int) -> int:
    """Two's-complement wrap of an integer into `width` bits."""
    m = 1 << width
    return ((c + (m >> 1)) % m) - (m >> 1)


def to_int64(pattern: int) -> int:
    """A 64-bit unsigned bit pattern as the int64 that holds the same bits."""
    pattern &= (1 << 64) - 1
    return pattern - (1 << 64) if pattern >= 1 << 63 else pattern


def floor_log2(a: Fraction) -> int:
    """floor(log2(a)) for a positive rational, exactly."""
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if pow2(e) > a:
        e -= 1
    elif pow2(e + 1) <= a:
        e += 1
    return e


def as_fraction(x) -> Fraction:
    return x if isinstance(x, Fraction) else Fraction(x)


def is_special(x) -> bool:
    """True for float NaN/inf (the only non-Fraction values the models pass around)."""
    return isinstance(x, float) and not math.isfinite(x)


def to_float(v) -> float:
    """Fraction or float -> Python float (exact when representable; -0.0 kept)."""
    return v if isinstance(v, float) else float(v)


# --------------------------------------------------------------------------- fixed point
@dataclass(frozen=True)
class FixedModel:
    """Fixed(width, frac, signed, round, overflow, symmetric): code * 2**-frac."""

    width: int
    frac: int
    signed: bool = True
    round: str = "rne"
    overflow: str = "sat"
    symmetric: bool = False

    @property
    def min_code(self) -> int:
        if not self.signed:
            return 0
        return -(1 << (self.width - 1)) + (1 if self.symmetric else 0)

    @property
    def max_code(self) -> int:
        return (1 << self.width) - 1 if not self.signed else (1 << (self.width - 1)) - 1

    @property
    def ulp(self) -> Fraction:
        return pow2(-self.frac)

    def value(self, code: int) -> Fraction:
        return code * self.ulp

    def codes(self):
        return range(self.min_code, self.max_code + 1)

    def wrap(self, c: int) -> int:
        if self.signed:
            return wrap_signed(c, self.width)
        return c % (1 << self.width)

    def limit(self, c: int, overflow: str | None = None):
        """Apply the overflow rule to an integer code -> (code, overflowed)."""
        if self.min_code <= c <= self.max_code:
            return c, False
        if (overflow or self.overflow) == "wrap":
            return self.wrap(c), True
        return (self.max_code if c > self.max_code else self.min_code), True

    def encode(self, x, mode: str | None = None):
        """Real number (float or Fraction) -> (code, overflowed)."""
        if isinstance(x, float) and math.isnan(x):
            return 0, True
        if isinstance(x, float) and math.isinf(x):
            return (self.max_code if x > 0 else self.min_code), True
        c = round_int(as_fraction(x) / self.ulp, mode or self.round)
        return self.limit(c)

    def quantize(self, x) -> Fraction:
        return self.value(self.encode(x)[0])

    def pattern(self, code: int) -> int:
        """The int64 that sim.encode returns for this code (bit pattern for ufixed:64)."""
        return to_int64(code) if self.width == 64 and not self.signed else code


# --------------------------------------------------------------------------- floating point
@dataclass(frozen=True)
class FloatModel:
    """Float(exp, man, bias, subnormals, special, round) with IEEE / FN / SAT specials."""

    exp: int
    man: int
    bias: int | None = None
    subnormals: bool = True
    special: str = "ieee"
    round: str = "rne"

    @property
    def b(self) -> int:
        return (1 << (self.exp - 1)) - 1 if self.bias is None else self.bias

    @property
    def width(self) -> int:
        return 1 + self.exp + self.man

    @property
    def top_field(self) -> int:
        return (1 << self.exp) - 1

    @property
    def emin(self) -> int:
        return 1 - self.b

    @property
    def max_field(self) -> int:
        return self.top_field - 1 if self.special == "ieee" else self.top_field

    @property
    def max_mant(self) -> int:
        full = (1 << self.man) - 1
        return full - 1 if self.special == "fn" else full

    @property
    def emax(self) -> int:
        return self.max_field - self.b

    @property
    def max(self) -> Fraction:
        return ((1 << self.man) + self.max_mant) * pow2(self.emax - self.man)

    @property
    def min_normal(self) -> Fraction:
        return pow2(self.emin)

    @property
    def min_subnormal(self) -> Fraction:
        return pow2(self.emin - self.man)

    @property
    def q0(self) -> int:
        """Exponent of the finest grid step (the least subnormal)."""
        return self.emin - self.man

    @property
    def nan_pattern(self) -> int | None:
        top = self.top_field << self.man
        if self.special == "ieee":
            return top | (1 << (self.man - 1))
        if self.special == "fn":
            return top | ((1 << self.man) - 1)
        return None

    def inf_pattern(self, negative: bool) -> int:
        return (int(negative) << (self.exp + self.man)) | (self.top_field << self.man)

    # --- decoding
    def fields(self, code: int):
        code &= (1 << self.width) - 1
        return code >> (self.exp + self.man), (code >> self.man) & self.top_field, code & ((1 << self.man) - 1)

    def is_nan(self, code: int) -> bool:
        s, f, m = self.fields(code)
        if self.special == "ieee":
            return f == self.top_field and m != 0
        if self.special == "fn":
            return f == self.top_field and m == (1 << self.man) - 1
        return False

    def is_inf(self, code: int) -> bool:
        s, f, m = self.fields(code)
        return self.special == "ieee" and f == self.top_field and m == 0

    def canonical(self, code: int) -> bool:
        """False only for subnormal bit patterns of a format without subnormals."""
        s, f, m = self.fields(code)
        return self.subnormals or f != 0 or m == 0

    def decompose(self, code: int):
        """(sign, mantissa_int incl. hidden bit, exponent) of a finite code."""
        s, f, m = self.fields(code)
        if f == 0:
            return s, m, self.emin - self.man
        return s, (1 << self.man) + m, f - self.b - self.man

    def value(self, code: int):
        """Exact value: Fraction for finite non-zero, float for 0.0/-0.0, inf and NaN."""
        s, f, m = self.fields(code)
        if self.is_nan(code):
            return math.nan
        if self.is_inf(code):
            return -math.inf if s else math.inf
        if f == 0 and m == 0:
            return -0.0 if s else 0.0
        s, mi, e = self.decompose(code)
        v = mi * pow2(e)
        return -v if s else v

    def real(self, code: int):
        """Like value() but zero as Fraction(0) (sign dropped)."""
        v = self.value(code)
        return Fraction(0) if v == 0 else v

    def codes(self):
        return range(1 << self.width)

    def finite_codes(self):
        return [c for c in self.codes() if not (self.is_nan(c) or self.is_inf(c)) and self.canonical(c)]

    def positive_values(self):
        """Sorted list of every finite positive representable value."""
        return sorted({self.real(c) for c in self.finite_codes() if self.real(c) > 0})

    # --- encoding
    def pack(self, negative: bool, mag: Fraction) -> int:
        """Bit pattern of a representable magnitude with a sign (as the unsigned pattern)."""
        sign = int(negative) << (self.exp + self.man)
        if mag == 0:
            return sign
        e = floor_log2(mag)
        if e < self.emin:
            m = mag / pow2(self.emin - self.man)
            assert m.denominator == 1 and self.subnormals, (mag, self)
            return sign | int(m)
        m = mag / pow2(e - self.man)
        assert m.denominator == 1 and (1 << self.man) <= m < (2 << self.man), (mag, self)
        field = e + self.b
        assert 1 <= field <= self.top_field
        return sign | (field << self.man) | (int(m) - (1 << self.man))

    def round_value(self, x, mode: str | None = None):
        """Finite rational -> (rounded Fraction or +-inf float, overflowed); sign handled by caller."""
        mode = mode or self.round
        x = as_fraction(x)
        if x == 0:
            return Fraction(0), False
        a = abs(x)
        e = floor_log2(a)
        if a < self.min_normal and not self.subnormals:
            q = self.min_normal
        else:
            q = pow2(max(e, self.emin) - self.man)
        r = round_int(x / q, mode) * q
        if abs(r) <= self.max:
            return r, False
        # overflow
        if self.special != "ieee":
            return (self.max if x > 0 else -self.max), True
        if mode in ("rne", "rna"):
            return (math.inf if x > 0 else -math.inf), True
        if mode == "rtz":
            return (self.max if x > 0 else -self.max), True
        return (self.max if x > 0 else -math.inf), True  # rdn

    def encode(self, x, mode: str | None = None):
        """Real number (float incl. +-0/inf/NaN, or Fraction) -> (unsigned pattern, overflowed).

        The overflow flag is only meaningful for finite inputs.
        """
        if isinstance(x, float):
            if math.isnan(x):
                return (self.nan_pattern if self.nan_pattern is not None else 0), True
            if math.isinf(x):
                if self.special == "ieee":
                    return self.inf_pattern(x < 0), True
                return self.pack(x < 0, self.max), True
            negative = math.copysign(1.0, x) < 0
        else:
            negative = x < 0
        r, ovf = self.round_value(x, mode)
        if isinstance(r, float):
            return self.inf_pattern(r < 0), ovf
        return self.pack(negative, abs(r)), ovf

    def quantize(self, x, mode: str | None = None) -> float:
        """Value after rounding, as a Python float (exact: formats are float64 subsets)."""
        return to_float(self.value(self.encode(x, mode)[0]))

    def pattern(self, code: int) -> int:
        """Unsigned pattern -> the int64 sim.encode returns."""
        return to_int64(code) if self.width == 64 else code


# --------------------------------------------------------------------------- accumulator + MAC
@dataclass(frozen=True)
class AccModel:
    """Accumulator(width, frac, round): two's complement, always modulo 2**width."""

    width: int
    frac: int
    round: str = "rne"


def default_acc_width(pos: int, neg: int) -> int:
    """Least two's-complement width holding every integer in [neg, pos] (neg <= 0 <= pos)."""
    w = 1
    while not (-(1 << (w - 1)) <= neg and pos <= (1 << (w - 1)) - 1):
        w += 1
    return w


def operand_value(model, code: int):
    """Exact value of an operand code: Fraction, or float inf/NaN."""
    if isinstance(model, FixedModel):
        return model.value(code)
    return model.real(code)


def mac(a_codes, b_codes, a_model, b_model, acc: AccModel, out_model,
        bias_codes=None, bias_model=None, shift=None):
    """Plain-loop Z = requant(A @ B + bias) -> (codes R x C, overflow R x C) as lists.

    Exact products; each product rounded onto the accumulator grid with acc.round
    (exact when the grid is fine enough); exact integer sum modulo 2**acc.width;
    bias converted exactly (ValueError if it cannot be); one requantization.
    Codes in and out are the int64 values sim uses (fixed: the integer code,
    float: the bit pattern).
    """
    R, K, C = len(a_codes), len(b_codes), len(b_codes[0])
    assert all(len(row) == K for row in a_codes)
    bias_model = bias_model or out_model
    scale = pow2(acc.frac)
    z, flags = [], []
    for r in range(R):
        zr, fr = [], []
        for c in range(C):
            nan = pinf = ninf = False
            s = 0
            terms = [(operand_value(a_model, int(a_codes[r][k])), operand_value(b_model, int(b_codes[k][c])))
                     for k in range(K)]
            for x, y in terms:
                if is_special(x) or is_special(y):
                    if (isinstance(x, float) and math.isnan(x)) or (isinstance(y, float) and math.isnan(y)):
                        nan = True
                    elif x == 0 or y == 0:
                        nan = True  # inf * 0
                    elif (x > 0) == (y > 0):
                        pinf = True
                    else:
                        ninf = True
                else:
                    s += round_int(x * y * scale, acc.round)
            if bias_codes is not None:
                bv = operand_value(bias_model, int(bias_codes[c]))
                if is_special(bv):
                    if math.isnan(bv):
                        nan = True
                    elif bv > 0:
                        pinf = True
                    else:
                        ninf = True
                else:
                    on_grid = bv * scale
                    if on_grid.denominator != 1:
                        raise ValueError("bias not exact on the accumulator grid")
                    s += int(on_grid)
            s = wrap_signed(s, acc.width)
            if nan or (pinf and ninf):
                special = math.nan
            elif pinf or ninf:
                special = math.inf if pinf else -math.inf
            else:
                special = None
            code, ovf = requant(s, acc, out_model, special, shift)
            zr.append(code)
            fr.append(ovf)
        z.append(zr)
        flags.append(fr)
    return z, flags


def requant(s: int, acc: AccModel, out_model, special=None, shift=None):
    """Accumulator integer (or a special result) -> output code and overflow flag."""
    if isinstance(out_model, FixedModel):
        if special is not None:
            code, ovf = out_model.encode(special)
            return out_model.pattern(code), ovf
        sh = acc.frac - out_model.frac if shift is None else shift
        code, ovf = out_model.limit(round_int(Fraction(s) / pow2(sh), out_model.round))
        return out_model.pattern(code), ovf
    if special is not None:
        code, _ = out_model.encode(special)
        return out_model.pattern(code), False
    code, ovf = out_model.encode(Fraction(s) / pow2(acc.frac))
    return out_model.pattern(code), ovf
