"""``fewbits report``: write the HTML/CSV/JSON report and plots of a results store."""

from __future__ import annotations

import click

from fewbits.cli.options import cost_option
from fewbits.cli.paths import OutputDir

EXAMPLES = """
\b
Examples:
  fewbits report build/results -o build/report
  fewbits report build/results -o build/report --budget 0.25
  fewbits report build/results -o build/report --rule mean   # the old rule, for comparison
  fewbits report build/results -o build/report --cost area_um2   # rank by sky130 µm² per MAC

\b
Writes OUT/index.html (self-contained: plots inline as SVG), results.csv (one
row per run), summary.csv (one row per configuration: runs that differ only in
the seed, with the mean test error and its 95 % interval), results.json and
every plot as PNG and SVG.  The recommended precision is the cheapest
configuration whose test error over fp32, paired by seed, is within --budget
percentage points with 95 % confidence (--rule mean: its mean is); cheapest by
--cost (default: transistors, else LUTs, else the 45 nm energy; the sky130
axes come from the sweep's "sky130" synthesis target).
"""


@click.command("report", epilog=EXAMPLES)
@click.argument("results", type=click.Path(file_okay=False))
@click.option("-o", "--out", "out_dir", required=True, type=OutputDir(), help="Report folder.")
@click.option("--budget", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="Error budget in percentage points over fp32 for the recommendation.")
@click.option("--rule", type=click.Choice(["confidence", "mean"]), default="confidence", show_default=True,
              help="confidence: the paired 95 % upper bound over fp32 within --budget; mean: the mean within it.")
@cost_option
def report_cmd(results, out_dir, budget, rule, cost):
    """Report a sweep's RESULTS store: error vs bits, area and energy, the Pareto front."""
    from pathlib import Path

    if not Path(results).is_dir():
        raise click.BadParameter(f"{results}: no such folder (accepted the --results folder of `fewbits sweep`)",
                                 param_hint="RESULTS")
    res, out = Path(results).resolve(), Path(out_dir).resolve()
    if out == res or res in out.parents:
        raise click.BadParameter(f"{out_dir} is inside the results store {results}: writing there would mix report "
                                 f"files into the store (accepted a folder outside it)", param_hint="'-o'")
    from fewbits.report.build import write_report

    r = write_report(results, out_dir, budget, rule, cost)
    for line in r["summary"]:
        click.echo(line)
    click.echo(f"report: {r['index']}")


command = report_cmd
