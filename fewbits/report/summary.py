"""Per-configuration rows of a report: the runs of each seed folded into one mean with its interval.

Why: the recommendation must not pick the luckiest seed.  A *configuration* is a point
without its seed (same data set, net, epochs, formats and so accumulator, range settings and
array); its costs are the same for every seed (the hardware stages are shared), its test
error is a mean over seeds with a 95 % interval (``fewbits.report.stats``).
"""

from __future__ import annotations

import math

from fewbits.report import stats
from fewbits.report.costs import BY_FIELD as COST_AXES

# what makes two runs the same configuration (everything but the seed); ``accumulator`` is the
# point's accumulator choice ("exact" or a float accumulator such as "fp32,chunk=4"), known before
# any stage runs (the Verilog stage's ``acc`` string is known only where training succeeded)
CONFIG_FIELDS = ("dataset", "net", "epochs", "family", "prop", "update", "accumulator", "int_bits",
                 "max_overflow", "rows", "cols", "k_max")
# cost columns carried from the runs to their configuration (equal for every seed)
COST_FIELDS = ("transistors", "mult_transistors", "cells", "luts", "dsps", "energy_pj", "area_um2", "delay_ps",
               "fmax_mhz", "energy_sky130_pj", "power_sky130_mw", "prop_bits", "update_bits", "prop_bits_paper", "update_bits_paper")
SUMMARY_FIELDS = ["config", "dataset", "net", "epochs", "family", "prop", "update", "acc", "int_bits",
                  "max_overflow", "n_seeds", "seeds", "test_error_mean", "test_error_std", "test_error_lo",
                  "test_error_hi", "interval", *COST_FIELDS, "pareto", "recommended"]


def config_of(row: dict) -> tuple:
    return tuple(row.get(f) for f in CONFIG_FIELDS)


def config_label(row: dict) -> str:
    """A short readable name of a configuration (what the plots and the text call it)."""
    fam, prop, upd = row.get("family"), row.get("prop"), row.get("update")
    name = "fp32" if fam == "fp32" else (prop if prop == upd else f"{prop} / {upd}")
    if row.get("max_overflow") is not None and fam == "dfixed":
        name += f" (ovf {row['max_overflow']:g})"
    acc = row.get("accumulator")
    if acc and acc != "exact":
        name += f", acc {acc}"
    return name


def is_run(row: dict) -> bool:
    """A finished run with a test error (a failed run is left out of the mean, never silently: n drops)."""
    e = row.get("test_error")
    return row.get("status") != "failed" and isinstance(e, (int, float)) and math.isfinite(e)


def summarize(rows: list[dict]) -> list[dict]:
    """One row per configuration (in the order of their first run), with the mean error and its interval."""
    by: dict[tuple, list[dict]] = {}
    for r in rows:
        by.setdefault(config_of(r), []).append(r)
    out = []
    for cfg, runs in by.items():
        done = [r for r in runs if is_run(r)]
        first = runs[0]
        s = {f: first.get(f) for f in CONFIG_FIELDS}
        # the accumulator the hardware built (an exact one as acc:W:F), else the point's choice
        s["acc"] = next((r["acc"] for r in runs if r.get("acc") is not None), first.get("accumulator"))
        s["config"] = config_label(first)
        s["label"] = s["config"]
        s["keys"] = [r["key"] for r in runs]
        s["n_runs"] = len(runs)
        s["n_seeds"] = len(done)
        s["seeds"] = sorted(r["seed"] for r in done)
        s["errors_by_seed"] = {r["seed"]: r["test_error"] for r in done}
        for f in COST_FIELDS:
            vals = [r.get(f) for r in done if isinstance(r.get(f), (int, float))]
            s[f] = vals[0] if vals else first.get(f)
        n_test = next((r.get("test_examples") for r in done if r.get("test_examples")), None)
        s["test_examples"] = n_test
        if done:
            iv = stats.interval([r["test_error"] for r in done], n_test)
            s.update(test_error_mean=iv.mean, test_error_std=iv.std, test_error_lo=iv.lo, test_error_hi=iv.hi,
                     interval=iv.method)
        else:
            s.update(test_error_mean=None, test_error_std=None, test_error_lo=None, test_error_hi=None,
                     interval="no finished run")
        out.append(s)
    return out


def has_result(s: dict) -> bool:
    return s.get("n_seeds", 0) > 0


def baseline(summaries: list[dict]) -> dict | None:
    """The fp32 configuration everything is compared with.

    Where the sweep has fp32 with a float accumulator (an fp32 MAC as hardware builds it) that
    one, else any fp32 (an exact Kulisch accumulator, over 500 bits: a cost no design pays); among
    several, the lowest mean error.
    """
    fp = [s for s in summaries if has_result(s) and s["family"] == "fp32"]
    built = [s for s in fp if s.get("accumulator") not in (None, "exact")]
    return min(built or fp, key=lambda s: s["test_error_mean"]) if fp else None


def recommend(summaries: list[dict], budget: float, metric: str, rule: str = "confidence") -> dict:
    """The cheapest configuration within ``budget`` points of fp32.

    ``rule="confidence"``: the one-sided 95 % upper bound of the mean paired difference to fp32
    (paired by seed) is within the budget.  ``rule="mean"``: the mean difference is (the old rule).
    Where nothing qualifies, the best candidate and the seeds that would decide it are named.
    """
    if rule not in ("confidence", "mean"):
        raise ValueError(f"bad rule {rule!r}: accepted confidence, mean")
    res = [s for s in summaries if has_result(s)]
    base = baseline(res)
    out = {"row": None, "baseline": base, "budget": budget, "metric": metric, "rule": rule, "candidates": []}
    if not res:
        out["note"] = "no finished configuration to recommend"
        return out
    if base is None:
        out["note"] = "no fp32 configuration in the sweep: nothing to compare against"
        return out
    for s in res:
        d = stats.paired_difference(s["errors_by_seed"], base["errors_by_seed"], s.get("test_examples"))
        s["diff_mean"] = d.mean if d else None
        s["diff_upper"] = d.upper if d else None
        s["diff_n"] = d.n if d else 0
        s["diff_method"] = d.method if d else "no seed in common with fp32"
        bound = s["diff_mean"] if rule == "mean" else s["diff_upper"]
        s["qualifies"] = bound is not None and bound <= budget + 1e-12
    ok = [s for s in res if s is not base and s["qualifies"] and isinstance(s.get(metric), (int, float))]
    axis = COST_AXES.get(metric)
    rank = axis.rank if axis else (lambda v: v)   # a maximum clock ranks fastest first
    if ok:
        out["row"] = min(ok, key=lambda s: (rank(s[metric]), s["test_error_mean"], s.get("prop_bits") or 0))
    else:
        cands = [s for s in res if s is not base and s["diff_mean"] is not None and s["diff_mean"] < budget
                 and isinstance(s.get(metric), (int, float))]
        if cands:
            best = min(cands, key=lambda s: (rank(s[metric]), s["diff_mean"]))
            diffs = [best["errors_by_seed"][k] - base["errors_by_seed"][k]
                     for k in sorted(set(best["errors_by_seed"]) & set(base["errors_by_seed"]))]
            out["candidate"] = best
            out["seeds_needed"] = stats.seeds_needed(diffs, budget)
        out["note"] = ("no configuration but fp32 itself is within the budget"
                       + (" with 95 % confidence" if rule == "confidence" else ""))
    return out


def recommendation_text(rec: dict) -> str:
    """The recommendation in numbers, e.g. 'dfixed 8/10: +0.12 points over fp32 (95 % upper bound +0.41; 3 seeds)'."""
    s, budget = rec.get("row"), rec["budget"]
    if s is not None:
        bound = (f"95 % upper bound {s['diff_upper']:+.2f}" if s.get("diff_upper") is not None
                 else "no upper bound")
        return (f"{s['config']}: {s['diff_mean']:+.2f} points over {rec['baseline']['config']} ({bound}; {_n(s)}; "
                f"rule: {'mean within' if rec['rule'] == 'mean' else 'upper bound within'} {budget:g} points)")
    text = rec.get("note", "no recommendation")
    c = rec.get("candidate")
    if c is not None:
        need = rec.get("seeds_needed")
        text += (f"; best candidate {c['config']}: {c['diff_mean']:+.2f} points over fp32 "
                 f"(95 % upper bound {c['diff_upper']:+.2f}; {_n(c)})" if c.get("diff_upper") is not None
                 else f"; best candidate {c['config']}: {c['diff_mean']:+.2f} points over fp32 ({_n(c)})")
        text += (f"; about {need} seeds would decide it if the spread stays as seen" if need
                 else "; more seeds are needed to estimate how many would decide it")
    return text


def _n(s: dict) -> str:
    return f"{s['n_seeds']} seed{'s' if s['n_seeds'] != 1 else ''}"
