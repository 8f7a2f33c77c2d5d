"""The cocotb test module the runner launches: one job = one TileSet through one design.

The job (``$FEWBITS_COSIM_JOB``, a JSON file in the run's folder) names the
vectors (``tiles.npz``), the design manifest, the schedule plan and the mode:
``stream`` (the harness plays a stimulus file; Python is not in the per-cycle
path) or ``ports`` (``TileDriver``/``ResultMonitor`` drive and sample every
cycle).  The ``Scoreboard`` result goes to the job's ``summary`` JSON; the test
fails when anything mismatched.
"""

from __future__ import annotations

import json
import os
import sys
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, with_timeout

from fewbits.files import atomic_write_text

PERIOD_NS = 10


def _load_job():
    with open(os.environ["FEWBITS_COSIM_JOB"]) as fh:
        return json.load(fh)


@cocotb.test()
async def cosim_job(dut):
    """Drive every tile of the job, collect every result, compare, write the summary."""
    t_imp = time.perf_counter()
    from fewbits.hw.design import load_design
    from fewbits.cosim.driver import TileDriver, write_stimulus
    from fewbits.cosim.monitor import ResultMonitor, read_results
    from fewbits.cosim.schedule import Plan, build, check_due
    from fewbits.cosim.scoreboard import Scoreboard
    from fewbits.cosim.tiles import TileSet

    t0 = time.perf_counter()
    job = _load_job()
    design = load_design(job["manifest"])
    ts = TileSet.load(job["tiles"])
    plan = Plan(**job["plan"])
    widths = {r: design.port(r).element_width for r in ("a", "b", "bias")}
    for role in ("shift", "bias_shift"):
        if design.port(role) is not None:
            widths[role] = design.port(role).width
    table = build(ts, design.latency, widths, plan)
    check_due(table, design.latency)
    clk = getattr(dut, design.port("clock").name)
    mode = job.get("mode", "stream")
    t1 = time.perf_counter()
    if mode == "stream":
        write_stimulus(table, design, job["stim"])
        t2 = time.perf_counter()
        dut.stream_mode.value = 1
        Clock(clk, PERIOD_NS, unit="ns", impl=job.get("clock_impl", "gpi")).start()
        await with_timeout(RisingEdge(dut.stream_done), (table.cycles + 100) * PERIOD_NS, "ns")
        await RisingEdge(clk)
        t3 = time.perf_counter()
        if int(dut.stream_error.value):
            raise RuntimeError(f"harness could not read {job['stim']} or write {job['out']}")
        res = read_results(job["out"], design)
    else:
        dut.stream_mode.value = 0
        t2 = time.perf_counter()
        Clock(clk, PERIOD_NS, unit="ns").start()
        drv, mon = TileDriver(dut, design), ResultMonitor(dut, design)
        task = cocotb.start_soon(mon.run(table.cycles + 1))
        await drv.run(table)
        await task
        t3 = time.perf_counter()
        res = mon.results()  # same cycle numbering as the harness: row t is presented in cycle t
    sb = Scoreboard(ts, table, design)
    out = sb.compare(res)
    t4 = time.perf_counter()
    sim_s = t3 - t2
    check_s = t4 - t3
    out.update({
        "ok": out["mismatches"] == 0 and out["missing"] == 0 and out["unexpected"] == 0
        and out["capture_mismatches"] == 0 and out["tiles_checked"] > 0,
        "mode": mode, "cycles": table.cycles, "tiles_aborted_by_reset": table.aborted,
        "plan": plan.to_dict(), "import_seconds": t0 - t_imp, "prepare_seconds": (t1 - t0) + (t2 - t1), "sim_seconds": sim_s,
        "check_seconds": check_s, "test_seconds": t4 - t0,
        "assertion_rewriting": any(type(f).__name__ == "AssertionRewritingHook" for f in sys.meta_path),
        "cycles_per_second": table.cycles / sim_s if sim_s > 0 else None,
        "macs_per_second": out["macs_checked"] / (t4 - t0) if t4 > t0 else None,
        "sources": ts.sources,
    })
    atomic_write_text(job["summary"], json.dumps(out, indent=1))
    assert out["ok"], f"{out['mismatches']} mismatches, {out['missing']} missing, {out['unexpected']} unexpected"
