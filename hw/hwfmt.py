"""What the hardware accepts of the ``fewbits.sim`` formats, and how codes map to bits.

Every rejection is a one-line ``FormatError`` raised before any hardware is
built, so the CLI and ``MacSpec.create()`` fail early and clearly.
"""

from __future__ import annotations

from amaranth.hdl import signed, unsigned
from fewbits.hw.packing import pack, unpack
from fewbits.sim import Accumulator, DynamicFixed, Fixed, Float, FormatError

MAX_OPERAND_WIDTH = 32
MAX_DIM = 32
MAX_ACC_WIDTH = 4096
SHIFT_WIDTH_MIN = 8


def is_fixed(fmt) -> bool:
    return isinstance(fmt, (Fixed, DynamicFixed))


def is_dynamic(fmt) -> bool:
    return isinstance(fmt, DynamicFixed)


def is_float(fmt) -> bool:
    return isinstance(fmt, Float)


def code_shape(fmt):
    """Amaranth shape of one code: signed for signed fixed point, raw bits otherwise."""
    if is_fixed(fmt):
        return signed(fmt.width) if fmt.signed else unsigned(fmt.width)
    if is_float(fmt):
        return unsigned(fmt.width)
    if isinstance(fmt, Accumulator):
        return signed(fmt.width)
    raise FormatError(f"bad format {fmt!r}: accepted fixed, dfixed, float, acc")


def to_bits(code: int, fmt) -> int:
    """Python int code (possibly negative) -> the unsigned bit pattern on a port (``hw.packing``)."""
    return pack([code], fmt.width)


def from_bits(bits: int, fmt) -> int:
    """Unsigned bit pattern -> the sim's integer code (two's complement for signed fixed, ``hw.packing``)."""
    return unpack(bits, fmt.width, 1, code_shape(fmt).signed)[0]


def check_operand(fmt, role: str):
    """Reject an operand/output/bias format the hardware does not build."""
    if is_fixed(fmt):
        if not 1 <= fmt.width <= MAX_OPERAND_WIDTH:
            raise FormatError(
                f"bad {role} format {fmt}: hardware accepts fixed-point widths 1..{MAX_OPERAND_WIDTH}")
        return
    if is_float(fmt):
        if fmt.width > MAX_OPERAND_WIDTH:
            raise FormatError(
                f"bad {role} format {fmt}: hardware accepts floats up to {MAX_OPERAND_WIDTH} bits (fp32)")
        if not fmt.subnormals:
            raise FormatError(
                f"bad {role} format {fmt}: hardware accepts only floats with subnormals=on")
        return
    raise FormatError(f"bad {role} format {fmt!r}: hardware accepts fixed, ufixed, dfixed or float formats")


def check_formats(a_fmt, b_fmt, out_fmt, acc_fmt, bias_fmt):
    """Reject combinations the hardware contract does not define (one line each)."""
    for fmt, role in ((a_fmt, "a"), (b_fmt, "b"), (out_fmt, "out"), (bias_fmt, "bias")):
        check_operand(fmt, role)
    if getattr(acc_fmt, "kind", None) == "facc":
        if not all(getattr(f, "kind", None) == "float" for f in (a_fmt, b_fmt, out_fmt, bias_fmt)):
            raise FormatError(f"bad formats for the float accumulator {acc_fmt}: hardware builds it with float "
                              "a, b, bias and out; accepted acc:W:F with fixed point")
        return False
    if not isinstance(acc_fmt, Accumulator):
        raise FormatError(f"bad acc format {acc_fmt!r}: accepted acc:W:F, or a float accumulator with float formats")
    if not 2 <= acc_fmt.width <= MAX_ACC_WIDTH:
        raise FormatError(f"bad acc format {acc_fmt}: hardware accepts accumulator widths 2..{MAX_ACC_WIDTH}")
    if is_fixed(a_fmt) != is_fixed(b_fmt):
        raise FormatError(
            f"bad operands {a_fmt} x {b_fmt}: hardware accepts fixed x fixed or float x float, not mixed")
    dyn = any(is_dynamic(f) for f in (a_fmt, b_fmt, out_fmt, bias_fmt))
    if dyn:
        if not is_fixed(out_fmt) or not is_fixed(bias_fmt) or not is_fixed(a_fmt):
            raise FormatError("bad formats: dynamic fixed point needs fixed-point a, b, bias and out")
        if not (is_dynamic(a_fmt) or is_dynamic(b_fmt)) and acc_fmt.frac != a_fmt.frac + b_fmt.frac:
            raise FormatError(
                f"bad acc format {acc_fmt} for dynamic fixed point: accepted an accumulator on the product "
                f"grid (frac {a_fmt.frac + b_fmt.frac}), where the runtime shifts are counted from")
    return dyn


def shift_width(acc_fmt, out_fmt) -> int:
    """Width of a signed runtime shift input between the accumulator and ``out_fmt`` (the output,
    or the bias for ``in_bias_shift``): covers every useful shift, at least 8 bits."""
    need = max(acc_fmt.width + 1, out_fmt.width + 1).bit_length() + 1
    return max(SHIFT_WIDTH_MIN, need)
