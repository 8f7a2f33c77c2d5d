"""Regenerate the tables of ``docs/REPRODUCTION.md``: the paper's format comparison and
its error-vs-width sweeps, on a dataset/net pair, as many epochs as given.

    python -m fewbits.training.reproduce --dataset digits --net mlp-small --epochs 30 \\
        --out build/repro/digits --jobs 2

Each run is one ``fewbits train`` configuration whose ``result.json`` is kept
under ``--out`` (a finished run is not redone, so an interrupted regeneration
resumes); the script prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from fewbits.sim.run import frac_for_int_bits

#: the paper's Table: format -> (prop, update, paper_bits); its PI-MNIST test errors (%)
TABLE = [
    ("single float", "fp32", "fp32", False, 1.05),
    ("half float", "fp16", "fp16", False, 1.10),
    ("fixed point (20 bits, 5 integer)", f"fixed:20:{frac_for_int_bits(20, 5, True)}",
     f"fixed:20:{frac_for_int_bits(20, 5, True)}", True, 1.39),
    ("dynamic fixed point (10 prop / 12 update)", "dfixed:10", "dfixed:12", True, 1.28),
]
PROP_WIDTHS = (4, 6, 8, 10, 12)
UPDATE_WIDTHS = (6, 8, 10, 12, 14)
FIXED_INT_BITS = (1, 2, 3, 4, 5, 6, 8)


def runs(table_only: bool = False) -> list[tuple[str, str, str, bool]]:
    out = [(name, p, u, pb) for name, p, u, pb, _ in TABLE]
    if not table_only:
        out += [(f"dfixed prop {w} / update 12", f"dfixed:{w}", "dfixed:12", True) for w in PROP_WIDTHS]
        out += [(f"dfixed prop 10 / update {w}", "dfixed:10", f"dfixed:{w}", True) for w in UPDATE_WIDTHS]
        out += [(f"fixed 20 bits, {n} integer", f"fixed:20:{frac_for_int_bits(20, n, True)}",
                 f"fixed:20:{frac_for_int_bits(20, n, True)}", True) for n in FIXED_INT_BITS]
    seen, uniq = set(), []
    for r in out:
        if r[1:] not in seen:
            seen.add(r[1:])
            uniq.append(r)
    return uniq


def _slug(prop, update, pb):
    return f"{prop}__{update}{'__paper' if pb else ''}".replace(":", "-")


def _one(args):
    dataset, net, epochs, seed, out, prop, update, pb, limit, lr = args
    import torch

    from .trainer import TrainConfig, train

    torch.set_num_threads(1)
    d = Path(out) / _slug(prop, update, pb)
    res = d / "result.json"
    if res.is_file():
        r = json.loads(res.read_text())
        if r["epochs"] >= epochs:
            return r
    cfg = TrainConfig(dataset=dataset, net=net, epochs=epochs, seed=seed, prop=prop, update=update,
                      paper_bits=pb, limit_train=limit, lr=lr)
    return train(cfg, d, resume=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--net", default="mlp-small")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
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
    jobs = [(a.dataset, a.net, a.epochs, a.seed, a.out, p, u, pb, a.limit_train, a.lr) for _, p, u, pb in todo]
    with ProcessPoolExecutor(a.jobs) as ex:
        results = list(ex.map(_one, jobs))
    print(f"| run | prop | update | paper bits | epochs | test error % | valid error % | s/epoch |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, p, u, pb), r in zip(todo, results):
        spe = sum(r["seconds_per_epoch"]) / max(1, len(r["seconds_per_epoch"]))
        print(f"| {name} | `{p}` | `{u}` | {'yes' if pb else 'no'} | {r['epochs']} | "
              f"{r['test_error']:.2f} | {r['valid_error']:.2f} | {spe:.1f} |")


if __name__ == "__main__":
    main()
