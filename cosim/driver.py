"""Drivers: put a stimulus ``Table`` on the design's inputs, as a file or cycle by cycle.

``write_stimulus`` is the fast path (the harness plays the file, no Python per
cycle); ``TileDriver`` is the cocotb driver of port mode, writing the ports the
manifest names on every falling edge.
"""

from __future__ import annotations

import numpy as np

from fewbits.hw.design import Design
from fewbits.hw.packing import pack
from .schedule import FIRST, LAST, RST, VALID, Table
from .tbgen import stim_layout


def stimulus_columns(table: Table, design: Design) -> list[np.ndarray]:
    cols = [table.ctrl]
    cols += [table.a[:, i] for i in range(table.a.shape[1])]
    cols += [table.b[:, j] for j in range(table.b.shape[1])]
    cols += [table.bias[:, j] for j in range(table.bias.shape[1])]
    for role, col in (("shift", table.shift), ("bias_shift", table.bias_shift)):
        if design.port(role) is not None:
            cols.append(col)
    return cols


def write_stimulus(table: Table, design: Design, path) -> int:
    """Write ``table`` as the harness's stimulus file; returns its size in bytes."""
    from .hexio import encode_lines

    lay = stim_layout(design)
    data = encode_lines(stimulus_columns(table, design), [w for _, w in lay])
    with open(path, "wb") as fh:
        fh.write(data)
    return len(data)


def pack_rows(codes: np.ndarray, width: int) -> list[int]:
    """Rows of element codes -> one port value per row (``hw.packing``: element 0 in the low bits)."""
    return [pack(row, width) for row in codes.tolist()]


class TileDriver:
    """cocotb driver of port mode: one table row per cycle on the ports named in the manifest."""

    def __init__(self, dut, design: Design):
        self.dut, self.design = dut, design
        self.h = {role: getattr(dut, design.port(role).name)
                  for role in ("reset", "valid", "first", "last", "a", "b", "bias", "shift", "bias_shift")
                  if design.port(role) is not None}
        self.clk = getattr(dut, design.port("clock").name)

    async def run(self, table: Table):
        """Drive every row of ``table`` (row i during cycle i, written on the falling edge)."""
        from cocotb.triggers import FallingEdge

        d = self.design
        a = pack_rows(table.a, d.port("a").element_width)
        b = pack_rows(table.b, d.port("b").element_width)
        bias = pack_rows(table.bias, d.port("bias").element_width)
        shifts = {}  # role -> the port's two's-complement value per cycle
        for role, col in (("shift", table.shift), ("bias_shift", table.bias_shift)):
            if role in self.h:
                shifts[role] = pack_rows(col.reshape(-1, 1), d.port(role).width)
        ctrl = table.ctrl.tolist()
        h = self.h
        fall = FallingEdge(self.clk)
        for t in range(len(ctrl)):
            await fall
            c = ctrl[t]
            h["reset"].value = 1 if c & RST else 0
            h["valid"].value = 1 if c & VALID else 0
            h["first"].value = 1 if c & FIRST else 0
            h["last"].value = 1 if c & LAST else 0
            h["a"].value = a[t]
            h["b"].value = b[t]
            h["bias"].value = bias[t]
            for role, vals in shifts.items():
                h[role].value = vals[t]
