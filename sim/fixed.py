"""Fixed point: a two's-complement integer code ``c`` with value ``c * 2**-frac``."""

from __future__ import annotations

import dataclasses
import functools
import math

import torch

from .errors import FormatError
from .modes import Overflow, Rounding
from .rounding import round_to_integer
from .ste import straight_through

MAX_WIDTH = 64
MAX_FRAC = 900  # keeps 2**frac and every code's value a normal float64


def _as_tensor(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    return torch.as_tensor(x, dtype=torch.float64)


def _check_enum(value, enum_type, name):
    if isinstance(value, enum_type):
        return value
    if isinstance(value, str):
        try:
            return enum_type(value.lower())
        except ValueError:
            pass
    accepted = "|".join(m.value for m in enum_type)
    raise FormatError(f"bad {name} {value!r}: accepted {accepted}")


def _check_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise FormatError(f"bad {name} {value!r}: must be an integer")
    return value


@dataclasses.dataclass(frozen=True)
class Fixed:
    """Fixed point with ``width`` bits including the sign, ``frac`` fraction bits.

    ``frac`` may be negative or larger than ``width``.  ``symmetric`` drops
    the most negative code (the paper's sign-magnitude range).
    """

    width: int
    frac: int
    signed: bool = True
    round: Rounding = Rounding.RNE
    overflow: Overflow = Overflow.SAT
    symmetric: bool = False

    kind = "fixed"

    def __post_init__(self):
        _check_int(self.width, "width")
        _check_int(self.frac, "frac")
        if not -MAX_FRAC <= self.frac <= MAX_FRAC:
            raise FormatError(f"bad frac {self.frac}: accepted -{MAX_FRAC}..{MAX_FRAC}")
        if not 1 <= self.width <= MAX_WIDTH:
            raise FormatError(
                f"bad fixed-point width {self.width}: accepted 1..{MAX_WIDTH} bits (the sign bit counts)")
        object.__setattr__(self, "round", _check_enum(self.round, Rounding, "rounding"))
        object.__setattr__(self, "overflow", _check_enum(self.overflow, Overflow, "overflow"))
        object.__setattr__(self, "signed", bool(self.signed))
        object.__setattr__(self, "symmetric", bool(self.symmetric))
        if self.symmetric and not self.signed:
            raise FormatError("bad option 'symmetric' for an unsigned format: accepted only with fixed/dfixed")
        if self.symmetric and self.overflow is Overflow.WRAP:
            raise FormatError("bad option 'symmetric' with overflow=wrap: accepted only with overflow=sat")
        if self.signed and self.width == 1 and self.symmetric:
            raise FormatError("bad format: a 1-bit symmetric format has only the code 0; accepted width >= 2")

    # ---- range -------------------------------------------------------
    @property
    def min_code(self) -> int:
        if not self.signed:
            return 0
        return -(1 << (self.width - 1)) + (1 if self.symmetric else 0)

    @property
    def max_code(self) -> int:
        return (1 << (self.width - (1 if self.signed else 0))) - 1

    @property
    def ulp(self) -> float:
        return math.ldexp(1.0, -self.frac)

    @property
    def min(self) -> float:
        return math.ldexp(float(self.min_code), -self.frac)

    @property
    def max(self) -> float:
        return math.ldexp(float(self.max_code), -self.frac)

    @property
    def fixed(self) -> "Fixed":
        return self

    # ---- integer code helpers ---------------------------------------
    def wrap_codes(self, codes: torch.Tensor):
        """Reduce int64 integers modulo 2**width into the code range; flag the changed ones."""
        w = self.width
        if w == 64:
            return codes.clone(), torch.zeros_like(codes, dtype=torch.bool)
        low = codes & ((1 << w) - 1)
        if self.signed:
            low = torch.where(low >= (1 << (w - 1)), low - (1 << w), low)
        return low, low != codes

    def saturate_codes(self, codes: torch.Tensor):
        """Clamp int64 integers into the code range; flag the clamped ones."""
        lo, hi = self.min_code, self.max_code
        if self.width == 64 and not self.signed:
            # unsigned 64-bit codes live as int64 bit patterns: nothing to clamp
            return codes.clone(), torch.zeros_like(codes, dtype=torch.bool)
        out = codes.clamp(lo, min(hi, 2**63 - 1))
        return out, out != codes

    # ---- float <-> code ---------------------------------------------
    def encode_ovf(self, x):
        """Codes (int64) of ``x`` after rounding and overflow, and the overflow flags.

        NaN gives code 0 and ±inf the saturated code, both flagged.
        """
        x = _as_tensor(x).detach().to(torch.float64)
        y = x * (2.0 ** self.frac)
        if self.round is Rounding.RDN and self.frac < 0:
            # keep the sign of a value that underflows, so that RDN still floors it to -1
            y = torch.where((y == 0) & (x != 0), torch.copysign(torch.full_like(y, 2.0 ** -1074), x), y)
        if self.overflow is Overflow.SAT and self.width <= 52:
            return self._encode_sat_narrow(y)
        y = round_to_integer(y, self.round)
        nan = torch.isnan(y)
        y = torch.where(nan, torch.zeros_like(y), y)
        w = self.width
        # exact range tests against powers of two (min_code - 1 and max_code + 1)
        top = 2.0 ** (w - 1) if self.signed else 2.0 ** w
        too_big = y >= top
        if not self.signed:
            too_small = y < 0
        elif self.symmetric:
            too_small = y <= -top
        else:
            too_small = y < -top
        out = too_big | too_small
        hi = self.max_code if self.max_code < 2**63 else -1  # unsigned 64: all ones
        if self.overflow is Overflow.SAT:
            codes = self._float_to_int64(torch.where(out, torch.zeros_like(y), y))
            sat_hi, sat_lo = too_big, too_small
        else:
            # a finite x whose scaled value overflows float64 is a multiple of 2**971: it wraps to 0;
            # only an infinite x saturates
            inf = torch.isinf(x)
            r = torch.fmod(torch.where(torch.isinf(y), torch.zeros_like(y), y), 2.0 ** w)  # fmod is exact
            if w == 64:  # fold (-2**64, 2**64) into int64 range; exact by Sterbenz
                r = torch.where(r >= 2.0 ** 63, r - 2.0 ** 64, r)
                r = torch.where(r < -(2.0 ** 63), r + 2.0 ** 64, r)
            codes, _ = self.wrap_codes(r.to(torch.int64))
            sat_hi, sat_lo = too_big & inf, too_small & inf
        codes = torch.where(sat_hi, torch.full_like(codes, hi), codes)
        codes = torch.where(sat_lo, torch.full_like(codes, self.min_code), codes)
        return codes, out | nan

    def _encode_sat_narrow(self, y: torch.Tensor):
        """The common case in few tensor passes: codes fit float64 exactly, so clamp in float."""
        # (not trunc(y + 0.5): that sum is inexact just below a tie, e.g. 0.49999999999999994)
        y = round_to_integer(y, self.round)
        lo, hi = float(self.min_code), float(self.max_code)
        ovf = (y > hi) | (y < lo)
        nan = torch.isnan(y)
        if bool(nan.any()):
            ovf |= nan
            y = torch.where(nan, torch.zeros_like(y), y)
        return y.clamp_(lo, hi).to(torch.int64), ovf

    def _float_to_int64(self, y: torch.Tensor) -> torch.Tensor:
        if self.signed or self.width < 64:
            return y.to(torch.int64)
        # unsigned 64-bit: values in [2**63, 2**64) become negative bit patterns (Sterbenz: exact)
        big = y >= 2.0 ** 63
        return torch.where(big, y - 2.0 ** 64, y).to(torch.int64)

    def encode(self, x) -> torch.Tensor:
        return self.encode_ovf(x)[0]

    def decode(self, codes) -> torch.Tensor:
        codes = torch.as_tensor(codes, dtype=torch.int64)
        v = codes.to(torch.float64)
        if not self.signed and self.width == 64:
            v = torch.where(codes < 0, v + 2.0 ** 64, v)
        return v * (2.0 ** -self.frac)

    def quantize(self, x):
        x = _as_tensor(x)
        return straight_through(x, lambda t: self.decode(self.encode(t)).to(t.dtype))

    def __str__(self):
        from .spelling import format_to_string

        return format_to_string(self)


@dataclasses.dataclass(frozen=True)
class DynamicFixed:
    """Fixed point whose ``frac`` is runtime state of a named tensor group.

    The range controller moves ``frac`` (``with_frac``); hardware takes the
    resulting shift ``fa + fb - fo`` as a runtime input.
    """

    width: int
    frac: int = 0
    signed: bool = True
    round: Rounding = Rounding.RNE
    overflow: Overflow = Overflow.SAT
    symmetric: bool = False

    kind = "dfixed"

    def __post_init__(self):
        fixed = Fixed(self.width, self.frac, self.signed, self.round, self.overflow, self.symmetric)
        object.__setattr__(self, "round", fixed.round)
        object.__setattr__(self, "overflow", fixed.overflow)
        object.__setattr__(self, "signed", fixed.signed)
        object.__setattr__(self, "symmetric", fixed.symmetric)

    @functools.cached_property
    def fixed(self) -> Fixed:
        # cached: every range query and encode goes through it, and the format is immutable
        return Fixed(self.width, self.frac, self.signed, self.round, self.overflow, self.symmetric)

    def with_frac(self, frac: int) -> "DynamicFixed":
        return dataclasses.replace(self, frac=int(frac))

    min_code = property(lambda self: self.fixed.min_code)
    max_code = property(lambda self: self.fixed.max_code)
    ulp = property(lambda self: self.fixed.ulp)
    min = property(lambda self: self.fixed.min)
    max = property(lambda self: self.fixed.max)

    def encode_ovf(self, x):
        return self.fixed.encode_ovf(x)

    def encode(self, x):
        return self.fixed.encode(x)

    def decode(self, codes):
        return self.fixed.decode(codes)

    def quantize(self, x):
        return self.fixed.quantize(x)

    def wrap_codes(self, codes):
        return self.fixed.wrap_codes(codes)

    def saturate_codes(self, codes):
        return self.fixed.saturate_codes(codes)

    def __str__(self):
        from .spelling import format_to_string

        return format_to_string(self)
