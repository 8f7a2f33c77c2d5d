"""Format strings: the one textual form of a format (CLI, configs, manifests)."""

from __future__ import annotations

import dataclasses

from .accumulator import Accumulator, FloatAccumulator, as_accumulator
from .errors import FormatError
from .fixed import DynamicFixed, Fixed
from .encodings import ACCEPTED
from .floating import ALIASES, Float
from .modes import Overflow, Rounding, Special
from .spelling import format_to_string  # noqa: F401  (the writer beside the reader)

_KINDS = {  # kind -> (number of integer fields allowed, options allowed)
    "fixed": ((2,), {"round", "overflow", "symmetric"}),
    "ufixed": ((2,), {"round", "overflow"}),
    "dfixed": ((1, 2), {"round", "overflow", "symmetric"}),
    "udfixed": ((1, 2), {"round", "overflow"}),
    "float": ((2,), {"round", "bias", "subnormals", "special", "chunk"}),
    "acc": ((2,), {"round", "overflow"}),
}
_FLOAT_OPTIONS = {"round", "bias", "subnormals", "special", "chunk"}


def _bad(text, what):
    return FormatError(f"bad format string {text!r}: {what}; {ACCEPTED}")


def _int(text, part, name):
    # int() also reads non-ASCII digits ("８" is 8): a format string is ASCII, as its writer emits it
    if not part.isascii():
        raise _bad(text, f"{name} {part!r} is not an integer (ASCII digits only)")
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
        elif key == "chunk":
            opts["chunk"] = _int(text, value, "chunk")
    return opts


def _float(opts, **fields):
    """A Float, or a FloatAccumulator when the string gave ``chunk=N``."""
    chunk = opts.pop("chunk", None)
    fields.update(opts)
    fmt = Float(**fields)
    return fmt if chunk is None else FloatAccumulator(fmt, chunk)


def parse_format(text):
    """Parse a format string (or return a format object unchanged)."""
    if isinstance(text, (Fixed, DynamicFixed, Float, Accumulator, FloatAccumulator)):
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
        return _float(opts, **fields)
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
        return _float(opts, exp=nums[0], man=nums[1])
    return Accumulator(nums[0], nums[1], **opts)


def parse_accumulator(text):
    """An accumulator from its string or object: ``acc:W:F``, ``fixed:W:F``, or a float with ``chunk=N``."""
    return as_accumulator(parse_format(text))


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
