"""Writing a format as its canonical string (``parse_format`` reads it back to an equal format).

Dispatches on ``fmt.kind`` and reads fields only, so every format class can use it for
``__str__`` without importing the parser (which imports the classes).
"""

from __future__ import annotations

from .encodings import ACCEPTED, FLOAT_ALIASES
from .errors import FormatError
from .modes import Overflow, Rounding, Special


def _opts_str(pairs) -> str:
    return "".join(f",{p}" for p in pairs)


def _fixed(fmt) -> str:
    opts = []
    if fmt.round is not Rounding.RNE:
        opts.append(f"round={fmt.round}")
    if fmt.overflow is not Overflow.SAT:
        opts.append(f"overflow={fmt.overflow}")
    if fmt.symmetric:
        opts.append("symmetric")
    u = "" if fmt.signed else "u"
    if fmt.kind == "fixed":
        return f"{u}fixed:{fmt.width}:{fmt.frac}" + _opts_str(opts)
    tail = f":{fmt.frac}" if fmt.frac else ""
    return f"{u}dfixed:{fmt.width}{tail}" + _opts_str(opts)


def _float(fmt) -> str:
    rnd = [f"round={fmt.round}"] if fmt.round is not Rounding.RNE else []
    for name, (e, m, special) in FLOAT_ALIASES.items():
        if (e, m, (1 << (e - 1)) - 1, True, special) == (fmt.exp, fmt.man, fmt.bias, fmt.subnormals, fmt.special):
            return name + _opts_str(rnd)
    opts = []
    if fmt.bias != (1 << (fmt.exp - 1)) - 1:
        opts.append(f"bias={fmt.bias}")
    if not fmt.subnormals:
        opts.append("subnormals=off")
    if fmt.special is not Special.IEEE:
        opts.append(f"special={fmt.special}")
    return f"float:{fmt.exp}:{fmt.man}" + _opts_str(opts + rnd)


def _acc(fmt) -> str:
    opts = []
    if fmt.round is not Rounding.RNE:
        opts.append(f"round={fmt.round}")
    if fmt.overflow is not Overflow.SAT:
        opts.append(f"overflow={fmt.overflow}")
    return f"acc:{fmt.width}:{fmt.frac}" + _opts_str(opts)


def _facc(fmt) -> str:
    # chunk 1 is the plain float string: parse_accumulator (and MacSpec) read it back as this accumulator
    return _float(fmt.fmt) + (f",chunk={fmt.chunk}" if fmt.chunk != 1 else "")


_WRITERS = {"fixed": _fixed, "dfixed": _fixed, "float": _float, "acc": _acc, "facc": _facc}


def format_to_string(fmt) -> str:
    """The canonical string of a format; ``parse_format`` reads it back to an equal format."""
    writer = _WRITERS.get(getattr(fmt, "kind", None))
    if writer is None:
        raise FormatError(f"bad format {fmt!r}: not a fewbits format; {ACCEPTED}")
    return writer(fmt)
