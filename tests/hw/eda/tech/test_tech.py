"""sky130 characterization: PDK reading (exact LEF areas, functions), deck logic, Liberty writer;
the ngspice runs themselves are in test_build.py."""

import itertools

import pytest
from fewbits.hw.eda import power_liberty
from fewbits.hw.eda.tech import characterize as ch
from fewbits.hw.eda.tech import liberty, pdk, spice


@pytest.mark.parametrize("short,area", [("inv_1", 3.7536), ("nand2_1", 3.7536), ("fa_1", 20.0192),
                                        ("dfxtp_1", 20.0192)])
def test_area_equals_lef(short, area):
    assert pdk.cell(short).area == area


def test_functions_from_the_pdk():
    fa = pdk.cell("fa_1")
    assert fa.inputs == ["A", "B", "CIN"] and fa.outputs == ["COUT", "SUM"]
    for vec in itertools.product((0, 1), repeat=3):
        assert fa.table["SUM"][vec] == sum(vec) & 1
        assert fa.table["COUT"][vec] == int(sum(vec) >= 2)
    mux = pdk.cell("mux2_1")
    for a0, a1, s in itertools.product((0, 1), repeat=3):
        assert mux.table["X"][(a0, a1, s)] == (a1 if s else a0)
    assert pdk.cell("dfxtp_1").ff == {"clock": "CLK", "data": "D", "q": "Q"}


def test_function_string_reads_back():
    info = pdk.cell("a21oi_1")
    f = pdk.function(info, "Y")
    expr = power_liberty.to_verilog(f, lambda p: p)
    for vec in itertools.product((0, 1), repeat=3):
        env = dict(zip(info.inputs, vec))
        py = expr.replace("~", " not ").replace("&", " and ").replace("|", " or ")
        assert int(bool(eval(py, {}, env))) == info.table["Y"][vec] == int(not ((vec[0] and vec[1]) or vec[2]))


def test_sensitize_and_unateness():
    nand = pdk.cell("nand2_1")
    side, inv = spice.sensitize(nand, "A", "Y")
    assert side == {"A": 0, "B": 1} and inv
    assert spice.unateness(nand, "A", "Y") == "negative_unate"
    assert spice.unateness(pdk.cell("xor2_1"), "A", "X") == "non_unate"
    assert spice.unateness(pdk.cell("and2_1"), "B", "X") == "positive_unate"


def test_deck_has_one_instance_per_arc_point():
    s = ch.Settings()
    info = pdk.cell("nand2_1")
    d = spice.Deck()
    _, _, plan, leak = ch.deck_pin(info, "A", s, True, d)
    assert len(plan) == len(s.slews) * len(s.loads) * 2 and len(leak) == 4
    text = d.render(info, s.vdd, s.temp, 5.0)
    assert ".option scale=1e-6" in text and "sky130.lib.spice\" tt" in text
    assert sum(1 for ln in text.splitlines() if ln.startswith("X") and ln.endswith(info.name)) == d.n


def _rec():
    grid = [[0.01 * (i + j + 1) for j in range(3)] for i in range(3)]
    arc = {"related": "A", "sense": "negative_unate", **{k: grid for k in (
        "cell_rise", "rise_transition", "cell_fall", "fall_transition", "rise_power", "fall_power")}}
    return {"name": "sky130_fd_sc_hd__inv_1", "area": 3.7536, "inputs": ["A"], "caps": {"A": 0.002},
            "outputs": {"Y": {"function": "(!A)", "arcs": [arc]}}, "leakage": 0.5,
            "leak_states": {"0": 0.4, "1": 0.6}}


def test_liberty_written_reads_back():
    text = liberty.write([_rec()], ch.Settings(), "t", "test")
    lib = power_liberty.parse(text)
    cell = next(g for g in lib["groups"] if g["name"] == "cell")
    assert float(cell["attrs"]["area"]) == 3.7536
    assert lib["attrs"]["capacitive_load_unit"] == ["1", "pf"]


def test_unknown_cell():
    with pytest.raises(pdk.PdkError, match="unknown"):
        pdk.cell("nosuch_1")
