"""Activity-based dynamic energy per MAC: gate-level simulation of the synthesized netlist.

Flow: ``synth`` (target cmos) maps the design to generic gates and writes its
netlist as Yosys JSON; this module turns that netlist into a flat Verilog model
(one wire per net, one ``assign`` per gate, one register per ``$_DFF_P_``) with a
generated testbench that applies per-cycle vectors from a file and counts, in
the simulation, the toggles of every net (settled values sampled twice per
cycle, nets grouped by their capacitance so a ``$countones`` per group
suffices).  Toggles x capacitance x 1/2 VDD^2 (``power_model``) = energy; divided
by the MACs the design performed = energy per MAC.  Icarus runs it.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from fewbits.hw.eda import power_model as PM
from fewbits.hw.eda.power_vectors import WARMUP, cycles
from fewbits.hw.design import Design
from fewbits.hw.eda.synth import cache_dir, synthesize
from fewbits.hw.eda.synth_tools import SynthError, run, version, which

from fewbits.files import atomic_write_text


@dataclass
class GateNetlist:
    """A flattened netlist of generic gates (cmos target) or of a Liberty library's cells (Yosys JSON)."""

    top: str
    ports: dict      # name -> (direction, [bit ids or '0'/'1'/'x'])
    cells: list      # (type, {pin: bit}, {pin: direction})
    lib: object = None   # power_liberty.Library for Liberty-mapped netlists

    @classmethod
    def from_json(cls, path, lib=None) -> "GateNetlist":
        d = json.loads(Path(path).read_text())
        (top, mod), = [(k, v) for k, v in d["modules"].items() if v.get("attributes", {}).get("top")] or \
            list(d["modules"].items())[:1]
        ports = {n: (p["direction"], p["bits"]) for n, p in mod["ports"].items()}
        cells = []
        for c in mod["cells"].values():
            t = c["type"]
            if lib is None and t not in PM.C_PIN:
                raise SynthError(f"gate netlist has cell {t}: the power model knows {', '.join(PM.C_PIN)}")
            if lib is not None:
                cell = lib.cells.get(t)
                if cell is None or cell.unsupported or not cell.outputs:
                    why = "not in the library" if cell is None else (cell.unsupported or "no output pin")
                    raise SynthError(f"Liberty cell {t} cannot be simulated for power: {why}")
            cells.append((t, {p: b[0] for p, b in c["connections"].items()}, c["port_directions"]))
        return cls(top, ports, cells, lib)

    def _clock_pin(self, t):
        if self.lib is None:
            return "C" if t == "$_DFF_P_" else None
        ff = self.lib.cells[t].ff
        return ff[2].strip().lstrip("!").strip() if ff else None

    def is_ff(self, t) -> bool:
        return self._clock_pin(t) is not None

    def clock_bits(self) -> set:
        return {conn[self._clock_pin(t)] for t, conn, _ in self.cells if self.is_ff(t)}

    def net_energy(self) -> tuple[dict, dict]:
        """(bit -> fJ per toggle, bit -> driver type) for every driven, non-clock net."""
        driver: dict = {}
        for name, (d, bits) in self.ports.items():
            if d == "input":
                for b in bits:
                    if isinstance(b, int):
                        driver[b] = ("input", None)
        for t, conn, dirs in self.cells:
            for p, b in conn.items():
                if dirs[p] == "output" and isinstance(b, int):
                    driver[b] = (t, p)
        cap = defaultdict(float)
        internal = defaultdict(float)
        for b, (t, p) in driver.items():
            if self.lib is None:
                cap[b] += PM.C_DRIVER[t]
            elif t != "input":
                internal[b] += self.lib.cells[t].internal_fj.get(p, 0.0)
        for t, conn, dirs in self.cells:
            for p, b in conn.items():
                if dirs[p] == "input" and isinstance(b, int):
                    c_pin = PM.C_PIN[t][p] if self.lib is None else self.lib.cells[t].inputs.get(p, 0.0)
                    cap[b] += c_pin + PM.C_WIRE
        for name, (d, bits) in self.ports.items():
            if d == "output":
                for b in bits:
                    if isinstance(b, int):
                        cap[b] += PM.C_OUTPUT_PORT
        vdd = PM.VDD if self.lib is None else self.lib.vdd
        clocks = self.clock_bits()
        e = {b: 0.5 * cap[b] * vdd * vdd + internal[b] for b in driver if b not in clocks}
        return e, {b: t for b, (t, _) in driver.items() if b not in clocks}

    def clock_energy_per_cycle_fj(self) -> float:
        """Clock pins (+ wire) of every flip-flop switch twice a cycle (+ DFF internal nodes, generic model)."""
        if self.lib is None:
            n = sum(1 for t, _, _ in self.cells if self.is_ff(t))
            return 2 * PM.toggle_energy_fj(n * (PM.C_PIN["$_DFF_P_"]["C"] + PM.C_WIRE + PM.C_DFF_CLOCK_INTERNAL))
        c = sum(self.lib.cells[t].inputs.get(self._clock_pin(t), 0.0) + PM.C_WIRE for t, _, _ in self.cells if self.is_ff(t))
        return 2 * 0.5 * c * self.lib.vdd ** 2

    def model_verilog(self) -> tuple[list[str], list[str]]:
        """(primitives, module body): the flat model of the netlist's cells, outside and inside the testbench.

        Generic gates are one ``assign`` each.  A Liberty cell's combinational outputs are instances of one
        user-defined primitive per (cell type, pin) with the function's truth table (``power_liberty.udp``):
        one node per output in the simulator; the flip-flops are ``always`` blocks on their clock."""
        prims: dict = {}
        body: list[str] = []
        for k, (t, conn, _) in enumerate(self.cells):
            body += self._cell_verilog(k, t, conn, prims)
        if self.lib is None:
            return [], body
        from fewbits.hw.eda.power_liberty import udp

        return [udp(name, self.lib.cells[t].outputs[pin], ins) for (t, pin), (name, ins) in prims.items()], body

    def _cell_verilog(self, k, t, conn, prims) -> list[str]:
        if self.lib is None:
            if t == "$_DFF_P_":
                return [f"  reg q{k} = 1'b0; always @(posedge {_net(conn['C'])}) q{k} <= {_net(conn['D'])}; "
                        f"assign {_net(conn['Q'])} = q{k};"]
            return [f"  assign {_net(conn['Y'])} = " + _GATE[t].format(**{p: _net(b) for p, b in conn.items()}) + ";"]
        from fewbits.hw.eda.power_liberty import pins, to_verilog

        cell = self.lib.cells[t]
        pin_net = lambda p: _net(conn[p]) if p in conn else "1'b0"  # noqa: E731
        out = []
        names = {}
        if cell.ff:
            state, state_n, clk, nxt = cell.ff
            edge = "negedge" if clk.strip().startswith("!") else "posedge"
            out.append(f"  reg s{k} = 1'b0; always @({edge} {_net(conn[self._clock_pin(t)])}) s{k} <= "
                       f"{to_verilog(nxt, pin_net)};")
            names[state] = f"s{k}"
            if state_n:
                names[state_n] = f"(~s{k})"
        for pin, func in cell.outputs.items():
            if pin not in conn:
                continue
            ins = pins(func)
            if cell.ff or not 0 < len(ins) <= UDP_MAX_INPUTS:
                expr = to_verilog(func, lambda p: names.get(p) or pin_net(p))
                out.append(f"  assign {_net(conn[pin])} = {expr};")
                continue
            name, _ = prims.setdefault((t, pin), (f"cell{len(prims)}", ins))
            out.append(f"  {name} c{k}_{len(out)} ({_net(conn[pin])}, {', '.join(pin_net(p) for p in ins)});")
        return out


#: a cell output reading more pins is an expression (a table has 3^n rows)
UDP_MAX_INPUTS = 6

_GATE = {
    "$_NOT_": "~{A}", "$_BUF_": "{A}", "$_AND_": "{A} & {B}", "$_NAND_": "~({A} & {B})",
    "$_OR_": "{A} | {B}", "$_NOR_": "~({A} | {B})", "$_XOR_": "{A} ^ {B}", "$_XNOR_": "~({A} ^ {B})",
    "$_MUX_": "{S} ? {B} : {A}",
}


def _net(b) -> str:
    return f"n{b}" if isinstance(b, int) else {"0": "1'b0", "1": "1'b1"}.get(b, "1'bx")


def testbench(nl: GateNetlist, in_order: list[str], n_vectors: int, groups: list[list[int]],
              vec_file: str, trace_file: str | None) -> str:
    """Flat Verilog: the netlist + stimulus from ``vec_file`` + one toggle counter per group of nets.

    Settled values are sampled after the inputs change and, when the design has flip-flops, again after
    the clock edge; without flip-flops nothing changes at the edge, so one sample a cycle counts the same."""
    bits_in = {n: b for n, (d, b) in nl.ports.items() if d == "input"}
    clocks = nl.clock_bits()
    W = max(1, sum(len(bits_in[p]) for p in in_order))
    nets = set()
    for _, bits in nl.ports.values():
        nets.update(b for b in bits if isinstance(b, int))
    for _, conn, _ in nl.cells:
        nets.update(b for b in conn.values() if isinstance(b, int))
    prims, body = nl.model_verilog()
    L = ["`timescale 1ns/1ps", *prims, "module tb;", "  reg clk = 1'b0;", f"  reg [{W - 1}:0] vec [0:{n_vectors - 1}];",
         f"  reg [{W - 1}:0] cur = {W}'d0;", "  integer i, f;"]
    L += [f"  wire n{b};" for b in sorted(nets)]
    off = 0
    driven = set()
    for p in in_order:
        for j, b in enumerate(bits_in[p]):
            if isinstance(b, int) and b not in driven:
                L.append(f"  assign n{b} = cur[{off + j}];")
                driven.add(b)
        off += len(bits_in[p])
    for b in clocks - driven:
        L.append(f"  assign n{b} = clk;")
        driven.add(b)
    L += body
    for g, bits in enumerate(groups):
        w = len(bits)
        L.append(f"  wire [{w - 1}:0] g{g} = {{{', '.join(f'n{b}' for b in bits)}}};")
        L.append(f"  reg [{w - 1}:0] p{g} = {w}'d0, d{g}; integer t{g} = 0;")
    outs = [b for n, (d, bits) in nl.ports.items() if d == "output" for b in reversed(bits)]
    L.append("  task sample; begin")
    for g in range(len(groups)):
        # the XOR goes through a register first: Icarus 11's $countones of an expression is wrong
        L.append(f"    d{g} = g{g} ^ p{g}; if (i >= {WARMUP}) t{g} = t{g} + $countones(d{g}); p{g} = g{g};")
    L.append("  end endtask")
    L.append("  initial begin")
    L.append(f'    $readmemh("{vec_file}", vec);')
    if trace_file:
        L.append(f'    f = $fopen("{trace_file}", "w");')
    L.append(f"    for (i = 0; i < {n_vectors}; i = i + 1) begin")
    L.append("      cur = vec[i]; clk = 1'b0; #4; sample;")
    L.append("      #1 clk = 1'b1; #4;" + (" sample;" if clocks else ""))
    if trace_file and outs:
        L.append(f'      $fwrite(f, "%h\\n", {{{", ".join(_net(b) for b in outs)}}});')
    L.append("      #1;")
    L.append("    end")
    for g in range(len(groups)):
        L.append(f'    $display("TOG {g} %0d", t{g});')
    if trace_file:
        L.append("    $fclose(f);")
    L.append('    $display("DONE");')
    L.append("    $finish;")
    L.append("  end")
    L.append("endmodule")
    return "\n".join(L) + "\n"


def simulate(nl: GateNetlist, seq: list[dict], work: Path, timeout: float | None, trace: bool = False) -> dict:
    """Run the generated testbench on ``seq``; returns toggles per net group and the groups."""
    iverilog, vvp = which("iverilog"), which("vvp")
    cap, drv = nl.net_energy()
    clk_ports = {n for n, (d, bits) in nl.ports.items() if d == "input" and set(bits) & nl.clock_bits()}
    in_order = [n for n, (d, _) in nl.ports.items() if d == "input" and n not in clk_ports]
    groups_by_key = defaultdict(list)
    for b in sorted(cap):
        groups_by_key[(drv[b], round(cap[b], 9))].append(b)
    keys = sorted(groups_by_key)
    groups = [groups_by_key[k] for k in keys]
    widths = {n: len(nl.ports[n][1]) for n in in_order}
    W = max(1, sum(widths.values()))
    lines = []
    for v in seq:
        word, off = 0, 0
        for n in in_order:
            word |= (int(v.get(n, 0)) & ((1 << widths[n]) - 1)) << off
            off += widths[n]
        lines.append(f"{word:0{(W + 3) // 4}x}")
    work.mkdir(parents=True, exist_ok=True)
    (work / "vectors.hex").write_text("\n".join(lines) + "\n")
    tb = testbench(nl, in_order, len(seq), groups, "vectors.hex", "trace.hex" if trace else None)
    (work / "tb.v").write_text(tb)
    run([iverilog, "-g2012", "-o", "tb.vvp", "tb.v"], work / "iverilog.log", work, timeout, "power: compiling the gate netlist")
    run([vvp, "-n", "tb.vvp"], work / "vvp.log", work, timeout, "power: gate-level simulation")
    out = (work / "vvp.log").read_text(errors="replace")
    if "DONE" not in out:
        raise SynthError(f"power: the simulation stopped before the end (log: {work / 'vvp.log'})")
    tog = {int(g): int(n) for g, n in re.findall(r"^TOG (\d+) (\d+)$", out, re.M)}
    if len(tog) != len(groups):
        raise SynthError(f"power: the simulation reported {len(tog)} of {len(groups)} toggle counters")
    res = {"groups": [{"driver": k[0], "fj_per_toggle": k[1], "nets": len(g), "toggles": tog[i]}
                      for i, (k, g) in enumerate(zip(keys, groups))]}
    if trace:
        res["trace"] = [int(x, 16) for x in (work / "trace.hex").read_text().split()]
    return res


def energy(nl: GateNetlist, sim: dict, counted_cycles: int, macs: int, clock_mhz: float, model: str) -> dict:
    """Energy figures (fJ) from toggle counts and the per-net energies of ``nl`` (generic model or Liberty)."""
    data = sum(g["toggles"] * g["fj_per_toggle"] for g in sim["groups"])
    toggles = sum(g["toggles"] for g in sim["groups"])
    by_type = defaultdict(float)
    tog_type = defaultdict(int)
    for g in sim["groups"]:
        by_type[g["driver"]] += g["toggles"] * g["fj_per_toggle"]
        tog_type[g["driver"]] += g["toggles"]
    n_ff = sum(1 for t, _, _ in nl.cells if nl.is_ff(t))
    clock = counted_cycles * nl.clock_energy_per_cycle_fj()
    total = data + clock
    per_cycle = total / counted_cycles if counted_cycles else 0.0
    return {
        "model": model,
        "toggles": toggles, "toggles_per_mac": toggles / macs,
        "energy_data_fj": data, "energy_clock_fj": clock, "energy_total_fj": total,
        "energy_per_mac_pj": total / macs / 1000.0,
        "energy_data_per_mac_pj": data / macs / 1000.0,
        "clock_mhz": clock_mhz,
        "power_mw": per_cycle * 1e-15 * clock_mhz * 1e6 * 1e3,
        "energy_by_driver_fj": dict(by_type), "toggles_by_driver": dict(tog_type),
        "flip_flops": n_ff,
    }


def estimate(design: Design, ops_list, *, spec=None, max_cycles: int = 2000, clock_mhz: float | None = 100.0,
             timeout: float | None = 600, use_cache: bool = True, trace: bool = False, liberty=None) -> dict:
    """Synthesize ``design`` to gates, simulate ``ops_list`` on it and return the power record."""
    if spec is None:
        spec = design.spec
        if spec is None:
            raise SynthError(f"{design.name}: power needs the design's formats (a manifest from `fewbits verilog`)")
    if liberty is not None:
        from fewbits.hw.eda.power_liberty import load

        lib = load(liberty)
        syn = synthesize(design, "liberty", liberty=liberty, timeout=timeout, use_cache=use_cache)
        from fewbits.hw.eda.tech import timing

        tech = timing.sidecar(liberty)   # a fewbits-characterized library names its model
        model = tech["model"] if tech else f"liberty:{lib.name}"
        model_desc = {"name": model, "file": str(liberty), "vdd": lib.vdd, "c_wire_ff": PM.C_WIRE,
                      "c_output_port_ff": PM.C_OUTPUT_PORT,
                      "energy": "1/2 (sum of load pin capacitances + wire) VDD^2 + mean internal_power table "
                                "energy of the driving output pin, per toggle; clock pins twice per cycle"}
    else:
        lib = None
        syn = synthesize(design, "cmos", timeout=timeout, use_cache=use_cache)
        model, model_desc = PM.NAME, PM.describe()
    clock_source = "given"
    if clock_mhz is None:       # the design's own maximum clock, when its library has timing
        clock_mhz, clock_source = syn["figures"].get("fmax_mhz"), "fmax"
        if not clock_mhz:
            raise SynthError(f"{design.name}: no maximum clock (the library has no timing): give a clock")
    nl = GateNetlist.from_json(syn["netlist"], lib)
    seq, macs = cycles(nl.ports, spec, ops_list, max_cycles, manifest=design.manifest)
    counted = len(seq) - WARMUP
    key = hashlib.sha256(json.dumps([syn["key"], seq], sort_keys=True).encode()).hexdigest()[:24]
    work = cache_dir() / "power" / key
    t0 = time.perf_counter()
    sim = simulate(nl, seq, work, timeout, trace=trace)
    seconds = time.perf_counter() - t0
    rec = {
        "design": design.name, "top": design.top, "design_hash": design.hash, "synth_key": syn["key"],
        "spec": spec.to_dict(), "formats": {"a": str(spec.a_fmt), "b": str(spec.b_fmt), "out": str(spec.out_fmt)},
        "pe_count": design.pe_count,
        "vectors": [o.source for o in ops_list], "vector_notes": sorted({n for o in ops_list for n in o.notes}),
        "cycles": counted, "macs": macs,
        "cells": syn["figures"]["cells"], "transistors": syn["figures"].get("transistors"),
        "area": syn["figures"].get("area"),
        "timing": {k: syn["figures"][k] for k in ("delay_ps", "register_ps", "clock_ps", "fmax_mhz")
                   if k in syn["figures"]},
        "clock_source": clock_source,
        "tools": {"yosys": syn["tools"]["yosys"], "iverilog": version("iverilog")},
        "power_model": model_desc,
        "figures": energy(nl, sim, counted, macs, clock_mhz, model),
        "groups": sim["groups"],
        "seconds": round(seconds, 3),
        "work": str(work),
    }
    if trace:
        rec["trace"] = sim["trace"]
        rec["sequence"] = seq
    return rec


def report(rec: dict) -> str:
    """A few lines a user reads: toggles and energy per MAC, power at the clock, and the model."""
    f = rec["figures"]
    return "\n".join([
        f"{rec['design']}: {rec['macs']} MACs in {rec['cycles']} cycles ({', '.join(rec['vectors'][:3])}"
        f"{' ...' if len(rec['vectors']) > 3 else ''})",
        f"  toggles/MAC {f['toggles_per_mac']:.1f}   energy/MAC {f['energy_per_mac_pj']:.4f} pJ "
        f"(data {f['energy_data_per_mac_pj']:.4f} pJ + clock)   power {f['power_mw']:.3f} mW at {f['clock_mhz']:g} MHz"
        + (" (its fmax)" if rec.get("clock_source") == "fmax" else ""),
        f"  model {f['model']}" + (f" (45 nm-like, VDD {PM.VDD} V; see docs/HARDWARE.md)" if f["model"] == PM.NAME
                                   else f" (pin capacitances and internal power of {rec['power_model'].get('file')})"),
    ])


def write_record(rec: dict, path: Path) -> None:
    atomic_write_text(path, json.dumps({k: v for k, v in rec.items() if k not in ("trace", "sequence")}, indent=1) + "\n")
