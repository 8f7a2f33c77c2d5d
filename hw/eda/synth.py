"""Yosys synthesis of a design (manifest + Verilog, or any Verilog + top) into a JSON record.

Targets: ``cmos`` (generic gates: cells by type, ``stat -tech cmos`` transistors,
logic depth via ``ltp -noff``), ``ice40`` / ``xilinx`` / ``ecp5`` (LUTs, carries,
FFs, DSPs, with or without DSP inference) and ``liberty`` (a user's standard-cell
library: area in its units).  Every record carries the design hash, tool versions,
the exact Yosys script and every figure; it is cached by design hash + target +
options so a sweep re-runs nothing.  A log without Yosys's final statistics is an
error (``synth_parse``), never a zero.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from fewbits.hw.design import Design, sha_parts
from fewbits.hw.eda.synth_parse import parse_ltp, parse_stat
from fewbits.hw.eda.synth_tools import SynthError, run, tail, version, which

from fewbits.files import atomic_write_text
from fewbits.files import (
    cache_root as cache_dir,  # the one cache rule; synth_parts/synth_fmax/power import it from here
)

TARGETS = ("cmos", "ice40", "xilinx", "ecp5", "liberty")
FPGA_TARGETS = ("ice40", "xilinx", "ecp5")
RECORD_VERSION = 1
CMOS_GATES = "AND,NAND,OR,NOR,XOR,XNOR,MUX"   # yosys 0.23 `abc -g` names (NOT/BUF are always allowed)

# FPGA primitive -> resource class (what a designer budgets)
_RESOURCES = {
    "luts": re.compile(r"^(SB_LUT4|LUT[1-6]|LUT4)$"),
    "carries": re.compile(r"^(SB_CARRY|CARRY4|CARRY8|CCU2C)$"),
    "ffs": re.compile(r"^(SB_DFF\w*|FD[RSCP]E?|FD\w*|TRELLIS_FF)$"),
    "dsps": re.compile(r"^(SB_MAC16|DSP48E1|DSP48E2|MULT18X18D|ALU54B)$"),
    "muxes": re.compile(r"^(MUXF[78]|PFUMX|L6MUX21)$"),
    "brams": re.compile(r"^(SB_RAM40_4K\w*|RAMB\w+|DP16KD|PDPW16KD)$"),
}
DSP_CELLS = {"ice40": "SB_MAC16", "xilinx": "DSP48E1", "ecp5": "MULT18X18D"}


# ---------------------------------------------------------------- scripts

def script(design: Design, target: str, dsp: bool = True, liberty: Path | None = None) -> str:
    """The exact Yosys script for ``target`` (recorded verbatim in the result)."""
    if target not in TARGETS:
        raise SynthError(f"unknown target {target!r}: accepted {', '.join(TARGETS)}")
    reads = [f"read_verilog {'-sv ' if s.suffix == '.sv' else ''}\"{s}\"" for s in design.sources]
    T = design.top
    lines = []
    if target == "liberty":
        if liberty is None:
            raise SynthError("target liberty needs --liberty FILE")
        lines.append(f'read_liberty -lib "{liberty}"')
    lines += reads + [f"hierarchy -check -top {T}"]
    # no share: Yosys's SAT resource sharing finds nothing to share in these datapaths (the fixed,
    # dfixed and exact-float MACs of the demo count the same transistors with and without it,
    # measured here) but ran >20 min and 12 GB on a float-accumulator PE before it was stopped
    # (synth -noshare; synth_ice40 has no such flag: its coarse section is run here without it)
    if target == "cmos":
        lines += [
            f"synth -flatten -noshare -top {T}",
            "dfflegalize -cell $_DFF_P_ 01",   # enables / sync resets become gates: one FF type
            f"abc -g {CMOS_GATES}",
            "opt_clean -purge",
            "stat -tech cmos",
            "ltp -noff",
            "write_json netlist.json",
        ]
    elif target == "liberty":
        from fewbits.hw.eda.tech import timing

        tech = timing.sidecar(liberty)   # a fewbits-characterized library: delay-driven abc + stime
        lines += [
            f"synth -flatten -noshare -top {T}",
            f'dfflibmap -liberty "{liberty}"',
            *(timing.abc_lines(liberty, tech) if tech and tech.get("timing") else [f'abc -liberty "{liberty}"']),
            "opt_clean -purge",
            f'stat -liberty "{liberty}"',
            "write_json netlist.json",
        ]
    elif target == "ice40":  # synth_ice40 with its coarse section run here, without share (see above)
        cmd = f"synth_ice40 -top {T}{' -dsp' if dsp else ''}"
        lines += [f"{cmd} -run begin:coarse", *ice40_coarse(dsp), f"{cmd} -run map_ram:", "stat"]
    else:
        opt = "" if dsp else " -nodsp"
        # a component's cost: no I/O buffers or clock buffer (they belong to the chip, not the MAC)
        extra = " -flatten -noiopad -noclkbuf" if target == "xilinx" else ""
        lines += [f"synth_{target} -top {T}{extra}{opt}", "stat"]
    return "\n".join(lines) + "\n"


# Yosys 0.23's `synth_ice40` "coarse:" section (``yosys -h synth_ice40``) without its ``share``;
# a test compares it with the installed Yosys's help, so an upgrade that changes it is caught
_ICE40_DSP = ["techmap -map +/mul2dsp.v -map +/ice40/dsp_map.v -D DSP_A_MAXWIDTH=16 -D DSP_B_MAXWIDTH=16 "
              "-D DSP_A_MINWIDTH=2 -D DSP_B_MINWIDTH=2 -D DSP_Y_MINWIDTH=11 -D DSP_NAME=$__MUL16X16",
              "select a:mul2dsp", "setattr -unset mul2dsp", "opt_expr -fine", "wreduce", "select -clear",
              "ice40_dsp", "chtype -set $mul t:$__soft_mul"]


def ice40_coarse(dsp: bool) -> list[str]:
    return ["opt_expr", "opt_clean", "check", "opt -nodffe -nosdff", "fsm", "opt", "wreduce", "peepopt",
            "opt_clean", "techmap -map +/cmp2lut.v -D LUT_WIDTH=4", "opt_expr", "opt_clean", "memory_dff",
            "wreduce t:$mul", *(_ICE40_DSP if dsp else []), "alumacc", "opt", "memory -nomap", "opt_clean"]


def _figures(target: str, log: str) -> dict:
    st = parse_stat(log, need_transistors=(target == "cmos"), need_area=(target == "liberty"))
    fig = dict(st)
    if target == "cmos":
        fig["depth"] = parse_ltp(log)
        fig["ffs"] = sum(n for t, n in st["cells_by_type"].items() if "DFF" in t)
        fig["gates"] = fig["cells"] - fig["ffs"]
    elif target in FPGA_TARGETS:
        for k, rx in _RESOURCES.items():
            fig[k] = sum(n for t, n in st["cells_by_type"].items() if rx.match(t))
    if fig["cells"] <= 0:
        raise SynthError("Yosys reports 0 cells: the design was optimized away (outputs unconnected?)")
    return fig


def _key(design: Design, target: str, text: str, liberty: Path | None) -> str:
    lib = Path(liberty).read_bytes() if liberty else b""
    if liberty:   # a characterized library's sidecars (model, register overhead, constraints) shape the record
        from fewbits.hw.eda.tech import timing

        lib += json.dumps(timing.sidecar(liberty), sort_keys=True).encode() + timing.constraints(liberty)
    return sha_parts(f"v{RECORD_VERSION}", design.hash, target, text, lib, version("yosys"))[:24]


def _reusable(rec_path: Path) -> dict | None:
    """The cached record, unless it is unreadable or the netlist it points to has gone (then: redo it)."""
    try:
        rec = json.loads(rec_path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or "figures" not in rec:
        return None
    if rec.get("netlist") and not Path(rec["netlist"]).is_file():
        return None
    return rec


def synthesize(design: Design, target: str = "cmos", *, dsp: bool = True, liberty=None,
               timeout: float | None = 600, use_cache: bool = True) -> dict:
    """Run Yosys for ``target`` and return the record (cached by design hash + target + options)."""
    if liberty is not None:
        liberty = Path(liberty).resolve()
        if not liberty.is_file():
            raise SynthError(f"{liberty}: Liberty file not found (accepted: a readable .lib file)")
    yosys = which("yosys")
    if target in ("cmos", "liberty"):
        which("yosys-abc")
    text = script(design, target, dsp, liberty)
    key = _key(design, target, text, liberty)
    root = cache_dir() / "synth"
    rec_path, work = root / f"{key}.json", root / "work" / key
    if use_cache and (rec := _reusable(rec_path)) is not None:
        rec["cached"] = True
        return rec
    work.mkdir(parents=True, exist_ok=True)
    (work / "script.ys").write_text(text)
    log = work / "yosys.log"
    t0 = time.perf_counter()
    run([yosys, "-s", "script.ys"], log, work, timeout, f"synthesis of {design.name} ({target})")
    seconds = time.perf_counter() - t0
    try:
        fig = _figures(target, log.read_text(errors="replace"))
    except SynthError as e:
        raise SynthError(f"synthesis of {design.name} ({target}): {e} (log: {log})", tail(log), log) from e
    rec = {
        "record_version": RECORD_VERSION,
        "key": key,
        "design": design.name, "top": design.top, "design_hash": design.hash,
        "sources": [str(s) for s in design.sources],
        "target": target, "dsp": dsp if target in FPGA_TARGETS else None,
        "liberty": str(liberty) if liberty else None,
        "spec": design.spec.to_dict() if design.spec is not None else None,
        "formats": design.formats(),
        "pe_count": design.pe_count,
        "tools": {"yosys": version("yosys")},
        "figures": fig,
        "per_pe": per_pe(fig, design.pe_count),
        "script": text,
        "seconds": round(seconds, 3),
        "log": str(log),
        "netlist": str(work / "netlist.json") if target in ("cmos", "liberty") else None,
    }
    if target == "cmos":
        rec["depth_note"] = "cells on the longest combinational path (ltp -noff), FFs cut paths"
    if target == "liberty":
        rec["area_units"] = "Liberty area units (usually um^2)"
        from fewbits.hw.eda.tech import timing

        if (tech := timing.sidecar(liberty)) is not None:
            rec["model"] = tech["model"]
            fig["area_um2"] = fig.get("area")
            fig.update(timing.clock(log.read_text(errors="replace"), tech, fig["cells_by_type"]))
    atomic_write_text(rec_path, json.dumps(rec, indent=1) + "\n")
    rec["cached"] = False
    return rec


_SCALAR = ("cells", "transistors", "gates", "ffs", "luts", "carries", "dsps", "muxes", "brams", "area")


def per_pe(fig: dict, n: int) -> dict:
    """Whole-array figures divided by the number of processing elements (depth is not divisible)."""
    return {k: fig[k] / n for k in _SCALAR if k in fig}


# ---------------------------------------------------------------- reporting

_COLS = [("cells", "cells"), ("transistors", "transistors"), ("depth", "depth"), ("luts", "LUTs"),
         ("carries", "carry"), ("ffs", "FFs"), ("dsps", "DSPs"), ("area", "area"), ("fmax_mhz", "Fmax MHz")]


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}" if v != int(v) or abs(v) < 1e6 else f"{v:.3g}"
    return str(v)


def table(records: list[dict]) -> str:
    """A one-screen text table of records (one row per design/part and target)."""
    rows = [["design", "target", *(h for _, h in _COLS), "per PE"]]
    for r in records:
        f = r["figures"]
        tgt = r["target"] + ("" if r.get("dsp") in (None, True) else " -nodsp")
        main = "transistors" if "transistors" in f else ("area" if "area" in f else "luts")
        pe = r.get("per_pe", {}).get(main)
        rows.append([r.get("part") or r["design"], tgt, *(_fmt(f.get(k)) for k, _ in _COLS),
                     f"{pe:.0f} {main}" if pe is not None and r.get("pe_count", 1) > 1 else "-"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
           for row in rows]
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)
