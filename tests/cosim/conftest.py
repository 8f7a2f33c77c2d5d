"""Shared helpers of the co-simulation tests: small generated designs (cached per session)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def make_design(tmp_path_factory):
    """``make_design(a, b, out, rows, cols, k_max)`` -> a loaded ``Design`` exported by fewbits.hw."""
    made = {}

    def make(a, b, out, rows=2, cols=3, k_max=32):
        key = (a, b, out, rows, cols, k_max)
        if key not in made:
            from fewbits.hw.design import load_design
            from fewbits.hw import export
            from fewbits.sim import MacSpec

            d = tmp_path_factory.mktemp("design")
            export.verilog(MacSpec(a, b, out, rows=rows, cols=cols, k_max=k_max), d, f"mac_{rows}x{cols}")
            made[key] = load_design(d)
        return made[key]

    return make
