"""``fewbits report``: write the HTML/CSV/JSON report and plots of a results store."""

from __future__ import annotations

import click

from fewbits.cli.paths import OutputDir

EXAMPLES = """
\b
Examples:
  fewbits report build/results -o build/report
  fewbits report build/results -o build/report --budget 0.25

\b
Writes OUT/index.html (self-contained: plots inline as SVG), results.csv,
results.json and every plot as PNG and SVG.  The recommended precision is the
cheapest point whose test error is within --budget percentage points of fp32.
"""


@click.command("report", epilog=EXAMPLES)
@click.argument("results", type=click.Path(file_okay=False))
@click.option("-o", "--out", "out_dir", required=True, type=OutputDir(), help="Report folder.")
@click.option("--budget", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="Error budget in percentage points over fp32 for the recommendation.")
def report_cmd(results, out_dir, budget):
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

    r = write_report(results, out_dir, budget)
    for line in r["summary"]:
        click.echo(line)
    click.echo(f"report: {r['index']}")


command = report_cmd
