"""Floating point formats: sign, ``exp`` exponent bits, ``man`` mantissa bits."""

from __future__ import annotations

import dataclasses
import math

import torch

from .encodings import FLOAT_ALIASES
from .errors import FormatError
from .fixed import _as_tensor, _check_enum, _check_int
from .modes import Rounding, Special
from .rounding import round_to_integer
from .ste import straight_through


def scale2(x: torch.Tensor, e) -> torch.Tensor:
    """``x * 2**e`` exactly (``e`` an integer tensor or int), in two steps so no power overflows."""
    e = torch.as_tensor(e, dtype=torch.int64)
    e1 = torch.div(e, 2, rounding_mode="floor")
    e2 = e - e1
    return x * torch.exp2(e1.to(torch.float64)) * torch.exp2(e2.to(torch.float64))


@dataclasses.dataclass(frozen=True)
class Float:
    """A binary floating-point format with gradual underflow (optional) and a choice of specials."""

    exp: int
    man: int
    bias: int | None = None
    subnormals: bool = True
    special: Special = Special.IEEE
    round: Rounding = Rounding.RNE

    kind = "float"

    def __post_init__(self):
        _check_int(self.exp, "exponent width")
        _check_int(self.man, "mantissa width")
        if not 2 <= self.exp <= 11:
            raise FormatError(f"bad exponent width {self.exp}: accepted 2..11 bits")
        if not 1 <= self.man <= 52:
            raise FormatError(f"bad mantissa width {self.man}: accepted 1..52 bits")
        if self.bias is None:
            object.__setattr__(self, "bias", (1 << (self.exp - 1)) - 1)
        _check_int(self.bias, "bias")
        object.__setattr__(self, "special", _check_enum(self.special, Special, "special"))
        object.__setattr__(self, "round", _check_enum(self.round, Rounding, "rounding"))
        object.__setattr__(self, "subnormals", bool(self.subnormals))
        if self.emax > 1023 or self.emin - self.man < -1074 or self.emin < -1022 and not self.subnormals:
            raise FormatError(
                f"bad bias {self.bias} for float:{self.exp}:{self.man}: every value must be a float64; "
                f"accepted biases keep exponents within -1022..1023")

    # ---- layout ------------------------------------------------------
    @property
    def width(self) -> int:
        return 1 + self.exp + self.man

    @property
    def bits_man(self) -> int:
        return self.man + 1

    @property
    def field_max(self) -> int:
        return (1 << self.exp) - 1

    @property
    def emin(self) -> int:
        return 1 - self.bias

    @property
    def emax(self) -> int:
        top = self.field_max - (1 if self.special is Special.IEEE else 0)
        return top - self.bias

    @property
    def max_mantissa(self) -> int:
        """Integer mantissa (hidden bit included) of the largest finite value."""
        drop = 1 if self.special is Special.FN else 0  # FN: the all-ones mantissa is NaN
        return (1 << (self.man + 1)) - 1 - drop

    @property
    def max(self) -> float:
        return math.ldexp(float(self.max_mantissa), self.emax - self.man)

    @property
    def min(self) -> float:
        return -self.max

    @property
    def min_normal(self) -> float:
        return math.ldexp(1.0, self.emin)

    @property
    def min_subnormal(self) -> float:
        return math.ldexp(1.0, self.emin - self.man) if self.subnormals else self.min_normal

    @property
    def ulp(self) -> float:
        """The finest spacing of the format: 2**(emin - man), with or without subnormals."""
        return math.ldexp(1.0, self.emin - self.man)

    @property
    def q0(self) -> int:
        """Exponent of the finest grid step: every finite value is an integer times 2**q0."""
        return self.emin - self.man

    @property
    def has_inf(self) -> bool:
        return self.special is Special.IEEE

    @property
    def has_nan(self) -> bool:
        return self.special is not Special.SAT

    # ---- rounding ------------------------------------------------------
    def _round(self, x: torch.Tensor):
        """Round float64 ``x`` onto the format; returns (values float64, overflow flags)."""
        a = x.abs()
        _, e = torch.frexp(a)
        big_e = e.to(torch.int64) - 1
        if self.subnormals:
            qexp = torch.clamp(big_e, min=self.emin) - self.man
        else:
            qexp = torch.where(big_e < self.emin, torch.full_like(big_e, self.emin), big_e - self.man)
        finite = torch.isfinite(x)
        xs = torch.where(finite, x, torch.zeros_like(x))
        n = round_to_integer(scale2(xs, -qexp), self.round)
        v = scale2(n, qexp)
        over = finite & (v.abs() > self.max)
        v = torch.where(over, self.overflow_value(x < 0), v)
        if self.special is Special.IEEE:
            v = torch.where(finite, v, x)  # inf and NaN pass through
            ovf = over
        else:
            mx = torch.full_like(v, self.max)
            v = torch.where(torch.isinf(x), torch.copysign(mx, x), v)
            ovf = over | torch.isinf(x)
            nan = torch.isnan(x)
            if self.special is Special.FN:
                v = torch.where(nan, x, v)
            else:
                v = torch.where(nan, torch.zeros_like(v), v)
                ovf = ovf | nan
        return v, ovf

    def overflow_value(self, negative: torch.Tensor) -> torch.Tensor:
        """What a finite value beyond ``max`` rounds to, by sign: IEEE gives inf (RNE, RNA),
        max (RTZ), or +max / -inf (RDN); FN and SAT saturate to ±max."""
        mx = torch.full(negative.shape, self.max, dtype=torch.float64)
        big = mx
        if self.special is Special.IEEE:
            inf = torch.full_like(mx, math.inf)
            if self.round in (Rounding.RNE, Rounding.RNA):
                big = inf
            elif self.round is Rounding.RDN:
                big = torch.where(negative, inf, mx)
        return torch.where(negative, -big, big)

    def quantize(self, x):
        x = _as_tensor(x)
        return straight_through(x, lambda t: self._round(t.detach().to(torch.float64))[0].to(t.dtype))

    # ---- codes -------------------------------------------------------
    def encode_ovf(self, x):
        x = _as_tensor(x).detach().to(torch.float64)
        v, ovf = self._round(x)
        return self._pack(v), ovf

    def encode(self, x) -> torch.Tensor:
        return self.encode_ovf(x)[0]

    def _pack(self, v: torch.Tensor) -> torch.Tensor:
        """Bit patterns of values already on the format (float64)."""
        sign = torch.signbit(v).to(torch.int64)
        a = v.abs()
        finite = torch.isfinite(a)
        af = torch.where(finite, a, torch.zeros_like(a))
        _, e = torch.frexp(af)
        big_e = e.to(torch.int64) - 1
        normal = af >= self.min_normal
        field = torch.where(normal, big_e + self.bias, torch.zeros_like(big_e))
        mant_normal = scale2(af, self.man - big_e) - float(1 << self.man)
        mant_sub = scale2(af, self.man - self.emin)
        mant = torch.where(normal, mant_normal, mant_sub).to(torch.int64)
        if self.has_inf:
            inf = torch.isinf(a)
            field = torch.where(inf, torch.full_like(field, self.field_max), field)
            mant = torch.where(inf, torch.zeros_like(mant), mant)
        if self.has_nan:
            nan = torch.isnan(v)
            nan_mant = (1 << (self.man - 1)) if self.special is Special.IEEE else (1 << self.man) - 1
            field = torch.where(nan, torch.full_like(field, self.field_max), field)
            mant = torch.where(nan, torch.full_like(mant, nan_mant), mant)
            sign = torch.where(nan, torch.zeros_like(sign), sign)
        return (sign << (self.exp + self.man)) | (field << self.man) | mant

    def fields(self, codes):
        """(sign, exponent field, mantissa field) of int64 bit patterns."""
        codes = torch.as_tensor(codes, dtype=torch.int64)
        sign = (codes >> (self.exp + self.man)) & 1
        field = (codes >> self.man) & self.field_max
        mant = codes & ((1 << self.man) - 1)
        return sign, field, mant

    def is_nan(self, codes) -> torch.Tensor:
        _, field, mant = self.fields(codes)
        if self.special is Special.IEEE:
            return (field == self.field_max) & (mant != 0)
        if self.special is Special.FN:
            return (field == self.field_max) & (mant == (1 << self.man) - 1)
        return torch.zeros_like(field, dtype=torch.bool)

    def is_inf(self, codes) -> torch.Tensor:
        _, field, mant = self.fields(codes)
        if self.special is Special.IEEE:
            return (field == self.field_max) & (mant == 0)
        return torch.zeros_like(field, dtype=torch.bool)

    def decompose(self, codes):
        """(sign, integer mantissa with hidden bit, exponent) with value (-1)**s * m * 2**e (finite codes)."""
        sign, field, mant = self.fields(codes)
        normal = field > 0
        m = torch.where(normal, mant | (1 << self.man), mant if self.subnormals else torch.zeros_like(mant))
        e = torch.where(normal, field - self.bias - self.man, torch.full_like(field, self.emin - self.man))
        special = self.is_nan(codes) | self.is_inf(codes)
        m = torch.where(special, torch.zeros_like(m), m)
        return sign, m, e

    def decode(self, codes) -> torch.Tensor:
        codes = torch.as_tensor(codes, dtype=torch.int64)
        sign, m, e = self.decompose(codes)
        v = scale2(m.to(torch.float64), e)
        v = torch.where(self.is_inf(codes), torch.full_like(v, math.inf), v)
        v = torch.where(self.is_nan(codes), torch.full_like(v, math.nan), v)
        return torch.where(sign.bool(), -v, v)

    def __str__(self):
        from .spelling import format_to_string

        return format_to_string(self)


ALIASES = {name: Float(e, m, special=special) for name, (e, m, special) in FLOAT_ALIASES.items()}
fp64, fp32, fp16, bf16 = ALIASES["fp64"], ALIASES["fp32"], ALIASES["fp16"], ALIASES["bf16"]
fp8_e5m2, fp8_e4m3 = ALIASES["fp8_e5m2"], ALIASES["fp8_e4m3"]
