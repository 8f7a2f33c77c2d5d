"""Regenerate the tables of ``docs/REPRODUCTION.md``: the paper's format comparison and
its error-vs-width sweeps, on a dataset/net pair, as many epochs as given.

    python -m fewbits.flow.paper --dataset digits --net mlp-small --epochs 30 \\
        --out build/repro/digits --jobs 2

Why here: each run is one training-only point (kind ``train``) of the one sweep
engine (``fewbits.flow.engine``), whose results store under ``--out`` keeps every
finished run (an interrupted regeneration resumes; ``--jobs`` is its worker
pool).  The paper's rows come from ``fewbits.report.data.PAPER``, the one copy of
its table; this module adds its sweeps and prints Markdown tables.
"""

from __future__ import annotations

import argparse

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


def point(dataset, net, epochs, seed, prop, update, paper_bits, limit_train=None, lr=None, data_dir=None) -> dict:
    """The engine point of one reproduction run: training only."""
    return {"kind": "train", "dataset": dataset, "net": net, "epochs": int(epochs), "seed": int(seed),
            "family": _family(prop), "prop": prop, "update": update, "max_overflow": None,
            "train": {"paper_bits": bool(paper_bits), "limit_train": limit_train, "lr": lr, "data_dir": data_dir}}


def table(todo, records, store) -> str:
    """The Markdown table of finished runs (a failed run says why)."""
    lines = ["| run | prop | update | paper bits | epochs | test error % | valid error % | s/epoch |",
             "|---|---|---|---|---|---|---|---|"]
    for (name, p, u, pb), rec in zip(todo, records):
        st = rec.get("stages", {}).get("train", {})
        if rec.get("status") != "ok":
            lines.append(f"| {name} | `{p}` | `{u}` | {'yes' if pb else 'no'} | | failed: {rec.get('reason')} | | |")
            continue
        r = store.get_stage("train", st["key"])["result"]
        secs = [h["seconds"] for h in r["history"]]
        spe = sum(secs) / max(1, len(secs))
        lines.append(f"| {name} | `{p}` | `{u}` | {'yes' if pb else 'no'} | {r['epochs']} | "
                     f"{r['test_error']:.2f} | {r['valid_error']:.2f} | {spe:.1f} |")
    return "\n".join(lines)


def main(argv=None):
    from fewbits.flow.engine import run_sweep
    from fewbits.flow.store import Store

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--net", default="mlp-small")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="the results store (finished runs are kept and found again)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--only", default=None, help="comma-separated props to run (e.g. fp32,dfixed:10)")
    ap.add_argument("--limit-train", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None, help="initial learning rate (default: the net's own)")
    a = ap.parse_args(argv)
    todo = runs(a.table_only)
    if a.only:
        keep = set(a.only.split(","))
        todo = [r for r in todo if r[1] in keep]
    pts = [point(a.dataset, a.net, a.epochs, a.seed, p, u, pb, a.limit_train, a.lr, a.data_dir) for _, p, u, pb in todo]
    records = run_sweep(pts, a.out, workers=a.jobs, progress=True, meta={"name": "paper reproduction"})
    print(table(todo, records, Store(a.out)))


if __name__ == "__main__":
    main()
