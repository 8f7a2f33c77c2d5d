"""The two formats of a run (propagation and update) and the paper's bit convention.

A run has one *propagation* format (every w, b, z, y, dEdy, dEdz, dEdw, dEdb
and momentum value) and one wider *update* format (the stored parameters
after ``W + update``).  ``fp32`` means "no quantization at all" (the float32
baseline).  A dynamic fixed point format gives each tensor group its own
range; its ``frac`` is derived from the group's number of integer bits, so a
group shared by both widths (``w``, ``b``) keeps one range, as in the paper's
code (``NOIB``).
"""

from __future__ import annotations

import dataclasses
import functools

NO_QUANT = "fp32"


def parse_run_format(text: str, paper_bits: bool = False):
    """A ``fewbits.sim`` format object for ``text``, or ``None`` for ``fp32`` (no quantization).

    With ``paper_bits`` the widths of ``fixed``/``dfixed`` count no sign bit and
    saturate symmetrically with ties away from zero (the paper's Theano code).
    Raises ``fewbits.sim.FormatError`` on a malformed string.
    """
    from fewbits.sim import RNA, parse_format

    if isinstance(text, str) and text.strip().lower() == NO_QUANT:
        return None
    fmt = parse_format(text)
    if fmt.kind == "float" and fmt.exp == 8 and fmt.man == 23 and fmt.bias == 127:
        return None  # float32 products of float32 values: the unquantized baseline
    if fmt.kind not in ("fixed", "dfixed", "float"):
        from fewbits.sim import FormatError

        raise FormatError(f"bad run format {text!r}: accepted fixed:W:F, dfixed:W, float:E:M, aliases, or fp32")
    if paper_bits and fmt.kind in ("fixed", "dfixed"):
        fmt = dataclasses.replace(fmt, width=fmt.width + 1, symmetric=True, round=RNA)
    return fmt


@dataclasses.dataclass(frozen=True)
class Precision:
    """Propagation and update formats of a run (``None`` = unquantized float32)."""

    prop: object = None
    update: object = None

    @classmethod
    def parse(cls, prop: str = NO_QUANT, update: str = NO_QUANT, paper_bits: bool = False) -> "Precision":
        return cls(parse_run_format(prop, paper_bits), parse_run_format(update, paper_bits))

    @property
    def quantized(self) -> bool:
        return self.prop is not None

    @property
    def dynamic(self) -> bool:
        return any(f is not None and f.kind == "dfixed" for f in (self.prop, self.update))

    def widened(self, width: int) -> "Precision":
        """The same formats with every dynamic fixed point width set to ``width`` (range warm-up)."""

        def wide(f):
            if f is not None and f.kind == "dfixed":
                return dataclasses.replace(f, width=width)
            return f

        return Precision(wide(self.prop), wide(self.update))

    def describe(self) -> dict:
        return {"prop": fmt_str(self.prop), "update": fmt_str(self.update)}


def fmt_str(fmt) -> str:
    return NO_QUANT if fmt is None else str(fmt)


@functools.lru_cache(maxsize=4096)  # formats are immutable; every quantization asks for one
def group_format(base, int_bits: int | None):
    """The format of one tensor group: ``base`` itself, or for dynamic fixed point
    ``base`` at ``frac = width - sign - int_bits``."""
    if base is None or base.kind != "dfixed":
        return base
    sign = 1 if base.signed else 0
    return base.with_frac(base.width - sign - int(int_bits))


def int_bits_of(fmt) -> int:
    """Inverse of ``group_format``: integer bits (excluding the sign) of a fixed format."""
    sign = 1 if fmt.signed else 0
    return fmt.width - sign - fmt.frac
