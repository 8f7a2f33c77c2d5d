"""Regenerate the tables of ``docs/REPRODUCTION.md``: the paper's format comparison and
its error-vs-width sweeps, on a dataset/net pair, as many epochs as given.

    python -m fewbits.flow.paper --dataset digits --net mlp-small --epochs 30 \\
        --out build/repro/digits --jobs 2

Why here: each run is one training-only point (kind ``train``) of the one sweep
engine (``fewbits.flow.engine``), whose results store under ``--out`` keeps every
finished run (an interrupted regeneration resumes; ``--jobs`` is its worker
pool).  The paper's rows come from ``fewbits.report.data.PAPER``, the one copy of
its table; this module adds its sweeps and prints Markdown tables.  ``--figures DIR``
also draws its error-versus-width curves (propagation width, update width, radix
position) as the report draws its own: the mean over seeds as a line, its 95 %
interval as a band (``fewbits.report.plots.error_vs``, intervals from
``fewbits.report.stats``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROP_WIDTHS = (4, 6, 8, 10, 12)
UPDATE_WIDTHS = (6, 8, 10, 12, 14)
FIXED_INT_BITS = (1, 2, 3, 4, 5, 6, 8)


def _family(prop: str) -> str:
    return "fp32" if prop == "fp32" else prop.split(":")[0].replace("fp16", "float")


def runs(table_only: bool = False) -> list[tuple[str, str, str, bool]]:
    """(name, prop, update, paper_bits): the paper's table rows, then (unless ``table_only``) its sweeps."""
    from fewbits.report.data import PAPER, paper_run

    out = [(f"{p['format']} ({p['prop_bits']} prop / {p['update_bits']} update)", *paper_run(p)) for p in PAPER]
    if not table_only:
        out += [(f"dfixed prop {w} / update 12", f"dfixed:{w}", "dfixed:12", True) for w in PROP_WIDTHS]
        out += [(f"dfixed prop 10 / update {w}", "dfixed:10", f"dfixed:{w}", True) for w in UPDATE_WIDTHS]
        out += [(f"fixed 20 bits, {n} integer", f"fixed:20:{20 - n}", f"fixed:20:{20 - n}", True)
                for n in FIXED_INT_BITS]
    seen, uniq = set(), []
    for r in out:
        if r[1:] not in seen:
            seen.add(r[1:])
            uniq.append(r)
    return uniq


def point(dataset, net, epochs, seed, prop, update, paper_bits, limit_train=None, lr=None, data_dir=None,
          limit_eval=None) -> dict:
    """The engine point of one reproduction run: training only."""
    train = {"paper_bits": bool(paper_bits), "limit_train": limit_train, "lr": lr, "data_dir": data_dir}
    if limit_eval:  # only when set: the points (store keys) of runs made before the limit existed stay found
        train["limit_eval"] = limit_eval
    return {"kind": "train", "dataset": dataset, "net": net, "epochs": int(epochs), "seed": int(seed),
            "family": _family(prop), "prop": prop, "update": update, "max_overflow": None, "train": train}


def _result(rec, store) -> dict | None:
    """The train stage result of a finished point record (None for a failed run)."""
    if rec.get("status") != "ok":
        return None
    return store.get_stage("train", rec["stages"]["train"]["key"])["result"]


def table(todo, records, store, seeds=(0,)) -> str:
    """The Markdown table of finished runs, one row per configuration: the mean over ``seeds`` with its
    95 % interval (``fewbits.report.stats``: Student t over seeds; one seed: the Wilson interval of the
    test-set error count) and, paired by seed, the difference to the first row (fp32).  A failed run
    says why and leaves its configuration with fewer seeds, never dropped silently."""
    from fewbits.report import stats

    n = len(seeds)
    lines = ["| run | prop | update | paper bits | epochs | seeds | test error % (mean) | 95 % interval | "
             "vs first row (paired, 95 %) | per seed | valid error % (mean) | s/epoch |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    base = None
    for i, (name, p, u, pb) in enumerate(todo):
        recs = records[i * n:(i + 1) * n]
        res = {sd: _result(rec, store) for sd, rec in zip(seeds, recs)}
        done = {sd: r for sd, r in res.items() if r is not None}
        why = "; ".join(f"seed {sd} failed: {rec.get('reason')}" for sd, rec in zip(seeds, recs)
                        if res[sd] is None)
        head = f"| {name} | `{p}` | `{u}` | {'yes' if pb else 'no'} |"
        if not done:
            lines.append(f"{head} | {len(done)} | failed: {why} | | | | | |")
            continue
        errs = {sd: r["test_error"] for sd, r in done.items()}
        iv = stats.interval(list(errs.values()), next(iter(done.values())).get("test_examples"))
        if base is None:
            base = errs
            vs = "(reference)"
        else:
            shared = sorted(set(errs) & set(base))
            d = stats.interval([errs[sd] - base[sd] for sd in shared]) if len(shared) >= 2 else None
            vs = f"{d.mean:+.2f} [{d.lo:+.2f}, {d.hi:+.2f}]" if d else "n/a (fewer than 2 shared seeds)"
        secs = [h["seconds"] for r in done.values() for h in r["history"]]
        valid = sum(r["valid_error"] for r in done.values()) / len(done)
        per = " / ".join(f"{errs[sd]:.2f}" if sd in errs else "failed" for sd in seeds)
        lines.append(f"{head} {next(iter(done.values()))['epochs']} | {len(done)}{' (' + why + ')' if why else ''} | "
                     f"{iv.mean:.2f} | {iv.lo:.2f} to {iv.hi:.2f} | {vs} | {per} | {valid:.2f} | "
                     f"{sum(secs) / max(1, len(secs)):.1f} |")
    return "\n".join(lines)


def run_rows(points, records, store) -> list[dict]:
    """One row per run, shaped like the report's (``fewbits.report.data.row_of``) for what its
    summaries and error plots read; a failed run stays a row (its configuration's seed count drops)."""
    from fewbits.flow.config import run_spec

    out = []
    for pt, rec in zip(points, records):
        spec = run_spec(pt)
        pf, uf = spec.prop_fmt, spec.update_fmt
        r = _result(rec, store)
        out.append({"key": rec.get("key"), "status": "ok" if r else "failed", "dataset": pt["dataset"],
                    "net": pt["net"], "epochs": pt["epochs"], "seed": pt["seed"], "family": pt["family"],
                    "prop": pt["prop"], "update": pt["update"], "accumulator": "exact",
                    "prop_bits": pf.width, "update_bits": uf.width, "prop_bits_paper": spec.prop_paper_bits,
                    "update_bits_paper": spec.update_paper_bits,
                    "int_bits": pf.width - 1 - pf.frac if pt["family"] == "fixed" else None,
                    "max_overflow": pt.get("max_overflow"),
                    "test_error": r["test_error"] if r else None,
                    "test_examples": r.get("test_examples") if r else None})
    return out


def _default_ovf(c: dict) -> bool:
    return c.get("max_overflow") is None  # the width sweeps run at the default rate (the trainer's 1e-4)


# the paper's curves: (file name, x field, x label, which configurations, the knob that splits lines, title);
# widths as the paper counts them (no sign bit), as its sweeps are given
FIGURES = (
    ("paper_error_vs_prop_width", "prop_bits_paper", "propagation width (bits, the paper's count: no sign)",
     lambda c: _default_ovf(c) and c["family"] == "dfixed" and c["update"] == "dfixed:12", ("dfixed",),
     ("update_bits_paper",), "dynamic fixed point: test error vs propagation width (update 12 bits)"),
    ("paper_error_vs_update_width", "update_bits_paper", "update width (bits, the paper's count: no sign)",
     lambda c: _default_ovf(c) and c["family"] == "dfixed" and c["prop"] == "dfixed:10", ("dfixed",),
     ("prop_bits_paper",), "dynamic fixed point: test error vs update width (propagation 10 bits)"),
    ("paper_error_vs_radix", "int_bits", "radix point position (integer bits above the sign)",
     lambda c: c["family"] == "fixed" and c["prop_bits_paper"] == 20, ("fixed",), ("prop_bits_paper",),
     "fixed point, 20 bits: test error vs radix position"),
    ("paper_error_vs_max_overflow", "max_overflow", "maximum overflow rate (log)",
     lambda c: c["family"] == "dfixed" and c.get("max_overflow") is not None, ("dfixed",),
     ("prop_bits_paper", "update_bits_paper"), "dynamic fixed point: test error vs max overflow rate"),
)


def figures(rows: list[dict], out_dir) -> list[dict]:
    """The paper's error-versus-width curves of ``rows`` (``run_rows``: one dataset, net and epoch count) as
    bands over seeds, PNG and SVG in ``out_dir``, with fp32's mean and interval as the reference band;
    a curve needs two x values (the max-overflow curve: runs with several ``max_overflow``)."""
    from fewbits.report.data import configurations
    from fewbits.report.plots import error_vs

    if not rows:
        return []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    confs = configurations(rows)
    base = [c for c in confs if c["family"] == "fp32"]
    where = f"[{rows[0]['dataset']}, {rows[0]['net']}, {rows[0]['epochs']} epochs]"
    figs = []
    for name, x, xlabel, keep, fams, other, title in FIGURES:
        sel = base + [c for c in confs if c["family"] != "fp32" and keep(c)]
        f = error_vs(sel, out, name, x, xlabel, fams, other, f"{title}\n{where}", logx=x == "max_overflow")
        if f is not None:
            figs.append(f)
    return figs


def main(argv=None):
    from fewbits.flow.engine import Interrupted, exit_interrupted, run_sweep
    from fewbits.flow.store import Store

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--net", default="mlp-small")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seeds", default="0", help="comma-separated seeds, each a replicate (e.g. 0,1,2)")
    ap.add_argument("--out", required=True, help="the results store (finished runs are kept and found again)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--only", default=None, help="comma-separated props to run (e.g. fp32,dfixed:10)")
    ap.add_argument("--limit-train", type=int, default=None)
    ap.add_argument("--limit-eval", type=int, default=None,
                    help="evaluate on the first N validation and N test examples only")
    ap.add_argument("--lr", type=float, default=None, help="initial learning rate (default: the net's own)")
    ap.add_argument("--figures", default=None, metavar="DIR",
                    help="also draw the error-versus-width curves (mean over seeds, 95 %% band) into DIR")
    a = ap.parse_args(argv)
    todo = runs(a.table_only)
    if a.only:
        keep = set(a.only.split(","))
        todo = [r for r in todo if r[1] in keep]
    try:
        seeds = [int(x) for x in a.seeds.split(",")]
    except ValueError:
        ap.error(f"--seeds {a.seeds!r}: accepted comma-separated integers (e.g. 0,1,2)")
    pts = [point(a.dataset, a.net, a.epochs, sd, p, u, pb, a.limit_train, a.lr, a.data_dir, a.limit_eval)
           for _, p, u, pb in todo for sd in seeds]
    try:
        records = run_sweep(pts, a.out, workers=a.jobs, progress=True, meta={"name": "paper reproduction"})
    except Interrupted as e:  # Ctrl-C / SIGTERM: one line, as `fewbits sweep` says it (it printed a traceback)
        exit_interrupted(e)
    print(table(todo, records, Store(a.out), seeds))
    if a.figures:
        for f in figures(run_rows(pts, records, Store(a.out)), a.figures):
            print(f"figure: {Path(a.figures) / f['png']}", file=sys.stderr)


if __name__ == "__main__":
    main()
