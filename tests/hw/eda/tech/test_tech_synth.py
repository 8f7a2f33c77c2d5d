"""Yosys on a fewbits-written Liberty with its tech.json sidecar: delay-driven abc, the critical
path in ps from the tables, µm² and the model name recorded.  The Liberty here is written by
``liberty.write`` from fixed synthetic tables (inv/nand2/buf), so the test needs no ngspice."""

import sys
from pathlib import Path

import pytest
from fewbits.hw.eda import synth as S
from fewbits.hw.eda.tech import build, liberty
from fewbits.hw.eda.tech import characterize as ch

sys.path.insert(0, str(Path(__file__).parent))
from test_tech import _rec  # noqa: E402

from ..test_synth import mul_design  # noqa: E402

AREAS = {"inv_1": 3.7536, "nand2_1": 3.7536, "buf_1": 3.7536}


@pytest.fixture
def tech_lib(tmp_path):
    inv = _rec()
    arc = inv["outputs"]["Y"]["arcs"][0]
    nand = {**inv, "name": "sky130_fd_sc_hd__nand2_1", "inputs": ["A", "B"], "caps": {"A": 0.002, "B": 0.002},
            "outputs": {"Y": {"function": "(!A&!B)|(!A&B)|(A&!B)", "arcs": [arc, dict(arc, related="B")]}}}
    buf = {**inv, "name": "sky130_fd_sc_hd__buf_1",
           "outputs": {"X": {"function": "(A)", "arcs": [dict(arc, sense="positive_unate")]}}}
    lib = tmp_path / "t.lib"
    lib.write_text(liberty.write([inv, nand, buf], ch.Settings(), "t", "test"))
    build._sidecars(lib, tuple(AREAS), ch.Settings())
    return lib


def test_delay_and_area_recorded(tech_lib, tmp_path_factory):
    r = S.synthesize(mul_design(4, tmp_path_factory), "liberty", liberty=tech_lib)
    f = r["figures"]
    assert "-constr" in r["script"] and "abc -D" in r["script"]
    assert f["delay_ps"] > 0 and f["fmax_mhz"] == round(1e6 / f["delay_ps"], 1)
    assert f["area_um2"] == pytest.approx(sum(3.7536 * n for n in f["cells_by_type"].values()), rel=1e-6)
    assert r["model"].startswith("sky130_fd_sc_hd tt 1.8V 25C, characterized by fewbits ")


def test_wider_is_slower(tech_lib, tmp_path_factory):
    d4 = S.synthesize(mul_design(4, tmp_path_factory), "liberty", liberty=tech_lib)["figures"]["delay_ps"]
    d8 = S.synthesize(mul_design(8, tmp_path_factory), "liberty", liberty=tech_lib)["figures"]["delay_ps"]
    assert d8 > d4


def test_plain_liberty_keeps_area_only_script(tech_lib, tmp_path_factory):
    tech_lib.with_name("tech.json").unlink()
    r = S.synthesize(mul_design(4, tmp_path_factory), "liberty", liberty=tech_lib)
    assert "abc -liberty" in r["script"] and "delay_ps" not in r["figures"] and "model" not in r
