"""Element codes <-> one port word: the packing every vector port of a MacArray uses.

Element ``k`` of a port with element width ``w`` sits at bits ``[k*w +: w]``
(element 0 in the low bits); ``out_z`` element (i, j) is ``k = i*C + j``.  The
Amaranth simulator driver, the cocotb driver and the power vectors all pack
through here, so the three can never disagree on the layout.  Pure Python (no
Amaranth): it is imported inside cocotb testbenches too.
"""

from __future__ import annotations


def pack(codes, width: int) -> int:
    """Integer codes (negative ones in two's complement) -> one unsigned port value."""
    mask = (1 << width) - 1
    value = 0
    for k, c in enumerate(codes):
        value |= (int(c) & mask) << (k * width)
    return value


def unpack(value: int, width: int, n: int, signed: bool = False) -> list[int]:
    """One port value -> ``n`` element codes (two's complement when ``signed``)."""
    mask = (1 << width) - 1
    out = []
    for k in range(n):
        bits = (int(value) >> (k * width)) & mask
        if signed and bits >> (width - 1):
            bits -= 1 << width
        out.append(bits)
    return out


def element_index(i: int, j: int, cols: int) -> int:
    """Index of element (i, j) of an R x C result port (row-major: ``i*C + j``)."""
    return i * cols + j
