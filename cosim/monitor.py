"""Monitors: the design's results (``out_z``/``out_ovf`` whenever ``out_valid``) with their cycle.

``read_results`` parses what the harness wrote in stream mode; ``ResultMonitor``
samples the ports named in the manifest on every falling edge in port mode.
Both give the same ``Results`` (element codes as unsigned bit patterns).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fewbits.hw.design import Design
from fewbits.hw.packing import unpack
from .tbgen import out_layout


@dataclasses.dataclass
class Results:
    cycle: np.ndarray  # (E,) cycle in which out_valid was high
    z_bits: np.ndarray  # (E, R*C) unsigned bit patterns, hexio.UNKNOWN for x/z
    ovf: np.ndarray  # (E, R*C) bool
    unknown: np.ndarray  # (E,) some output bit was x/z


def read_results(path, design: Design) -> Results:
    from .hexio import decode_lines

    lay = out_layout(design)
    with open(path, "rb") as fh:
        data = fh.read()
    f = decode_lines(data, lay)
    n = design.port("z").element_count
    z = np.stack([f[f"z{i}"] for i in range(n)], axis=1) if len(f["cycle"]) else np.zeros((0, n), np.int64)
    ovf = f["ovf"] if len(f["cycle"]) else np.zeros((0, n), bool)
    unknown = (z < 0).any(axis=1) | f["ovf:unknown"] if len(f["cycle"]) else np.zeros(0, bool)
    return Results(f["cycle"], z, ovf, unknown)


class ResultMonitor:
    """cocotb monitor of port mode: records (cycle, out_z, out_ovf) whenever out_valid is 1."""

    def __init__(self, dut, design: Design):
        self.design = design
        self.clk = getattr(dut, design.port("clock").name)
        self.valid = getattr(dut, design.port("out_valid").name)
        self.z = getattr(dut, design.port("z").name)
        self.ovf = getattr(dut, design.port("ovf").name)
        self.samples: list[tuple[int, object, object]] = []

    async def run(self, cycles: int):
        from cocotb.triggers import FallingEdge

        fall = FallingEdge(self.clk)
        for t in range(cycles):
            await fall
            if str(self.valid.value) == "1":
                self.samples.append((t, self.z.value, self.ovf.value))

    def results(self) -> Results:
        z, o = self.design.port("z"), self.design.port("ovf")
        n, w = z.element_count, z.element_width
        E = len(self.samples)
        zb = np.zeros((E, n), dtype=np.int64)
        ov = np.zeros((E, o.width), dtype=bool)
        unk = np.zeros(E, dtype=bool)
        for e, (_, zv, ovv) in enumerate(self.samples):
            if not (zv.is_resolvable and ovv.is_resolvable):
                unk[e] = True
                zb[e] = -1
                continue
            zi, oi = int(zv), int(ovv)
            zb[e] = unpack(zi, w, n)
            ov[e] = unpack(oi, 1, o.width)
        return Results(np.array([s[0] for s in self.samples], dtype=np.int64), zb, ov, unk)
