"""Options several commands share, defined once (``report``, ``sweep`` and ``demo`` rank the same way)."""

from __future__ import annotations

import click

from fewbits.report.costs import COSTS, NAMES


def cost_option(f):
    """``--cost AXIS``: the cost axis the recommendation ranks by (a bad name: one line listing them, exit 2)."""
    return click.option(
        "--cost", type=click.Choice(NAMES), default=None, metavar="AXIS",
        help="Cost axis of the recommendation: " + ", ".join(f"{c.field} ({c.label})" for c in COSTS)
             + " [default: the first of these every result has]")(f)
