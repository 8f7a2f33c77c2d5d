"""Sweep CSVs -> the plots and tables of docs/HARDWARE.md (cost vs width, quadratic fit, Horowitz anchors).

Run: ``python -m fewbits.hw.eda.synth_report SWEEP.csv [...] -o docs`` (writes
``hardware_*.png`` and prints the Markdown tables).  matplotlib is imported
inside the functions (Agg backend), never at import.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from fewbits.hw.eda.synth_parts import sweep_format

FIT_MIN = 4   # 2- and 3-bit multipliers are a handful of gates: constant overhead, not w^2

# Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm, 0.9 V
# The energies ("pj") are quoted with that attribution in a public copy found here (docs/HARDWARE.md names it);
# the areas ("um2") were not found in a public source: unverified estimates, say so where they are shown.
HOROWITZ = {
    "int8_mul": {"pj": 0.2, "um2": 282}, "int32_mul": {"pj": 3.1, "um2": 3495},
    "fp16_mul": {"pj": 1.1, "um2": 1640}, "fp32_mul": {"pj": 3.7, "um2": 7700},
    "int8_add": {"pj": 0.03}, "int32_add": {"pj": 0.1},
}


def quadratic_fit(widths, values) -> dict:
    """Least-squares ``c2 w^2 + c1 w + c0`` and its relative RMS residual (the paper's premise: cost ~ w^2)."""
    import numpy as np

    w = np.asarray(widths, dtype=float)
    v = np.asarray(values, dtype=float)
    coef = np.polyfit(w, v, 2)
    fit = np.polyval(coef, w)
    rel = float(np.sqrt(np.mean(((v - fit) / v) ** 2)))
    return {"c2": float(coef[0]), "c1": float(coef[1]), "c0": float(coef[2]), "rel_rms_residual": rel,
            "max_rel_residual": float(np.max(np.abs((v - fit) / v)))}


def _raw_rows(path: Path):
    """Rows of a sweep CSV, or of every point JSON under a sweep folder (usable while it still runs)."""
    if path.is_dir():
        import json

        for j in sorted((path / "points").glob("*.json")):
            yield from json.loads(j.read_text()).get("rows", [])
        return
    with open(path, newline="") as f:
        yield from csv.DictReader(f)


def read_rows(paths) -> list[dict]:
    rows = []
    for p in paths:
        if True:
            for r in _raw_rows(Path(p)):
                for k in ("width", "exp", "man", "cells", "transistors", "depth", "luts", "carries", "ffs", "dsps"):
                    r[k] = int(float(r[k])) if r.get(k) not in (None, "", "None") else None
                for k in ("energy_per_mac_pj", "energy_data_per_mac_pj", "toggles_per_mac", "area"):
                    r[k] = float(r[k]) if r.get(k) not in (None, "", "None") else None
                rows.append(r)
    return rows


def series(rows, kind, part, target, value):
    """Sorted (width, value) of one format family / part / target."""
    pts = {}
    for r in rows:
        if r["kind"] == kind and r["part"] == part and r["target"] == target and r.get(value) is not None:
            pts[r["width"]] = r[value]
    return sorted(pts.items())


def _float_series(rows, part, target, value, exp):
    pts = {}
    for r in rows:
        if r["kind"] == "float" and r["exp"] == exp and r["part"] == part and r["target"] == target \
                and r.get(value) is not None:
            pts[r["width"]] = r[value]
    return sorted(pts.items())


def plot(rows, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    specs = [("transistors", "cmos", "transistors (Yosys stat -tech cmos)", "hardware_transistors.png"),
             ("luts", "ice40", "iCE40 LUT4s (synth_ice40, no DSP)", "hardware_luts.png"),
             ("energy_per_mac_pj", "power", "pJ per operation (fewbits-45nm-v1)",
              "hardware_energy.png")]
    for value, target, ylabel, fname in specs:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for kind, part, style, label in [("fixed", "multiplier", "o-", "fixed multiplier"),
                                         ("fixed", "mac_unit", "s-", "fixed MAC unit"),
                                         ("dfixed", "mac_unit", "^--", "dynamic fixed MAC unit")]:
            s = series(rows, kind, part, target, value)
            if s:
                ax.plot(*zip(*s), style, label=label, ms=4)
        for exp, style in [(4, "x"), (5, "D"), (8, "P")]:
            for part, fill in [("multiplier", "full"), ("mac_unit", "none")]:
                s = _float_series(rows, part, target, value, exp)
                if s:
                    ax.plot(*zip(*s), style + ":", fillstyle=fill, ms=5,
                            label=f"float e{exp} {'multiplier' if part == 'multiplier' else 'MAC unit'}")
        s = [(w, v) for w, v in series(rows, "fixed", "multiplier", target, value) if v and w >= FIT_MIN]
        if len(s) >= 4:
            import numpy as np

            q = quadratic_fit(*zip(*s))
            w = np.linspace(min(x for x, _ in s), max(x for x, _ in s), 100)
            ax.plot(w, q["c2"] * w ** 2 + q["c1"] * w + q["c0"], "k:", lw=1,
                    label=f"quadratic fit (rel. RMS residual {q['rel_rms_residual']:.1%})")
        if value == "energy_per_mac_pj":
            for name, w, lab in [("int8_mul", 8, "Horowitz int8 mul"), ("int32_mul", 32, "Horowitz int32 mul"),
                                 ("fp16_mul", 16, "Horowitz fp16 mul"), ("fp32_mul", 32, "Horowitz fp32 mul")]:
                ax.plot([w], [HOROWITZ[name]["pj"]], "*", ms=12, label=lab)
        ax.set_xlabel("operand width (bits, sign included)")
        ax.set_ylabel(ylabel)
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        path = out_dir / fname
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)
    return made


def _get(rows, label, part, target, value):
    for r in rows:
        if r["label"] == label and r["part"] == part and r["target"] == target:
            return r.get(value)
    return None


def tables(rows) -> str:
    """Markdown: per-width table of the fixed parts, the quadratic fits, and the Horowitz ratio comparison."""
    out = ["| width | mul transistors | mul depth | mul LUTs | mul pJ | MAC transistors | MAC LUTs | MAC pJ | "
           "mul share (transistors) |", "|---|---|---|---|---|---|---|---|---|"]
    labels = sorted({r["label"] for r in rows if r["kind"] == "fixed"}, key=lambda s: int(s.split(":")[1]))
    for lab in labels:
        mt = _get(rows, lab, "multiplier", "cmos", "transistors")
        pt = _get(rows, lab, "mac_unit", "cmos", "transistors")
        vals = [mt, _get(rows, lab, "multiplier", "cmos", "depth"), _get(rows, lab, "multiplier", "ice40", "luts"),
                _get(rows, lab, "multiplier", "power", "energy_per_mac_pj"), pt,
                _get(rows, lab, "mac_unit", "ice40", "luts"), _get(rows, lab, "mac_unit", "power", "energy_per_mac_pj")]
        cells = [f"{v:.3f}" if isinstance(v, float) else ("-" if v is None else str(v)) for v in vals]
        share = f"{mt / pt:.0%}" if mt and pt else "-"
        out.append(f"| {lab.split(':')[1]} | " + " | ".join(cells) + f" | {share} |")
    out.append("")
    out.append("| format | width | mul transistors | mul LUTs | mul pJ | MAC transistors | MAC LUTs | MAC pJ |")
    out.append("|---|---|---|---|---|---|---|---|")
    others = sorted({(r["kind"], r["width"], r["label"]) for r in rows if r["kind"] != "fixed"})
    for _, width, lab in others:
        vals = [_get(rows, lab, "multiplier", "cmos", "transistors"), _get(rows, lab, "multiplier", "ice40", "luts"),
                _get(rows, lab, "multiplier", "power", "energy_per_mac_pj"),
                _get(rows, lab, "mac_unit", "cmos", "transistors"), _get(rows, lab, "mac_unit", "ice40", "luts"),
                _get(rows, lab, "mac_unit", "power", "energy_per_mac_pj")]
        cells = [f"{v:.3f}" if isinstance(v, float) else ("-" if v is None else str(v)) for v in vals]
        out.append(f"| {lab} | {width} | " + " | ".join(cells) + " |")
    out.append("")
    out.append("| quantity (fixed multiplier) | c2 | c1 | c0 | rel. RMS residual | max rel. residual |")
    out.append("|---|---|---|---|---|---|")
    for value, target, name in [("transistors", "cmos", "transistors"), ("luts", "ice40", "iCE40 LUTs"),
                                ("energy_per_mac_pj", "power", "energy pJ")]:
        s = [(w, v) for w, v in series(rows, "fixed", "multiplier", target, value) if v and w >= FIT_MIN]
        if len(s) >= 4:
            q = quadratic_fit(*zip(*s))
            out.append(f"| {name} vs width ({s[0][0]}..{s[-1][0]}) | {q['c2']:.4g} | {q['c1']:.4g} | {q['c0']:.4g} | "
                       f"{q['rel_rms_residual']:.1%} | {q['max_rel_residual']:.1%} |")
    out.append("")
    out.append("| ratio | Horowitz energy | fewbits energy | Horowitz area (um²) | fewbits transistors |")
    out.append("|---|---|---|---|---|")

    def ratio(a, b):
        return f"{a / b:.2f}" if a and b else "-"

    fx = {w: (_get(rows, sweep_format("fixed", w), "multiplier", "power", "energy_per_mac_pj"),
              _get(rows, sweep_format("fixed", w), "multiplier", "cmos", "transistors")) for w in (8, 16, 32)}
    fl = {n: (_get(rows, n, "multiplier", "power", "energy_per_mac_pj"),
              _get(rows, n, "multiplier", "cmos", "transistors")) for n in ("fp16", "fp32", "float:5:10", "float:8:23")}
    fp16 = fl["fp16"] if fl["fp16"][0] else fl["float:5:10"]
    fp32 = fl["fp32"] if fl["fp32"][0] else fl["float:8:23"]
    H = HOROWITZ
    out.append(f"| int32 / int8 multiply | {H['int32_mul']['pj'] / H['int8_mul']['pj']:.2f} | "
               f"{ratio(fx[32][0], fx[8][0])} | {H['int32_mul']['um2'] / H['int8_mul']['um2']:.2f} | "
               f"{ratio(fx[32][1], fx[8][1])} |")
    out.append(f"| fp32 / fp16 multiply | {H['fp32_mul']['pj'] / H['fp16_mul']['pj']:.2f} | "
               f"{ratio(fp32[0], fp16[0])} | {H['fp32_mul']['um2'] / H['fp16_mul']['um2']:.2f} | "
               f"{ratio(fp32[1], fp16[1])} |")
    out.append(f"| fp16 / int8 multiply | {H['fp16_mul']['pj'] / H['int8_mul']['pj']:.2f} | "
               f"{ratio(fp16[0], fx[8][0])} | {H['fp16_mul']['um2'] / H['int8_mul']['um2']:.2f} | "
               f"{ratio(fp16[1], fx[8][1])} |")
    out.append(f"| int8 multiply, absolute | 0.2 pJ | {fx[8][0]:.3f} pJ | 282 um² | {fx[8][1]} |" if fx[8][0] else "")
    out.append(f"| int32 multiply, absolute | 3.1 pJ | {fx[32][0]:.3f} pJ | 3495 um² | {fx[32][1]} |"
               if fx[32][0] else "")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="+", help="sweep.csv files or sweep folders (their points/*.json)")
    ap.add_argument("-o", "--out-dir", default="docs")
    a = ap.parse_args(argv)
    rows = read_rows(a.csv)
    for p in plot(rows, Path(a.out_dir)):
        print(f"wrote {p}")
    print(tables(rows))


if __name__ == "__main__":
    main()
