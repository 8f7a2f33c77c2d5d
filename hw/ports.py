"""The ports of a MacArray for a ``MacSpec``: the one place their widths and meaning are computed.

``MacArray`` builds its ``amaranth.lib.wiring`` signature from this list, the
manifest is generated from that signature (widths and directions) annotated
with the roles, formats and packing given here, and the co-simulation reads
the shift port ranges here.  Nothing else multiplies a width by a count.
"""

from __future__ import annotations

import dataclasses

from fewbits.hw import hwfmt


@dataclasses.dataclass(frozen=True)
class PortInfo:
    """One port of the generated top: direction, total width, role and how its elements are packed."""

    name: str
    direction: str            # "input" | "output"
    width: int
    role: str
    element_width: int
    element_count: int = 1
    signed: bool = False      # the elements are two's complement codes
    format: str | None = None
    index: str | None = None  # which (i, j) element k is
    order: str | None = None  # the packing, in words
    sampled_with: str | None = None
    description: str = ""


def _signed_fmt(fmt) -> bool:
    return fmt.kind in ("fixed", "dfixed") and fmt.signed


def shift_widths(spec) -> tuple[int, int] | None:
    """(in_shift, in_bias_shift) widths of a dynamic design, None for a static one."""
    if not spec.dynamic:
        return None
    return hwfmt.shift_width(spec.acc_fmt, spec.out_fmt), hwfmt.shift_width(spec.acc_fmt, spec.bias_fmt)


def shift_range(spec, name: str) -> tuple[int, int]:
    """[lo, hi] of the signed runtime shift port ``name`` (``in_shift`` or ``in_bias_shift``)."""
    w = shift_widths(spec)[("in_shift", "in_bias_shift").index(name)]
    return -(1 << (w - 1)), (1 << (w - 1)) - 1


def _vector(name, role, fmt, count, order, index, sampled_with=None, extra=""):
    w = fmt.width
    return PortInfo(name, "input" if name.startswith("in_") else "output", count * w, role, w, count,
                    _signed_fmt(fmt), str(fmt), index, order + extra, sampled_with)


def array_ports(spec) -> tuple[PortInfo, ...]:
    """Every port of the exported MacArray top, in the order a testbench lists them (clock first)."""
    R, C = spec.rows, spec.cols
    out = [
        PortInfo("clk", "input", 1, "clock", 1, description="rising edge"),
        PortInfo("rst", "input", 1, "reset", 1, description="synchronous, active high"),
        PortInfo("in_valid", "input", 1, "valid", 1, description="one K step this cycle"),
        PortInfo("in_first", "input", 1, "first", 1, description="k = 0: accumulators start from the bias"),
        PortInfo("in_last", "input", 1, "last", 1, description="k = K-1: the tile is complete"),
        _vector("in_a", "a", spec.a_fmt, R, "element i (row i of A, column k) at bits [i*w +: w]", "i"),
        _vector("in_b", "b", spec.b_fmt, C, "element j (row k of B, column j) at bits [j*w +: w]", "j"),
        _vector("in_bias", "bias", spec.bias_fmt, C, "element j (bias of column j) at bits [j*w +: w]", "j",
                "in_first", "; sampled with in_first"),
    ]
    widths = shift_widths(spec)
    if widths is not None:
        sw, bw = widths
        out.append(PortInfo("in_shift", "input", sw, "shift", sw, 1, True, f"signed:{sw}",
                            sampled_with="in_first",
                            description="two's complement fa + fb - fo of the current ranges; sampled with "
                                        "in_first"))
        out.append(PortInfo("in_bias_shift", "input", bw, "bias_shift", bw, 1, True, f"signed:{bw}",
                            sampled_with="in_first",
                            description="two's complement fa + fb - fbias (the bias's own current range): the "
                                        "bias code is shifted left by it onto the accumulator (right and "
                                        "floored, with a sticky bit, when negative); sampled with in_first"))
    out += [
        PortInfo("out_valid", "output", 1, "out_valid", 1, description="one-cycle pulse `latency` cycles after "
                                                                        "in_last"),
        _vector("out_z", "z", spec.out_fmt, R * C, "element (i, j) at index i*C + j, bits [(i*C + j)*w +: w]",
                f"i*{C}+j"),
        PortInfo("out_ovf", "output", R * C, "ovf", 1, R * C, index=f"i*{C}+j",
                 order="flag (i, j) at bit i*C + j"),
    ]
    return tuple(out)
