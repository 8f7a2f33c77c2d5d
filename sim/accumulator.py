"""The MAC accumulators: a wide two's-complement register at scale 2**-frac (exact, or modular),
or a floating-point running sum rounded once per chunk of products (what real float MACs build)."""

from __future__ import annotations

import dataclasses

from .errors import FormatError
from .fixed import DynamicFixed, Fixed, _check_enum, _check_int
from .floating import Float
from .modes import Overflow, Rounding

MAX_ACC_WIDTH = 65536
MAX_CHUNK = 1 << 20


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
        from .spelling import format_to_string

        return format_to_string(self)


@dataclasses.dataclass(frozen=True)
class FloatAccumulator:
    """A float running sum: ``s = round_fmt(s + exact sum of the next chunk products)``, ascending k.

    ``chunk`` consecutive products are summed exactly and rounded into ``s``
    once (FP8 tensor units add a few exact products, then round); the
    running sum starts at the bias rounded to ``fmt``.  Overflow, NaN and
    infinities follow ``fmt.special`` (DESIGN.md, the arithmetic contract).
    Unlike the exact accumulator the result depends on the order of k.
    """

    fmt: Float
    chunk: int = 1

    kind = "facc"

    def __post_init__(self):
        if not isinstance(self.fmt, Float):
            raise FormatError(f"bad float accumulator format {self.fmt!r}: accepted a float format")
        _check_int(self.chunk, "accumulator chunk")
        if not 1 <= self.chunk <= MAX_CHUNK:
            raise FormatError(f"bad accumulator chunk={self.chunk}: accepted 1..{MAX_CHUNK} products per rounding")

    @property
    def round(self):
        return self.fmt.round

    def __str__(self):
        from .spelling import format_to_string

        return format_to_string(self)


def as_accumulator(fmt):
    """An accumulator object from a parsed format: ``acc:W:F``/``fixed:W:F`` (fixed) or a float (chunk 1).

    The one place that decides what an ``acc_fmt`` means, for ``MacSpec`` and ``mac_reference``.
    """
    if isinstance(fmt, (Accumulator, FloatAccumulator)):
        return fmt
    if isinstance(fmt, Float):
        return FloatAccumulator(fmt)
    if isinstance(fmt, Fixed) and not isinstance(fmt, DynamicFixed):
        return Accumulator(fmt.width, fmt.frac, fmt.round, fmt.overflow)
    raise FormatError(f"bad accumulator {fmt}: accepted acc:W:F[,overflow=wrap], fixed:W:F, "
                      "or a float format with an optional chunk=N (fp32, float:8:10,chunk=4)")
