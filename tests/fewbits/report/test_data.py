"""Report rows: widths come from the point's RunSpec, with the sign and as the paper counts them."""

from __future__ import annotations

import pytest

from fewbits.flow.config import parse_sweep
from fewbits.report.data import PAPER, row_of

SWEEP = """\
[train]
paper_bits = {paper}

[[grid]]
family = "fixed"
widths = [12]
update_offsets = [4]

[[grid]]
family = "dfixed"
widths = [10]
update_widths = [12]

[[grid]]
family = "float"
formats = ["fp16"]

[[grid]]
family = "fp32"
"""

# (prop bits with sign, update bits with sign, prop bits as the paper counts, update bits as the paper counts)
EXPECTED = {
    "true": {"fixed": (13, 17, 12, 16), "dfixed": (11, 13, 10, 12), "float": (16, 16, 16, 16), "fp32": (32, 32, 32, 32)},
    "false": {"fixed": (12, 16, 11, 15), "dfixed": (10, 12, 9, 11), "float": (16, 16, 16, 16), "fp32": (32, 32, 32, 32)},
}


@pytest.mark.parametrize("paper", ["true", "false"])
def test_row_widths_follow_the_run_spec(paper):
    rows = {}
    for p in parse_sweep(SWEEP.format(paper=paper)).points:
        r = row_of(None, {"key": p["family"], "status": "ok", "config": p, "stages": {}})  # no stage: no store read
        rows[r["family"]] = (r["prop_bits"], r["update_bits"], r["prop_bits_paper"], r["update_bits_paper"])
    assert rows == EXPECTED[paper]


def test_paper_table_in_its_own_counting_and_with_the_sign():
    got = {p["family"]: (p["prop_bits"], p["update_bits"], p["prop_width"]) for p in PAPER}
    assert got == {"fp32": (32, 32, 32), "float": (16, 16, 16), "fixed": (20, 20, 21), "dfixed": (10, 12, 11)}
