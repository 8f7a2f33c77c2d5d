"""The numbers of a report: one flat row per point, the Pareto fronts, the recommendation.

Why separate from drawing: ``results.csv``/``results.json``, the plots and the
HTML all read these rows, so a number shown anywhere is the number stored in
the results store (the tests check exactly that).
"""

from __future__ import annotations

import math

from fewbits.flow.config import run_spec
from fewbits.report import summary
from fewbits.report.costs import COSTS, check_results
from fewbits.report.costs import get as get_cost
from fewbits.sim.run import RunSpec


def _paper_entry(family: str, name: str, prop: str, update: str, test_error: float) -> dict:
    """One row of the paper's table: its formats in its own bit counting, resolved by the RunSpec;
    ``prop_bits``/``update_bits`` as the paper displays them (no sign bit), ``prop_width`` with it."""
    s = RunSpec.parse(prop, update, paper_bits=True)
    return {"family": family, "format": name, "prop_bits": s.prop_paper_bits, "update_bits": s.update_paper_bits,
            "prop_width": s.prop_fmt.width, "test_error": test_error}


# Courbariaux, Bengio & David (2014), Table 3: permutation-invariant MNIST, maxout MLP, test error (%).
PAPER = [
    _paper_entry("fp32", "single precision floating point", "fp32", "fp32", 1.05),
    _paper_entry("float", "half precision floating point", "fp16", "fp16", 1.10),
    _paper_entry("fixed", "fixed point", "fixed:20:15", "fixed:20:15", 1.39),
    _paper_entry("dfixed", "dynamic fixed point", "dfixed:10", "dfixed:12", 1.28),
]
PAPER_DATASET = "mnist"  # the paper's numbers are comparable only with ours on (PI) MNIST
PAPER_SOURCE = "Courbariaux, Bengio & David 2014, Table 3 (PI MNIST, maxout MLP)"
PAPER_FIXED_INT_BITS = 5  # the paper's fixed-point row: 20 bits, 5 of them integer (frac = 15)


def paper_run(p: dict) -> tuple[str, str, bool]:
    """(prop, update, paper_bits) of our run of one ``PAPER`` row: its formats in fewbits' strings."""
    fam, pb, ub = p["family"], p["prop_bits"], p["update_bits"]
    if fam in ("fp32", "float"):
        names = {16: "fp16", 32: "fp32"}
        return names[pb], names[ub], False
    if fam == "fixed":
        return (f"fixed:{pb}:{pb - PAPER_FIXED_INT_BITS}", f"fixed:{ub}:{ub - PAPER_FIXED_INT_BITS}", True)
    return f"dfixed:{pb}", f"dfixed:{ub}", True

# the cost axes (``costs.COSTS``): with no ``--cost``, the first one every result has ranks the recommendation
SAVINGS = [c.field for c in COSTS if not c.higher_is_better] + ["mult_transistors"]  # 1 - best / fp32

FIELDS = ["key", "config", "status", "reason", "dataset", "net", "epochs", "seed", "family", "prop", "update",
          "prop_bits", "update_bits", "prop_bits_paper", "update_bits_paper", "int_bits", "max_overflow",
          "test_error", "valid_error", "test_examples", "accumulator", "acc", "transistors", "mult_transistors", "cells", "depth", "luts", "dsps", "ice40_ffs",
          "energy_pj", "toggles_per_mac", "power_model", "area_um2", "delay_ps", "fmax_mhz", "energy_sky130_pj",
          "power_sky130_mw", "sky130_model", "cosim_macs", "cosim_capture_elements", "cosim_simulator",
          "rows", "cols", "k_max", "train_seconds", "keep_float", "pareto", "recommended"]
LINKS = ["train_result", "capture", "verilog", "manifest", "cosim_report", "synth_cmos", "synth_ice40",
         "synth_xilinx", "synth_ecp5", "synth_sky130", "synth_multiplier", "power_record", "power_sky130"]


def _stage(store, rec: dict, name: str) -> dict | None:
    """The full stage record behind a point's stage entry (None unless it finished ok)."""
    s = rec["stages"].get(name)
    if not s or s.get("status") != "ok":
        return None
    full = store.get_stage(s["stage"], s["key"])
    return full["result"] if full and full.get("status") == "ok" else None


def row_of(store, rec: dict) -> dict:
    """One flat row of a point record (numbers straight from its stage records)."""
    c = rec["config"]
    spec = run_spec(c)  # widths from the formats themselves, both as the hardware and as the paper counts them
    pw, pwp = spec.prop_fmt.width, spec.prop_paper_bits
    uw, uwp = spec.update_fmt.width, spec.update_paper_bits
    row = {"key": rec["key"], "label": rec.get("label"), "status": rec["status"], "reason": rec.get("reason"),
           "dataset": c["dataset"], "net": c["net"], "epochs": c["epochs"], "seed": c["seed"],
           "family": c["family"], "prop": c["prop"], "update": c["update"], "prop_bits": pw, "update_bits": uw,
           "prop_bits_paper": pwp, "update_bits_paper": uwp, "int_bits": c.get("int_bits"),
           "max_overflow": c.get("max_overflow"), "accumulator": c.get("acc") or "exact", "rows": c["hardware"]["rows"], "cols": c["hardware"]["cols"],
           "k_max": c["hardware"]["k_max"]}
    row["stages"] = {n: s["status"] for n, s in rec["stages"].items()}
    row["unavailable"] = {n: s.get("reason") for n, s in rec["stages"].items() if s["status"] == "unavailable"}
    links = {}
    tr = _stage(store, rec, "train")
    if tr:
        row["test_error"], row["valid_error"] = tr["test_error"], tr["valid_error"]
        row["test_examples"] = tr.get("test_examples")  # the one-seed (Wilson) interval needs the test-set size
        row["keep_float"] = " ".join(tr.get("keep_float") or []) or None  # a model's modules run in float
        links["train_result"] = tr.get("result_json")
        links["capture"] = tr.get("capture")
        full = store.get_stage("train", rec["stages"]["train"]["key"])
        row["train_seconds"] = full.get("seconds") if full else None
    v = _stage(store, rec, "verilog")
    if v:
        links["verilog"], links["manifest"], row["acc"] = v["verilog"], v["manifest"], v["formats"]["acc"]
    co = _stage(store, rec, "cosim")
    if co:
        row["cosim_macs"] = co.get("macs_checked")
        row["cosim_capture_elements"] = co.get("capture_elements_checked")
        row["cosim_simulator"] = co.get("simulator")
        links["cosim_report"] = co.get("report_txt") or co.get("report")
    elif rec["stages"].get("cosim", {}).get("status") == "failed":
        s = store.get_stage("cosim", rec["stages"]["cosim"]["key"])
        links["cosim_report"] = None if s is None else f"stages/cosim/{rec['stages']['cosim']['key']}/report.txt"
    for target in ("cmos", "ice40", "xilinx", "ecp5"):
        sy = _stage(store, rec, f"synth.{target}")
        if not sy:
            continue
        links[f"synth_{target}"] = sy.get("record")
        pe = sy.get("per_pe") or {}
        fig = sy.get("figures") or {}
        if target == "cmos":
            row["transistors"], row["cells"], row["depth"] = pe.get("transistors"), pe.get("cells"), fig.get("depth")
        elif target == "ice40":
            row["luts"], row["dsps"], row["ice40_ffs"] = pe.get("luts"), pe.get("dsps"), pe.get("ffs")
    sk = _stage(store, rec, "synth.sky130")
    if sk:  # the characterized sky130 cells: µm² per MAC unit, the critical path and the clock it allows
        links["synth_sky130"] = sk.get("record")
        fig = sk.get("figures") or {}
        row["area_um2"] = (sk.get("per_pe") or {}).get("area")
        row["delay_ps"], row["fmax_mhz"], row["sky130_model"] = fig.get("delay_ps"), fig.get("fmax_mhz"), sk.get("model")
    ps = _stage(store, rec, "power.sky130")
    if ps:  # its energies on the captured vectors, at the design's own maximum clock
        row["energy_sky130_pj"], row["power_sky130_mw"] = ps.get("energy_per_mac_pj"), ps.get("power_mw")
        row["sky130_model"] = row.get("sky130_model") or ps.get("model")
        links["power_sky130"] = ps.get("record")
    sm = _stage(store, rec, "synth.multiplier.cmos")
    if sm:  # the bare multiplier of the same formats: what "fp32-sized multipliers" cost
        row["mult_transistors"] = (sm.get("figures") or {}).get("transistors")
        links["synth_multiplier"] = sm.get("record")
    pw_ = _stage(store, rec, "power")
    if pw_:
        row["energy_pj"], row["toggles_per_mac"] = pw_.get("energy_per_mac_pj"), pw_.get("toggles_per_mac")
        row["power_model"] = pw_.get("model")
        links["power_record"] = pw_.get("record")
    row["links"] = {k: v for k, v in links.items() if v}
    return row


def is_result(row: dict) -> bool:
    """A point reported as a result: not failed, and trained (a failed co-simulation fails the point)."""
    return row["status"] != "failed" and isinstance(row.get("test_error"), (int, float)) \
        and math.isfinite(row["test_error"])


def group_of(row: dict) -> tuple:
    return (row["dataset"], row["net"], row["epochs"])


def pareto(rows: list[dict], cost: str) -> list[dict]:
    """Points no other point beats on both ``cost`` and test error (cheapest, or fastest, first)."""
    c = get_cost(cost)
    pts = sorted((r for r in rows if is_result(r) and isinstance(r.get(cost), (int, float))),
                 key=lambda r: (c.rank(r[cost]), r["test_error"]))
    front, best = [], math.inf
    for r in pts:
        if r["test_error"] < best:
            front.append(r)
            best = r["test_error"]
    return front


def baseline(rows: list[dict]) -> dict | None:
    fp = [r for r in rows if is_result(r) and r["family"] == "fp32"]
    return min(fp, key=lambda r: r["test_error"]) if fp else None


def cost_metric(rows: list[dict]) -> str:
    """The first cost axis every result row has (transistors, LUTs, energy), else the propagation width."""
    res = [r for r in rows if is_result(r)]
    for c in COSTS:
        if res and all(isinstance(r.get(c.field), (int, float)) for r in res):
            return c.field
    return "prop_bits"


def recommend(rows: list[dict], budget: float) -> dict:
    """The cheapest point whose test error is within ``budget`` points of fp32 (per group)."""
    res = [r for r in rows if is_result(r)]
    if not res:
        return {"row": None, "note": "no finished point to recommend"}
    base = baseline(res)
    ref = base["test_error"] if base else min(r["test_error"] for r in res)
    note = "" if base else "no fp32 point in the sweep: the budget is relative to the best point"
    metric = cost_metric(res)
    ok = [r for r in res if r["test_error"] <= ref + budget + 1e-12]
    best = min(ok, key=lambda r: (r[metric], r["test_error"], r["prop_bits"]))
    saving = {}
    if base:
        for c in SAVINGS:
            if isinstance(best.get(c), (int, float)) and isinstance(base.get(c), (int, float)) and base[c]:
                saving[c] = 1.0 - best[c] / base[c]
    return {"row": best, "baseline": base, "reference_error": ref, "budget": budget, "metric": metric,
            "saving": saving, "note": note}


def paper_match(rows: list[dict]) -> list[dict]:
    """The paper's Table 3 with our nearest point beside it where the dataset matches (MNIST)."""
    out = []
    for p in PAPER:
        ours = [r for r in rows if is_result(r) and r["dataset"] == PAPER_DATASET and r["family"] == p["family"]
                and (p["family"] == "fp32" or (r["prop_bits_paper"] == p["prop_bits"]
                                                and r["update_bits_paper"] == p["update_bits"]))]
        if p["family"] == "float":
            ours = [r for r in ours if r["prop"] == "fp16"]
        best = min(ours, key=lambda r: r["test_error"]) if ours else None
        out.append({**p, "ours": best["test_error"] if best else None, "ours_key": best["key"] if best else None})
    return out


RULES = ("confidence", "mean")


def configurations(rows: list[dict]) -> list[dict]:
    """The configurations of one group (``summary.summarize``), shaped like rows for the fronts and plots.

    ``test_error`` is the mean over seeds; ``key`` names the configuration (a hash of what makes it one).
    """
    from fewbits.flow.store import config_hash

    out = summary.summarize(rows)
    for s in out:
        s["key"] = config_hash(list(summary.config_of(s)))
        s["status"] = "ok" if summary.has_result(s) else "failed"
        s["test_error"] = s["test_error_mean"]
    return out


def _saving(best: dict | None, base: dict | None) -> dict:
    """1 - cost(best) / cost(fp32) for every cost both have."""
    if not best or not base:
        return {}
    return {c: 1.0 - best[c] / base[c] for c in SAVINGS
            if isinstance(best.get(c), (int, float)) and isinstance(base.get(c), (int, float)) and base[c]}


def build(store, budget: float, rule: str = "confidence", cost: str | None = None) -> dict:
    """Everything a report shows, from the store: one row per run, one summary per configuration.

    The fronts and the recommendation are over configurations (the mean over seeds, never the
    luckiest seed); ``rule`` is the recommendation's ("confidence": the paired 95 % upper bound
    within the budget; "mean": the mean within it, the old rule); ``cost`` the axis it ranks by
    (a ``costs.COSTS`` field; None: the first one every result has).
    """
    # the training-set limit, so a report of a limited run (the Fashion-MNIST demo) can say so
    rows = [{**row_of(store, rec), **{k: (rec["config"].get("train") or {}).get(k)
                                      for k in ("limit_train", "limit_eval")}}
            for rec in store.points()]
    return assemble(rows, budget, rule, cost)


def assemble(rows: list[dict], budget: float, rule: str = "confidence", cost: str | None = None) -> dict:
    """The report's numbers from its per-run rows (``build`` without the store: what the tests construct).

    A ``cost`` no finished run has is a ``CostError`` (raised before anything is written).
    """
    if rule not in RULES:
        raise ValueError(f"bad rule {rule!r}: accepted {', '.join(RULES)}")
    check_results(cost, [r for r in rows if is_result(r)])
    rows.sort(key=lambda r: (r["dataset"], r["net"], r["epochs"], ["fp32", "float", "fixed", "dfixed"].index(r["family"]),
                             r["prop_bits"], r["update_bits"], r.get("int_bits") or 0, r.get("max_overflow") or 0,
                             r["prop"], r["seed"], r["key"]))
    groups = {}
    for r in rows:
        groups.setdefault(group_of(r), []).append(r)
    out_groups, summaries = [], []
    for g, grs in groups.items():
        sums = configurations(grs)
        fronts = {c.field: [s["key"] for s in pareto(sums, c.field)] for c in COSTS}
        rec = summary.recommend(sums, budget, cost or cost_metric(sums), rule)
        best, base = rec["row"], rec["baseline"]
        by_config = {}
        for s in sums:
            s["pareto"] = ",".join(c for c, keys in fronts.items() if s["key"] in keys)
            s["recommended"] = best is s
            by_config.update({k: s for k in s["keys"]})
        for r in grs:
            s = by_config[r["key"]]
            r["config"], r["pareto"], r["recommended"] = s["config"], s["pareto"], s["recommended"]
        summaries += sums
        out_groups.append({"dataset": g[0], "net": g[1], "epochs": g[2], "pareto": fronts,
                           "recommended": best["key"] if best else None, "baseline": base["key"] if base else None,
                           "reference_error": base["test_error_mean"] if base else None, "metric": rec["metric"],
                           "rule": rule, "text": summary.recommendation_text(rec), "saving": _saving(best, base),
                           "note": rec.get("note", ""), "_rec": rec})
    return {"rows": rows, "summaries": summaries, "groups": out_groups, "budget": budget, "rule": rule, "cost": cost,
            "paper": paper_match(rows), "paper_source": PAPER_SOURCE}
