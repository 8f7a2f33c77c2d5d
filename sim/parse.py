"""Format strings: the one textual form of a format (CLI, configs, manifests)."""

from __future__ import annotations

import dataclasses

from .accumulator import Accumulator
from .errors import FormatError
from .fixed import DynamicFixed, Fixed
from .floating import ALIASES, Float
from .modes import Overflow, Rounding, Special

ACCEPTED = (
    "accepted: fixed:W:F, ufixed:W:F, dfixed:W[:F], udfixed:W[:F], float:E:M, acc:W:F, "
    + "|".join(ALIASES)
    + "; options after commas: round=rne|rna|rtz|rdn, overflow=sat|wrap, symmetric, "
    "bias=N, subnormals=on|off, special=ieee|fn|sat"
)

_KINDS = {  # kind -> (number of integer fields allowed, options allowed)
    "fixed": ((2,), {"round", "overflow", "symmetric"}),
    "ufixed": ((2,), {"round", "overflow"}),
    "dfixed": ((1, 2), {"round", "overflow", "symmetric"}),
    "udfixed": ((1, 2), {"round", "overflow"}),
    "float": ((2,), {"round", "bias", "subnormals", "special"}),
    "acc": ((2,), {"round", "overflow"}),
}
_FLOAT_OPTIONS = {"round", "bias", "subnormals", "special"}


def _bad(text, what):
    return FormatError(f"bad format string {text!r}: {what}; {ACCEPTED}")


def _int(text, part, name):
    try:
        return int(part)
    except ValueError:
        raise _bad(text, f"{name} {part!r} is not an integer") from None


def _options(text, items, allowed):
    opts = {}
    for item in items:
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if key not in allowed:
            raise _bad(text, f"unknown option {key!r} (this kind takes {', '.join(sorted(allowed))})")
        if key == "symmetric":
            if eq and value not in ("1", "on", "true", "yes"):
                raise _bad(text, f"option symmetric takes no value, got {value!r}")
            opts["symmetric"] = True
        elif key == "round":
            try:
                opts["round"] = Rounding(value)
            except ValueError:
                raise _bad(text, f"unknown rounding {value!r}") from None
        elif key == "overflow":
            try:
                opts["overflow"] = Overflow(value)
            except ValueError:
                raise _bad(text, f"unknown overflow {value!r}") from None
        elif key == "special":
            try:
                opts["special"] = Special(value)
            except ValueError:
                raise _bad(text, f"unknown special {value!r}") from None
        elif key == "subnormals":
            if value not in ("on", "off"):
                raise _bad(text, f"subnormals takes on|off, got {value!r}")
            opts["subnormals"] = value == "on"
        elif key == "bias":
            opts["bias"] = _int(text, value, "bias")
    return opts


def parse_format(text):
    """Parse a format string (or return a format object unchanged)."""
    if isinstance(text, (Fixed, DynamicFixed, Float, Accumulator)):
        return text
    if not isinstance(text, str):
        raise FormatError(f"bad format {text!r}: expected a format string; {ACCEPTED}")
    original = text
    items = [p.strip() for p in text.strip().lower().split(",")]
    head, items = items[0], items[1:]
    if not head:
        raise _bad(original, "empty format")
    if any(not i for i in items):
        raise _bad(original, "empty option")
    if head in ALIASES:
        base = ALIASES[head]
        opts = _options(original, items, _FLOAT_OPTIONS)
        fields = dict(exp=base.exp, man=base.man, bias=base.bias, subnormals=base.subnormals,
                      special=base.special, round=base.round)
        if "bias" not in opts and base.bias != (1 << (base.exp - 1)) - 1:
            fields["bias"] = base.bias
        fields.update(opts)
        return Float(**fields)
    kind, _, rest = head.partition(":")
    if kind not in _KINDS:
        raise _bad(original, f"unknown kind {kind!r}")
    counts, allowed = _KINDS[kind]
    parts = rest.split(":") if rest else []
    if len(parts) not in counts:
        want = " or ".join(str(c) for c in counts)
        raise _bad(original, f"{kind} takes {want} integer field(s), got {len(parts)}")
    nums = [_int(original, p, "field") for p in parts]
    opts = _options(original, items, allowed)
    if kind in ("fixed", "ufixed"):
        return Fixed(nums[0], nums[1], signed=kind == "fixed", **opts)
    if kind in ("dfixed", "udfixed"):
        frac = nums[1] if len(nums) == 2 else 0
        return DynamicFixed(nums[0], frac, signed=kind == "dfixed", **opts)
    if kind == "float":
        return Float(nums[0], nums[1], **opts)
    return Accumulator(nums[0], nums[1], **opts)


def _opts_str(pairs):
    return "".join(f",{p}" for p in pairs)


def format_to_string(fmt) -> str:
    """The canonical string of a format; ``parse_format`` reads it back to an equal format."""
    kind = getattr(fmt, "kind", None)
    if kind in ("fixed", "dfixed"):
        opts = []
        if fmt.round is not Rounding.RNE:
            opts.append(f"round={fmt.round}")
        if fmt.overflow is not Overflow.SAT:
            opts.append(f"overflow={fmt.overflow}")
        if fmt.symmetric:
            opts.append("symmetric")
        u = "" if fmt.signed else "u"
        if kind == "fixed":
            return f"{u}fixed:{fmt.width}:{fmt.frac}" + _opts_str(opts)
        tail = f":{fmt.frac}" if fmt.frac else ""
        return f"{u}dfixed:{fmt.width}{tail}" + _opts_str(opts)
    if kind == "float":
        for name, alias in ALIASES.items():
            if (alias.exp, alias.man, alias.bias, alias.subnormals, alias.special) == (
                    fmt.exp, fmt.man, fmt.bias, fmt.subnormals, fmt.special):
                return name + (_opts_str([f"round={fmt.round}"]) if fmt.round is not Rounding.RNE else "")
        opts = []
        if fmt.bias != (1 << (fmt.exp - 1)) - 1:
            opts.append(f"bias={fmt.bias}")
        if not fmt.subnormals:
            opts.append("subnormals=off")
        if fmt.special is not Special.IEEE:
            opts.append(f"special={fmt.special}")
        if fmt.round is not Rounding.RNE:
            opts.append(f"round={fmt.round}")
        return f"float:{fmt.exp}:{fmt.man}" + _opts_str(opts)
    if kind == "acc":
        opts = []
        if fmt.round is not Rounding.RNE:
            opts.append(f"round={fmt.round}")
        if fmt.overflow is not Overflow.SAT:
            opts.append(f"overflow={fmt.overflow}")
        return f"acc:{fmt.width}:{fmt.frac}" + _opts_str(opts)
    raise FormatError(f"bad format {fmt!r}: not a fewbits format; {ACCEPTED}")


def paper_convention(fmt):
    """The paper's reading of ``fmt``: a ``fixed``/``dfixed`` width counts no sign bit, so the format
    gets one more bit, symmetric saturation and ties away from zero (its Theano code); other kinds
    pass unchanged.  The one place this convention lives: every layer asks here."""
    if fmt.kind not in ("fixed", "dfixed"):
        return fmt
    return dataclasses.replace(fmt, width=fmt.width + 1, symmetric=True, round=Rounding.RNA)


def paper_width(fmt) -> int:
    """The bit count the paper displays for ``fmt``: a signed fixed point width without its sign
    (the inverse of ``paper_convention``), every other format's full width."""
    if fmt.kind in ("fixed", "dfixed") and fmt.signed:
        return fmt.width - 1
    return fmt.width


def paper_format(bits: int, frac: int, round=Rounding.RNA) -> Fixed:
    """The paper's convention: ``bits`` without the sign, symmetric saturation, ties away from zero."""
    return dataclasses.replace(paper_convention(Fixed(bits, frac)), round=round)
