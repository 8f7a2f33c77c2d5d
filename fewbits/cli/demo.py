"""``fewbits demo``: the built-in sweep on ``digits`` through every stage to the report (``make demo``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from fewbits.cli.options import cost_option
from fewbits.cli.paths import OutputDir

EXAMPLES = """
\b
Examples:
  fewbits demo -o build/demo
  fewbits demo -o build/demo --dataset fashion-mnist --workers 2
  fewbits demo -o build/demo --epochs 4          # a quicker look

\b
Writes OUT/sweep.toml (the sweep it runs: copy it to make your own), the
results store OUT/results (re-running resumes and recomputes nothing) and the
report OUT/report/index.html.
"""


@click.command("demo", epilog=EXAMPLES)
@click.option("-o", "--output-dir", "out_dir", default="build/demo", show_default=True,
              type=OutputDir(), help="Output folder.")
@click.option("--rows", type=click.IntRange(1, 32), default=1, show_default=True, help="MAC array rows.")
@click.option("--cols", type=click.IntRange(1, 32), default=1, show_default=True, help="MAC array columns.")
@click.option("--dataset", type=click.Choice(["digits", "fashion-mnist", "mnist"]), default="digits",
              show_default=True, help="digits ships with scikit-learn; fashion-mnist/mnist need their IDX files.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Training epochs (default: the demo's).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Parallel points (default: CPU cores, max 2).")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT", help="Run on a Dask cluster instead.")
@click.option("--budget", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="Error budget (percentage points over fp32) of the recommendation.")
@click.option("--rule", type=click.Choice(["confidence", "mean"]), default="confidence", show_default=True,
              help="confidence: the paired 95 % upper bound over fp32 within --budget; mean: the mean within it.")
@cost_option
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo_cmd(out_dir, rows, cols, dataset, epochs, workers, scheduler, budget, rule, cost, quiet):
    """Run the main job end to end on a small example: sweep over 3 seeds, report, the recommendation."""
    from fewbits.flow.config import parse_sweep
    from fewbits.flow.demo import demo_toml
    from fewbits.flow.store import atomic_write_text

    out = Path(out_dir)
    if dataset != "digits":
        from fewbits.training import datasets as ds

        try:
            ds.load(dataset)
        except ds.DatasetError as e:
            raise click.ClickException(str(e)) from e
    text = demo_toml(dataset, epochs, rows, cols)
    cfg = parse_sweep(text, str(out / "sweep.toml"))
    from fewbits.report.costs import check_sweep

    check_sweep(cost, cfg.points)
    atomic_write_text(out / "sweep.toml", text)
    workers = workers or max(1, min(2, os.cpu_count() or 1))
    from fewbits.flow.engine import Interrupted, exit_interrupted, run_sweep
    from fewbits.report.build import write_report

    n_seeds = len({p["seed"] for p in cfg.points})
    click.echo(f"fewbits demo: {len(cfg.points)} runs on {dataset} ({len(cfg.points) // n_seeds} configurations x "
               f"{n_seeds} seeds; fp32, fp16, fixed, dynamic fixed): train -> Verilog -> co-simulate -> synthesize "
               f"(cmos, ice40, sky130) -> power, once per configuration -> report", err=True)
    t0 = time.time()
    try:
        recs = run_sweep(cfg.points, out / "results", workers=workers, scheduler=scheduler, progress=not quiet,
                         meta={"name": cfg.name, "source": str(out / "sweep.toml")})
    except Interrupted as e:
        exit_interrupted(e)
    from fewbits.cli.sweep import summarize

    summarize(recs, out / "results")
    r = write_report(out / "results", out / "report", budget, rule, cost)
    click.echo(f"wall time {time.time() - t0:.0f} s")
    for line in r["summary"]:
        click.echo(line)
    click.echo(f"report: {r['index'].resolve()}")


command = demo_cmd
