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
    build.write_sidecars(lib, tuple(AREAS), ch.Settings())
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


# ---------------------------------------------------------------- on the characterized sky130 cells (ngspice)

def test_sky130_multiplier_computes_products(small_lib, tmp_path_factory):
    """Yosys maps a 4-bit signed multiplier onto the characterized cells; Icarus runs the netlist
    with every cell modelled by its Liberty function, and the outputs are a*b code for code."""
    from fewbits.hw.eda import power as P
    from fewbits.hw.eda.power_vectors import synthetic
    from fewbits.hw.eda.tech import build as B

    d = mul_design(4, tmp_path_factory)
    seed = 41
    ops = synthetic(d.spec, "random", seed, 4, 16, 4)
    rec = P.estimate(d, [ops], spec=d.spec, liberty=small_lib, clock_mhz=None, trace=True)
    got, seq = rec["trace"][2:], rec["sequence"][2:]
    signed = lambda v: v - 16 if v >> 3 else v  # noqa: E731
    assert len(seq) > 20
    assert got == [(signed(v["a"]) * signed(v["b"])) & 0xFF for v in seq]
    f = rec["figures"]
    assert f["model"] == B.model_name() and rec["clock_source"] == "fmax"
    assert f["clock_mhz"] == rec["timing"]["fmax_mhz"] and f["power_mw"] > 0 and f["energy_per_mac_pj"] > 0
    syn = S.synthesize(d, "liberty", liberty=small_lib)["figures"]
    assert set(syn["cells_by_type"]) <= {f"sky130_fd_sc_hd__{c}" for c in B.SMALL}
    assert syn["area_um2"] == pytest.approx(sum(B.pdk.cell(t.split("__")[1]).area * n
                                                for t, n in syn["cells_by_type"].items()), rel=1e-9)


def test_sky130_area_grows_with_width(small_lib, tmp_path_factory):
    a8, a16 = (S.synthesize(mul_design(w, tmp_path_factory), "liberty", liberty=small_lib)["figures"]["area_um2"]
               for w in (8, 16))
    assert 2.5 <= a16 / a8 <= 5, (a8, a16)


@pytest.mark.slow
def test_sky130_full_library_area_ratio(tmp_path_factory):
    """The same ratio on the full 34-cell library (characterized on first use: minutes)."""
    full = build.build(build.FULL, progress=False)
    a8, a16 = (S.synthesize(mul_design(w, tmp_path_factory), "liberty", liberty=full)["figures"]["area_um2"]
               for w in (8, 16))
    assert 2.5 <= a16 / a8 <= 5, (a8, a16)



def test_sky130_power_same_energy_as_expressions(small_lib, monkeypatch):
    """The sky130 power path with table primitives gives the energy of the expression model it replaced."""
    from fewbits.hw.eda.power_vectors import synthetic
    from fewbits.hw.eda.synth_parts import part_design

    from ..test_power import check_same_as_expressions, spec_of

    spec = spec_of("fixed:4:1")
    rec = check_same_as_expressions(part_design(spec, "mac_unit", name="pe4"), spec,
                                    synthetic(spec, "random", 71, 3, 8, 3), small_lib, monkeypatch)
    assert rec["figures"]["flip_flops"] > 0 and rec["figures"]["model"].startswith("sky130_fd_sc_hd")


def test_sky130_power_model_is_one_node_per_cell_output(small_lib, tmp_path_factory):
    """What made the sky130 power stage take minutes (docs/HARDWARE.md): each cell output was its
    function's sum of minterms as a tree of gates (a nand2: 8 of them), and Icarus's compile of
    them grew faster than the netlist.  Each combinational output must be one node of the compiled
    simulation, at every width."""
    import re
    import subprocess

    from fewbits.hw.eda import power as P
    from fewbits.hw.eda.power_liberty import load

    for w in (4, 8):
        syn = S.synthesize(mul_design(w, tmp_path_factory), "liberty", liberty=small_lib)
        nl = P.GateNetlist.from_json(syn["netlist"], load(small_lib))
        work = tmp_path_factory.mktemp(f"tb{w}")
        ins = [n for n, (d, _) in nl.ports.items() if d == "input"]
        (work / "tb.v").write_text(P.testbench(nl, ins, 4, [], "v.hex", None))
        subprocess.run(["iverilog", "-g2012", "-o", "tb.vvp", "tb.v"], cwd=work, check=True, timeout=600)
        vvp = (work / "tb.vvp").read_text()
        outputs = sum(1 for _, conn, dirs in nl.cells for p in conn if dirs[p] == "output")
        nodes = len(re.findall(r"^\S+ \.(?:functor|udp) ", vvp, re.M))
        assert outputs > 0 and nodes == outputs, (w, outputs, nodes)
