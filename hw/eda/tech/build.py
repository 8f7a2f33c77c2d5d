"""Build (or reuse) the characterized ``sky130_fd_sc_hd`` Liberty: parallel ngspice jobs, cached.

Why a cache: the first build costs minutes of ngspice; the file is keyed by the PDK version, the
settings, the cell list and the characterizer's sources, under ``cache_root()/tech/<key>``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import resource
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path

from fewbits.files import atomic_write_json, atomic_write_text, cache_root
from fewbits.hw.eda.tech import characterize as ch
from fewbits.hw.eda.tech import liberty, pdk, spice
from fewbits.hw.eda.tech.timing import CONSTR, SIDECAR

# The issue's subset: enough for good mapping, drive 1 (plus 2 and 4 for inv/buf/nand2).
FULL = ("inv_1", "inv_2", "inv_4", "buf_1", "buf_2", "buf_4", "nand2_1", "nand2_2", "nand2_4", "nand3_1",
        "nand4_1", "nor2_1", "nor3_1", "nor4_1", "and2_1", "and3_1", "or2_1", "or3_1", "xor2_1", "xnor2_1",
        "xor3_1", "a21oi_1", "a21o_1", "o21ai_1", "o21a_1", "a22oi_1", "o22ai_1", "a211oi_1", "mux2_1",
        "mux2i_1", "maj3_1", "ha_1", "fa_1", "dfxtp_1")
SMALL = ("inv_1", "buf_1", "nand2_1", "dfxtp_1")   # fast-suite subset: buf_1 lets abc map for delay
CORNER = "tt"


def model_name() -> str:
    return f"{pdk.LIBRARY} {CORNER} 1.8V 25C, characterized by fewbits {version('fewbits')}"


def key(cells, s: ch.Settings) -> str:
    src = b"".join(Path(f).read_bytes() for f in (ch.__file__, liberty.__file__, pdk.__file__, spice.__file__, __file__))
    blob = json.dumps([pdk.pdk_version(), sorted(cells), asdict(s), CORNER]).encode()
    return hashlib.sha256(blob + src).hexdigest()[:20]


def _prepare(short: str, what: str, s: ch.Settings, lib: Path):
    """One job's deck text, its size (instances × transistors, to start the longest first) and its reader."""
    info = pdk.cell(short)
    kind, arg = what.split(":")
    if kind == "pin":
        deck = spice.Deck()
        _, tstop, plan, leak = ch.deck_pin(info, arg, s, arg == info.inputs[0], deck)

        def read(m):
            return ch.pin_results(info, s, plan, leak, m, tstop)
    else:
        deck, tstop, plan = ch.deck_ff(info, arg, s)

        def read(m):
            return ch.ff_results(s, arg, plan, m)
    size = deck.n * pdk.transistors(info) * tstop
    return deck.render(info, s.vdd, s.temp, tstop, s.tstep, lib), size, read


def _run_job(short: str, what: str, text: str, read, work: Path) -> tuple:
    return short, what, read(spice.run(text, work / short / what.split(":")[1]))


def merge(short: str, parts: dict) -> dict:
    """Job results of one cell -> the record ``liberty.write`` takes."""
    info = pdk.cell(short)
    rec = {"name": info.name, "area": info.area, "inputs": info.inputs, "caps": {}, "outputs": {}}
    if info.ff:
        c, st = parts["ff:clk2q"], {**parts["ff:setup_rise"], **parts["ff:setup_fall"]}
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
        r = parts[f"pin:{p}"]
        rec["caps"][p] = r["cap"]
        leak.update(r["leak"])
        for o, a in r["arcs"].items():
            od = rec["outputs"].setdefault(o, {"function": pdk.function(info, o), "arcs": []})
            od["arcs"].append({"related": p, "sense": spice.unateness(info, p, o), **a})
    rec["leak_states"] = leak
    rec["leakage"] = sum(leak.values()) / len(leak)
    return rec


LIB = "sky130_fd_sc_hd__tt_025C_1v80.fewbits.lib"
MANIFEST = "build.json"   # written last: the digests of the files a finished build left


def _digests(out: Path) -> dict:
    return {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in (LIB, "cells.json", SIDECAR, CONSTR)}


def cached(out: Path) -> bool:
    """A finished, intact build in ``out``: every file its manifest names is there with the same digest."""
    try:
        want = json.loads((out / MANIFEST).read_text())["digests"]
        return want == _digests(out)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def build(cells=SMALL, s: ch.Settings = ch.Settings(), jobs: int = 2, progress: bool = True,
          root: Path | None = None) -> Path:
    """The Liberty path for ``cells`` (characterized on first use; reused afterwards if intact)."""
    out = (root or cache_root() / "tech") / key(cells, s)
    lib = out / LIB
    if cached(out):
        return lib
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as lock:      # one build per entry (parallel test workers, two shells)
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cached(out):
            _characterize(out, cells, s, jobs, progress)
    return lib


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished ngspice runs of this process."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _characterize(out: Path, cells, s: ch.Settings, jobs: int, progress: bool) -> None:
    lib = out / LIB
    (out / MANIFEST).unlink(missing_ok=True)
    models = pdk.models_for(cells, out / "work" / "models", CORNER)   # only the bins these cells use
    todo = sorted(((c, w, *_prepare(c, w, s, models)) for c in cells for _, w in ch.jobs(c)), key=lambda j: -j[3])
    parts: dict = {}
    t0, cpu0 = time.monotonic(), _children_cpu()
    from tqdm import tqdm
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex, \
            tqdm(total=len(todo), desc="characterizing sky130", unit="deck", disable=not progress) as bar:
        futs = [ex.submit(_run_job, c, w, text, read, out / "work") for c, w, text, _, read in todo]
        for f in as_completed(futs):
            short, what, r = f.result()
            parts.setdefault(short, {})[what] = r
            bar.update()
    recs = [merge(c, parts[c]) for c in cells]
    meta = {"model": model_name(), "pdk": f"sky130 {pdk.pdk_version()}", "cells": list(cells),
            "settings": asdict(s), "seconds": round(time.monotonic() - t0, 1), "cpu_seconds": round(_children_cpu() - cpu0, 1),
            "decks": len(todo), "jobs": jobs, "load_average": [round(x, 2) for x in os.getloadavg()]}
    atomic_write_json(out / "cells.json", {"meta": meta, "cells": recs})
    atomic_write_text(lib, liberty.write(recs, s, "sky130_fd_sc_hd__tt_025C_1v80_fewbits", meta["model"]))
    write_sidecars(lib, cells, s, recs)
    atomic_write_json(out / MANIFEST, {"meta": meta, "digests": _digests(out)})


def register_ps(recs) -> float | None:
    """A register's share of the clock period: the flip-flop's clock-to-Q plus setup (ps), read at
    the middle slew and load of its tables (the worse edge of each); None without a flip-flop."""
    for r in recs or ():
        if r.get("ff"):
            arc = r["outputs"][r["ff"]["q"]]["arcs"][0]
            clk2q = max(arc["cell_rise"][1][1], arc["cell_fall"][1][1])
            setup = max(r["ff"]["rise_constraint"][1], r["ff"]["fall_constraint"][1])
            return round((clk2q + setup) * 1000, 1)
    return None


def write_sidecars(lib: Path, cells, s: ch.Settings, recs=None) -> Path:
    """``tech.json`` (model name, register overhead) and ``abc.constr`` (driver, load) beside the
    Liberty: see ``timing``."""
    drive = f"set_driving_cell {pdk.LIBRARY}__inv_1\n" if "inv_1" in cells else ""
    atomic_write_text(lib.with_name(CONSTR), drive + f"set_load {s.loads[1]}\n")
    # abc's delay flow (&nf, then buffering) needs a buffer cell in the library
    atomic_write_json(lib.with_name(SIDECAR), {"model": model_name(), "pdk": f"sky130 {pdk.pdk_version()}",
                                               "timing": any(c.startswith("buf_") for c in cells),
                                               "register_ps": register_ps(recs)})
    return lib
