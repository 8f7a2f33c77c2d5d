"""Verilog export of a MacArray plus its JSON manifest, both generated from the same objects.

The manifest (``<top>.json``) is what a testbench or user needs to drive the
module without reading Python: shape, latency, formats and every port's role,
width and element packing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from fewbits.sim import MacSpec

from fewbits.files import atomic_write_text

MANIFEST_VERSION = 1

# Verilator -Wall warnings that Amaranth's Verilog back end produces by construction and that
# are not design issues: operand widths follow Verilog's context sizing (WIDTHEXPAND/TRUNC),
# unused slices of internal nets (UNUSEDSIGNAL), initial values of always @* variables
# (PROCASSINIT), one file holding the submodules (DECLFILENAME).  Waived in the file itself with
# Verilator's documented ``lint_off`` comments, so ``verilator --lint-only -Wall <top>.v`` is clean.
LINT_WAIVERS = ("WIDTHEXPAND", "WIDTHTRUNC", "UNUSEDSIGNAL", "PROCASSINIT", "DECLFILENAME")


def _port(name, direction, width, role, element_width=None, element_count=1, order=None, fmt=None, desc="",
          index=None, sampled_with=None):
    """One port; ``index`` says which (i, j) element k is: element k sits at bits [k*w +: w]."""
    return {
        "name": name, "direction": direction, "width": width, "role": role,
        "element_width": element_width if element_width is not None else width,
        "element_count": element_count, "order": order, "index": index, "signed": fmt is not None and (
            fmt.startswith("signed") or fmt.startswith("fixed") or fmt.startswith("dfixed")),
        "format": fmt, "sampled_with": sampled_with, "description": desc,
    }


def ports(array) -> list[dict]:
    """Every port of the generated top, in the order a testbench would list them."""
    s = array.spec
    R, C = s.rows, s.cols
    wa, wb, wbias, wo = s.a_fmt.width, s.b_fmt.width, s.bias_fmt.width, s.out_fmt.width
    out = [
        _port("clk", "input", 1, "clock", desc="rising edge"),
        _port("rst", "input", 1, "reset", desc="synchronous, active high"),
        _port("in_valid", "input", 1, "valid", desc="one K step this cycle"),
        _port("in_first", "input", 1, "first", desc="k = 0: accumulators start from the bias"),
        _port("in_last", "input", 1, "last", desc="k = K-1: the tile is complete"),
        _port("in_a", "input", R * wa, "a", wa, R, "element i (row i of A, column k) at bits [i*w +: w]",
              str(s.a_fmt), index="i"),
        _port("in_b", "input", C * wb, "b", wb, C, "element j (row k of B, column j) at bits [j*w +: w]",
              str(s.b_fmt), index="j"),
        _port("in_bias", "input", C * wbias, "bias", wbias, C,
              "element j (bias of column j) at bits [j*w +: w]; sampled with in_first", str(s.bias_fmt),
              index="j", sampled_with="in_first"),
    ]
    if array.dynamic:
        sw = array.unit.shift_width
        out.append(_port("in_shift", "input", sw, "shift", sw, 1, None, f"signed:{sw}",
                         "two's complement fa + fb - fo of the current ranges; sampled with in_first",
                         sampled_with="in_first"))
        bw = array.unit.bias_shift_width
        out.append(_port("in_bias_shift", "input", bw, "bias_shift", bw, 1, None, f"signed:{bw}",
                         "two's complement fa + fb - fbias (the bias's own current range): the bias code is "
                         "shifted left by it onto the accumulator (right and floored, with a sticky bit, when "
                         "negative); sampled with in_first", sampled_with="in_first"))
    out += [
        _port("out_valid", "output", 1, "out_valid", desc=f"one-cycle pulse {array.latency} cycles after in_last"),
        _port("out_z", "output", R * C * wo, "z", wo, R * C,
              "element (i, j) at index i*C + j, bits [(i*C + j)*w +: w]", str(s.out_fmt), index=f"i*{C}+j"),
        _port("out_ovf", "output", R * C, "ovf", 1, R * C, "flag (i, j) at bit i*C + j", index=f"i*{C}+j"),
    ]
    return out


def manifest(array, top: str) -> dict:
    """The machine-readable contract of ``array`` exported as module ``top``."""
    import amaranth

    s = array.spec
    return {
        "manifest_version": MANIFEST_VERSION,
        "top": top,
        "rows": s.rows,
        "cols": s.cols,
        "k_max": s.k_max,
        "latency": array.latency,
        "dynamic_shift": array.dynamic,
        "formats": {"a": str(s.a_fmt), "b": str(s.b_fmt), "acc": str(s.acc_fmt),
                    "bias": str(s.bias_fmt), "out": str(s.out_fmt)},
        "spec": s.to_dict(),
        "spec_key": s.key(),
        "ports": ports(array),
        "lint_waivers": list(LINT_WAIVERS),
        "generator": {"fewbits_hw": "fewbits.hw.export", "amaranth": amaranth.__version__},
    }


_atomic_write = atomic_write_text


def verilog(component_or_spec, out_dir, name: str = "mac_array") -> dict:
    """Write ``out_dir/<name>.v`` and ``out_dir/<name>.json``; returns paths and timing.

    Accepts a ``MacSpec`` or a ``MacArray``.
    """
    from amaranth.back import verilog as amaranth_verilog
    from fewbits.hw.mac import MacArray, create_mac_array

    if not name.isidentifier():
        raise ValueError(f"bad top name {name!r}: accepted a Verilog identifier ([A-Za-z_][A-Za-z0-9_]*)")
    array = component_or_spec
    if isinstance(array, MacSpec):
        array = create_mac_array(array)
    if not isinstance(array, MacArray):
        raise TypeError(f"export.verilog takes a MacSpec or MacArray, not {type(array).__name__}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    text = amaranth_verilog.convert(array, name=name, emit_src=False)
    seconds = time.perf_counter() - t0
    s = array.spec
    header = [f"// {name}: {s.rows}x{s.cols} MAC array generated by fewbits.hw.export (do not edit)",
              f"// a={s.a_fmt} b={s.b_fmt} acc={s.acc_fmt} bias={s.bias_fmt} out={s.out_fmt} "
              f"k_max={s.k_max} latency={array.latency}; ports and packing: {name}.json"]
    header += [f"/* verilator lint_off {w} */" for w in LINT_WAIVERS]
    text = "\n".join(header) + "\n" + text
    v_path, j_path = out / f"{name}.v", out / f"{name}.json"
    _atomic_write(v_path, text)
    man = manifest(array, name)
    _atomic_write(j_path, json.dumps(man, indent=2) + "\n")
    return {"verilog": v_path, "manifest": j_path, "seconds": seconds, "latency": array.latency}
