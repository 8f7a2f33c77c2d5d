"""``fewbits synth --sweep``: bare multipliers and MAC units per format, run by the one sweep engine.

Why bare parts: the question is what one more bit of multiplier costs, so each
point synthesizes the multiplier and one MAC unit of ``a = b = out = FORMAT``
(``fixed:W:W//2``, ``dfixed:W``, ``float:E:M``) on every target and, with
``power``, simulates them on seeded random vectors for energy per MAC.

Each format is one engine point of kind ``parts`` (its stages: ``part_synth``
and ``part_power`` in ``fewbits.flow.stages.STAGES``), kept in the results
store ``OUT/store`` (so a killed sweep resumes, and ``--workers`` runs points in
parallel); this module adds only the docs' export: ``OUT/points/<format>.json``
(every record and CSV row of a point, or its error) and ``OUT/sweep.csv``.  A
failing point is recorded and the others go on.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

from fewbits.files import atomic_write_text

CSV_FIELDS = ["label", "kind", "width", "exp", "man", "part", "target", "dsp", "cells", "transistors", "depth",
              "gates", "ffs", "luts", "carries", "dsps", "area", "energy_per_mac_pj", "energy_data_per_mac_pj",
              "toggles_per_mac", "power_model", "multiplier", "area_um2", "delay_ps", "fmax_mhz", "power_mw",
              "clock_mhz"]


class SweepRangeError(ValueError):
    """A ``--sweep`` range that is not one of the accepted forms (one line)."""


def parse_range(text: str) -> list[str]:
    """``fixed:2..32``, ``fixed:4,8,16``, ``dfixed:4..16``, ``float:5:2..10`` (mantissa), or a format string."""
    from fewbits.hw.eda.synth_parts import sweep_format

    m = re.fullmatch(r"(fixed|dfixed):(\d+)\.\.(\d+)", text)
    if m:
        lo, hi = int(m.group(2)), int(m.group(3))
        if not 2 <= lo <= hi <= 64:
            raise SweepRangeError(f"bad sweep {text!r}: widths must satisfy 2 <= LO <= HI <= 64")
        return [sweep_format(m.group(1), w) for w in range(lo, hi + 1)]
    m = re.fullmatch(r"(fixed|dfixed):(\d+(?:,\d+)+)", text)
    if m:
        return [sweep_format(m.group(1), int(w)) for w in m.group(2).split(",")]
    m = re.fullmatch(r"float:(\d+):(\d+)\.\.(\d+)", text)
    if m:
        e, lo, hi = (int(x) for x in m.groups())
        if not (2 <= e <= 11 and 1 <= lo <= hi <= 52):
            raise SweepRangeError(f"bad sweep {text!r}: accepted float:E:LO..HI with 2 <= E <= 11, "
                                  "1 <= LO <= HI <= 52")
        return [f"float:{e}:{mm}" for mm in range(lo, hi + 1)]
    from fewbits.sim import parse_format

    try:
        parse_format(text)
    except ValueError as e:
        raise SweepRangeError(f"bad sweep {text!r}: accepted fixed:LO..HI, fixed:W1,W2,.., dfixed:LO..HI, "
                              f"float:E:LO..HI or one format string ({e})") from e
    return [text]


def points(formats, targets, *, parts=None, dsp=True, liberty=None, timeout=600, use_cache=True, power=False,
           power_cycles=600, seed=0, multipliers=("yosys",)) -> list[dict]:
    """The engine points of a part sweep: one per format and multiplier architecture (everything its
    results depend on; ``multiplier`` only when not Yosys's own, so existing points keep their keys)."""
    from fewbits.hw.eda.synth_parts import PARTS

    return [{"kind": "parts", "format": f, "targets": list(targets), "parts": list(parts or PARTS), "dsp": bool(dsp),
             "liberty": None if liberty is None else str(Path(liberty).resolve()), "timeout": timeout,
             "use_cache": bool(use_cache), "power": bool(power), "power_cycles": int(power_cycles),
             "seed": int(seed), **({} if m == "yosys" else {"multiplier": m})}
            for m in multipliers for f in formats]


def _row(label, spec, part, rec, kind="synth") -> dict:
    f = spec.a_fmt
    row = {"label": label, "kind": f.kind, "width": f.width, "exp": getattr(f, "exp", None),
           "man": getattr(f, "man", None), "part": part, "multiplier": spec.multiplier}
    fig = rec["figures"]
    if kind == "synth":
        row.update({"target": rec["target"], "dsp": rec.get("dsp")})
        row.update({k: fig.get(k) for k in ("cells", "transistors", "depth", "gates", "ffs", "luts", "carries",
                                             "dsps", "area", "area_um2", "delay_ps", "fmax_mhz")})
    else:
        row.update({"target": "power", "energy_per_mac_pj": fig["energy_per_mac_pj"],
                    "energy_data_per_mac_pj": fig["energy_data_per_mac_pj"],
                    "toggles_per_mac": fig["toggles_per_mac"], "power_model": fig["model"],
                    "power_mw": fig["power_mw"], "clock_mhz": fig["clock_mhz"]})
    return row


def export(point: dict, record: dict, store) -> dict:
    """The docs' view of one finished point: its records and CSV rows, in part / target / power order."""
    from fewbits.sim import MacSpec

    fmt = point["format"]
    if record["status"] != "ok":
        return {"format": fmt, "error": record.get("reason") or record["status"]}
    res = {n: store.get_stage(s["stage"], s["key"])["result"] for n, s in record["stages"].items()}
    spec = MacSpec.from_dict(next(iter(res.values()))["spec"]) if res else None
    out = {"format": fmt, "spec": spec.to_dict() if spec else None, "synth": [], "power": [], "rows": []}
    for part in point["parts"]:
        for t in point["targets"]:
            rec = {k: v for k, v in res[f"{part}.{t}"].items() if k != "spec"}
            out["synth"].append(rec)
            out["rows"].append(_row(fmt, spec, part, rec))
        if point["power"]:
            rec = res[f"{part}.power"]
            out["power"].append(rec)
            out["rows"].append(_row(fmt, spec, part, rec, kind="power"))
    return out


def run(formats, targets, out_dir, *, dsp=True, liberty=None, timeout=600, use_cache=True, power=False,
        power_cycles=600, progress=False, parts=None, workers: int = 1, multipliers=("yosys",)) -> dict:
    """Every format through the engine; ``out_dir/points/<format>.json`` and ``out_dir/sweep.csv``."""
    from fewbits.flow.engine import run_sweep
    from fewbits.flow.store import Store

    out_dir = Path(out_dir)
    store_dir = out_dir / "store"
    if not use_cache and store_dir.exists():
        shutil.rmtree(store_dir)  # --no-cache: nothing found, everything redone
    pts = points(formats, targets, parts=parts, dsp=dsp, liberty=liberty, timeout=timeout, use_cache=use_cache,
                 power=power, power_cycles=power_cycles, multipliers=multipliers)
    records = run_sweep(pts, store_dir, workers=workers, progress=progress, meta={"name": "part sweep"})
    store = Store(store_dir)
    (out_dir / "points").mkdir(parents=True, exist_ok=True)
    rows, ok, failed = [], [], []
    for p, rec in zip(pts, records):
        res = export(p, rec, store)
        label = p["format"] + ("" if p.get("multiplier", "yosys") == "yosys" else f"+{p['multiplier']}")
        name = re.sub(r"[^\w.-]+", "_", label)
        atomic_write_text(out_dir / "points" / f"{name}.json", json.dumps(res, indent=1) + "\n")
        if "error" in res:
            failed.append(f"{label}: {res['error']}")
            continue
        rows += res["rows"]
        ok.append(label)
    csv_path = out_dir / "sweep.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in CSV_FIELDS})
    return {"ok": ok, "failed": failed, "csv": csv_path, "rows": rows}
