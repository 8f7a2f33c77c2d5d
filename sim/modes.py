"""How to round and what to do on overflow: named once, used by every format."""

import enum


class Rounding(enum.Enum):
    """Rounding of a value that falls between two grid points."""

    RNE = "rne"  #: nearest, ties to even
    RNA = "rna"  #: nearest, ties away from zero (the paper's Theano code)
    RTZ = "rtz"  #: toward zero (truncate the magnitude)
    RDN = "rdn"  #: toward minus infinity (floor, arithmetic shift right)

    def __str__(self):
        return self.value


class Overflow(enum.Enum):
    """What a fixed-point code does beyond its range (the flag is raised either way)."""

    SAT = "sat"  #: clamp to the nearest end of the range
    WRAP = "wrap"  #: keep the low ``width`` bits (two's complement modulo)

    def __str__(self):
        return self.value


class Special(enum.Enum):
    """Which codes of a float format are not finite numbers."""

    IEEE = "ieee"  #: top exponent reserved for inf and NaN; overflow rounds to inf
    FN = "fn"  #: OCP e4m3 style: no inf, only all-ones is NaN; overflow saturates
    SAT = "sat"  #: every code is a finite number; overflow saturates, NaN -> +0

    def __str__(self):
        return self.value


RNE, RNA, RTZ, RDN = Rounding.RNE, Rounding.RNA, Rounding.RTZ, Rounding.RDN
SAT, WRAP = Overflow.SAT, Overflow.WRAP
IEEE, FN = Special.IEEE, Special.FN
