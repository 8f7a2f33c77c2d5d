"""Precision sweeps: bare multiplier and MAC unit per format -> one JSON per point + a CSV.

Why bare parts: the question is what one more bit of multiplier costs, so each
point synthesizes the multiplier and one MAC unit of ``a = b = out = FORMAT``
(``fixed:W:W//2``, ``dfixed:W``, ``float:E:M``) on every target and, with
``power``, simulates them on seeded random vectors for energy per MAC.  A
failing point is recorded and the others go on.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

from fewbits.hw.eda.synth_tools import SynthError

CSV_FIELDS = ["label", "kind", "width", "exp", "man", "part", "target", "dsp", "cells", "transistors", "depth",
              "gates", "ffs", "luts", "carries", "dsps", "area", "energy_per_mac_pj", "energy_data_per_mac_pj",
              "toggles_per_mac", "power_model"]


def parse_sweep(text: str) -> list[str]:
    """``fixed:2..32``, ``fixed:4,8,16``, ``dfixed:4..16``, ``float:5:2..10`` (mantissa), or a format string."""
    m = re.fullmatch(r"(fixed|dfixed):(\d+)\.\.(\d+)", text)
    if m:
        lo, hi = int(m.group(2)), int(m.group(3))
        if not 2 <= lo <= hi <= 64:
            raise SynthError(f"bad sweep {text!r}: widths must satisfy 2 <= LO <= HI <= 64")
        return [point_format(m.group(1), w) for w in range(lo, hi + 1)]
    m = re.fullmatch(r"(fixed|dfixed):(\d+(?:,\d+)+)", text)
    if m:
        return [point_format(m.group(1), int(w)) for w in m.group(2).split(",")]
    m = re.fullmatch(r"float:(\d+):(\d+)\.\.(\d+)", text)
    if m:
        e, lo, hi = (int(x) for x in m.groups())
        if not (2 <= e <= 11 and 1 <= lo <= hi <= 52):
            raise SynthError(f"bad sweep {text!r}: accepted float:E:LO..HI with 2 <= E <= 11, 1 <= LO <= HI <= 52")
        return [f"float:{e}:{mm}" for mm in range(lo, hi + 1)]
    from fewbits.sim import parse_format

    try:
        parse_format(text)
    except ValueError as e:
        raise SynthError(f"bad sweep {text!r}: accepted fixed:LO..HI, fixed:W1,W2,.., dfixed:LO..HI, "
                         f"float:E:LO..HI or one format string ({e})") from e
    return [text]


def point_format(kind: str, w: int) -> str:
    return f"fixed:{w}:{w // 2}" if kind == "fixed" else f"dfixed:{w}"


def point_spec(fmt_text: str):
    from fewbits.sim import MacSpec, parse_format

    f = parse_format(fmt_text)
    return MacSpec(f, f, f, rows=1, cols=1, k_max=1024)


def _row(label, spec, part, rec, kind="synth") -> dict:
    f = spec.a_fmt
    row = {"label": label, "kind": f.kind, "width": f.width, "exp": getattr(f, "exp", None),
           "man": getattr(f, "man", None), "part": part}
    if kind == "synth":
        fig = rec["figures"]
        row.update({"target": rec["target"], "dsp": rec.get("dsp")})
        row.update({k: fig.get(k) for k in ("cells", "transistors", "depth", "gates", "ffs", "luts", "carries",
                                             "dsps", "area")})
    else:
        fig = rec["figures"]
        row.update({"target": "power", "energy_per_mac_pj": fig["energy_per_mac_pj"],
                    "energy_data_per_mac_pj": fig["energy_data_per_mac_pj"],
                    "toggles_per_mac": fig["toggles_per_mac"], "power_model": fig["model"]})
    return row


def run_point(fmt_text: str, targets, dsp=True, liberty=None, timeout=600, use_cache=True,
              power=False, power_cycles=600, seed=0, parts=None) -> dict:
    """Synthesize (and optionally simulate) the bare multiplier and MAC unit of one format."""
    from fewbits.hw.eda import synth as S
    from fewbits.hw.eda.synth_parts import PARTS, part_design

    spec = point_spec(fmt_text)
    out = {"format": fmt_text, "spec": spec.to_dict(), "synth": [], "power": [], "rows": []}
    for part in parts or PARTS:
        d = part_design(spec, part, name=fmt_text)
        for t in targets:
            rec = S.synthesize(d, t, dsp=dsp, liberty=liberty, timeout=timeout, use_cache=use_cache)
            out["synth"].append(rec)
            out["rows"].append(_row(fmt_text, spec, part, rec))
        if power:
            from fewbits.hw.eda.power import estimate
            from fewbits.hw.eda.power_vectors import synthetic

            ops = synthetic(spec, "random", seed, 8, 32, 8)
            prec = estimate(d, [ops], spec=spec, max_cycles=power_cycles, timeout=timeout, use_cache=use_cache)
            out["power"].append({k: v for k, v in prec.items() if k != "groups"})
            out["rows"].append(_row(fmt_text, spec, part, prec, kind="power"))
    return out


def run_sweep(points, targets, out_dir, dsp=True, liberty=None, timeout=600, use_cache=True,
              power=False, power_cycles=600, progress=False, parts=None) -> dict:
    """Every point (a format string); one JSON per point in ``out_dir/points`` and ``out_dir/sweep.csv``."""
    out_dir = Path(out_dir)
    (out_dir / "points").mkdir(parents=True, exist_ok=True)
    rows, ok, failed = [], [], []
    it = points
    if progress:
        from tqdm import tqdm

        it = tqdm(points, desc="sweep", unit="point")
    for p in it:
        name = re.sub(r"[^\w.-]+", "_", p)
        try:
            res = run_point(p, targets, dsp, liberty, timeout, use_cache, power, power_cycles, parts=parts)
        except (SynthError, ValueError) as e:
            failed.append(f"{p}: {e}")
            (out_dir / "points" / f"{name}.json").write_text(json.dumps({"format": p, "error": str(e)}) + "\n")
            continue
        tmp = out_dir / "points" / f"{name}.json.tmp{os.getpid()}"
        tmp.write_text(json.dumps(res, indent=1) + "\n")
        os.replace(tmp, out_dir / "points" / f"{name}.json")
        rows += res["rows"]
        ok.append(p)
    csv_path = out_dir / "sweep.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in CSV_FIELDS})
    return {"ok": ok, "failed": failed, "csv": csv_path, "rows": rows}


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
