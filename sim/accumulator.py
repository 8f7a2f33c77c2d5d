"""The MAC accumulator grid: a wide two's-complement register at scale 2**-frac."""

from __future__ import annotations

import dataclasses

from .errors import FormatError
from .fixed import _check_enum, _check_int
from .modes import Overflow, Rounding

MAX_ACC_WIDTH = 65536


@dataclasses.dataclass(frozen=True)
class Accumulator:
    """A ``width``-bit accumulator holding integers times 2**-frac.

    Not limited to 64 bits: the exact (Kulisch) accumulator of a float MAC is
    wide.  Accumulation is always modulo 2**width (order-independent);
    the default ``overflow=SAT`` only claims that it is wide enough, which
    ``MacSpec`` checks against ``k_max``; ``overflow=wrap`` allows a narrower one.  ``round`` applies where a float product is
    finer than this grid.
    """

    width: int
    frac: int
    round: Rounding = Rounding.RNE
    overflow: Overflow = Overflow.SAT

    kind = "acc"

    def __post_init__(self):
        _check_int(self.width, "accumulator width")
        _check_int(self.frac, "accumulator frac")
        if not 2 <= self.width <= MAX_ACC_WIDTH:
            raise FormatError(f"bad accumulator width {self.width}: accepted 2..{MAX_ACC_WIDTH} bits")
        if abs(self.frac) > 4 * MAX_ACC_WIDTH:
            raise FormatError(f"bad accumulator frac {self.frac}: accepted |frac| <= {4 * MAX_ACC_WIDTH}")
        object.__setattr__(self, "round", _check_enum(self.round, Rounding, "rounding"))
        object.__setattr__(self, "overflow", _check_enum(self.overflow, Overflow, "overflow"))

    @property
    def signed(self) -> bool:
        return True

    @property
    def min_code(self) -> int:
        return -(1 << (self.width - 1))

    @property
    def max_code(self) -> int:
        return (1 << (self.width - 1)) - 1

    def holds(self, lo: int, hi: int) -> bool:
        """Whether every integer code in [lo, hi] fits without wrapping."""
        return self.min_code <= lo and hi <= self.max_code

    def __str__(self):
        from .parse import format_to_string

        return format_to_string(self)
