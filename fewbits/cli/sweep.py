"""``fewbits sweep``: run a precision sweep from a TOML file into a resumable results store."""

from __future__ import annotations

import re

import click

from fewbits.cli.options import cost_option
from fewbits.cli.paths import OutputDir

EXAMPLES = """
\b
Examples:
  fewbits sweep sweep.toml --results build/results
  fewbits sweep sweep.toml --results build/results --workers 2
  fewbits sweep sweep.toml --results /shared/results --scheduler tcp://10.0.0.5:8786
  fewbits report build/results -o build/report

\b
Killed (Ctrl-C, SIGKILL)?  Run the same command again: finished stages are
kept, the rest is computed.  The sweep file format is described in
fewbits/flow/config.py (datasets, networks, epochs, [[grid]] tables of
fp32 | float | fixed | dfixed formats, [hardware], [cosim], [synth]).


Your own model: networks = ["lenet.py:lenet"] names FILE.py:FUNCTION inside
the sweep file's folder.  That file RUNS AS PYTHON, when the sweep is read
(--dry-run too) and in every training stage: run only sweep files you trust.
"""

_SCHED = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s]+$")


@click.command("sweep", epilog=EXAMPLES)
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--results", "results", required=True, type=OutputDir(),
              help="Results store (one JSON per point; re-use it to resume).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Points run in parallel on a local process pool.")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Submit points to this Dask distributed scheduler instead (store on shared storage).")
@click.option("--retry-failed", is_flag=True, help="Re-run stages recorded as failed (default: keep them).")
@click.option("--dry-run", is_flag=True, help="Validate the file and list the points; run nothing.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--budget", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="Error budget (percentage points over fp32) of the recommendation printed at the end.")
@click.option("--rule", type=click.Choice(["confidence", "mean"]), default="confidence", show_default=True,
              help="confidence: the paired 95 % upper bound over fp32 within --budget; mean: the mean within it.")
@cost_option
def sweep_cmd(config, results, workers, scheduler, retry_failed, dry_run, quiet, budget, rule, cost):
    """Run every point of CONFIG through training, Verilog, co-simulation, synthesis and power."""
    from fewbits.flow.config import load_sweep

    if scheduler is not None and not _SCHED.match(scheduler):
        raise click.BadParameter(f"{scheduler!r}: accepted a Dask scheduler address like tcp://HOST:PORT",
                                 param_hint="--scheduler")
    cfg = load_sweep(config)  # SweepConfigError (a ValueError) -> one line, exit 2
    from fewbits.report.costs import check_sweep

    check_sweep(cost, cfg.points)  # a --cost no point computes: refused before any work (CostError, exit 2)
    for path in sorted({p["model"]["path"] for p in cfg.points if p.get("model")}):
        click.echo(f"sweep {cfg.name}: running model code from {path}", err=True)
    from fewbits.flow.engine import (
        Interrupted,
        exit_interrupted,
        point_key,
        point_label,
        run_sweep,
    )

    if dry_run:
        for p in cfg.points:
            click.echo(f"{point_key(p)}  {p['dataset']:>13}  {p['net']:<10}  {point_label(p)}")
        click.echo(f"{len(cfg.points)} points", err=True)
        return
    click.echo(f"sweep {cfg.name}: {len(cfg.points)} points -> {results}"
               + (f" on {scheduler}" if scheduler else f" ({workers} worker{'s' * (workers > 1)})"), err=True)
    try:
        recs = run_sweep(cfg.points, results, workers=workers, scheduler=scheduler, progress=not quiet,
                         retry_failed=retry_failed, meta={"name": cfg.name, "source": str(config)})
    except Interrupted as e:
        exit_interrupted(e)
    except OSError as e:
        if "scheduler" in str(e).lower() or "timed out" in str(e).lower():
            raise click.ClickException(f"cannot reach the Dask scheduler {scheduler}: {e}") from e
        raise
    summarize(recs, results)
    for line in recommendation_lines(results, budget, rule, cost):
        click.echo(line)


def recommendation_lines(results, budget: float, rule: str, cost: str | None = None) -> list[str]:
    """The report's first lines (recommendation with its interval and seeds, saving, front) from the store."""
    from fewbits.flow.store import Store
    from fewbits.report.build import summary_lines
    from fewbits.report.data import build

    return summary_lines(build(Store(results), budget, rule, cost))


def summarize(recs: list[dict], results) -> None:
    ok = sum(r["status"] == "ok" for r in recs)
    partial = sum(r["status"] == "partial" for r in recs)
    failed = [r for r in recs if r["status"] == "failed"]
    click.echo(f"{ok} ok, {partial} partial (a stage not available), {len(failed)} failed; store: {results}")
    for r in failed[:10]:
        click.echo(f"  failed: {r.get('label', '?')}: {r.get('reason')}", err=True)
    if partial:
        missing = sorted({f"{n} ({s['reason']})" for r in recs if r["status"] == "partial"
                          for n, s in r["stages"].items() if s["status"] == "unavailable"})
        click.echo(f"  not run: {'; '.join(missing[:4])}", err=True)


command = sweep_cmd
