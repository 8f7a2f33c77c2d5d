"""hw.power with real Yosys + Icarus: the gate model computes products, energy tracks activity."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from fewbits.hw.eda import power as P
from fewbits.hw.eda.power_vectors import capture_operands, synthetic
from fewbits.hw.eda.synth_parts import part_design
from fewbits.hw.eda.synth_tools import SynthError
from fewbits.sim import MacSpec, parse_format

pytestmark = pytest.mark.skipif(not (shutil.which("yosys") and shutil.which("iverilog")),
                                reason="needs yosys and iverilog (apt-get install yosys iverilog)")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FEWBITS_CACHE", str(tmp_path_factory.getbasetemp() / "fewbits-cache"))


def spec_of(fmt: str, rows=1, cols=1) -> MacSpec:
    f = parse_format(fmt)
    return MacSpec(f, f, f, rows=rows, cols=cols, k_max=64)


@pytest.mark.parametrize("seed", [11, 12])
def test_gate_model_computes_exact_products(seed):
    """The generated gate-level model is the design: its outputs equal a*b code for code."""
    spec = spec_of("fixed:6:2")
    d = part_design(spec, "multiplier", name="mul6")
    ops = synthetic(spec, "random", seed, 4, 8, 3)
    rec = P.estimate(d, [ops], spec=spec, trace=True)
    seq = rec["sequence"][2:]   # after warm-up
    w = 12
    got = rec["trace"][2:]
    expect = []
    for v in seq:
        a = v["a"] - (1 << 6) if v["a"] >> 5 else v["a"]
        b = v["b"] - (1 << 6) if v["b"] >> 5 else v["b"]
        expect.append((a * b) & ((1 << w) - 1))
    assert got == expect


def test_constant_inputs_zero_energy():
    spec = spec_of("fixed:8:0")
    d = part_design(spec, "multiplier", name="mul8")
    rec = P.estimate(d, [synthetic(spec, "constant", 5, 4, 16, 4)], spec=spec)
    assert rec["figures"]["toggles"] == 0 and rec["figures"]["energy_total_fj"] == 0.0
    assert rec["figures"]["model"] == "fewbits-45nm-v1"


@pytest.mark.parametrize("seed", [21])
def test_energy_grows_with_activity(seed):
    spec = spec_of("fixed:8:0")
    d = part_design(spec, "multiplier", name="mul8")
    e = [P.estimate(d, [synthetic(spec, "random", seed, 4, 32, 4, act)], spec=spec)["figures"]["energy_per_mac_pj"]
         for act in (0.05, 0.3, 1.0)]
    assert 0 < e[0] < e[1] < e[2]


@pytest.mark.parametrize("seed", [31])
def test_energy_grows_with_width(seed):
    e = []
    for w in (4, 8):
        spec = spec_of(f"fixed:{w}:0")
        d = part_design(spec, "multiplier", name=f"mul{w}")
        e.append(P.estimate(d, [synthetic(spec, "random", seed, 4, 32, 4)], spec=spec)["figures"]["energy_per_mac_pj"])
    assert e[0] < e[1]


def test_mac_array_counts_macs_and_clock_energy(tmp_path):
    from fewbits.hw import export
    from fewbits.hw.design import load_designs

    spec = spec_of("fixed:4:1", rows=2, cols=2)
    export.verilog(spec, tmp_path, "arr")
    (d,) = load_designs(tmp_path)
    ops = synthetic(spec, "constant", 1, 4, 8, 4)   # 2x2 tiles of a 4x4 result, K = 8
    rec = P.estimate(d, [ops], spec=spec)
    assert rec["macs"] == 4 * 8 * 4
    f = rec["figures"]
    assert f["flip_flops"] > 0 and f["energy_clock_fj"] > 0     # the clock switches regardless of data
    assert f["energy_total_fj"] == pytest.approx(f["energy_data_fj"] + f["energy_clock_fj"])


def write_capture(dirpath, spec, seed):
    """A capture in the training layout, written by training.capture.Recorder itself."""
    from fewbits.training.capture import Recorder
    from fewbits.training.qcore import QT

    g = torch.Generator().manual_seed(seed)
    a = spec.a_fmt.encode(torch.randn(6, 10, generator=g, dtype=torch.float64))
    b = spec.b_fmt.encode(torch.randn(10, 3, generator=g, dtype=torch.float64))
    z, ovf = spec.compute(a, b)
    cap = Recorder(["L0"], step=0)
    cap.hook("L0:forward", QT(spec.a_fmt.decode(a), a, spec.a_fmt), QT(spec.b_fmt.decode(b), b, spec.b_fmt), None,
             QT(spec.out_fmt.decode(z), z, spec.out_fmt), ovf)
    cap.save(dirpath)
    return a.numpy(), b.numpy()


@pytest.mark.parametrize("seed", [41])
def test_capture_vectors(tmp_path, seed):
    spec = spec_of("fixed:6:3")
    a, b = write_capture(tmp_path / "cap", spec, seed)
    (ops,) = capture_operands(tmp_path / "cap", spec)
    assert np.array_equal(ops.a, a) and np.array_equal(ops.b, b) and not ops.notes
    d = part_design(spec, "mac_unit", name="pe")
    rec = P.estimate(d, [ops], spec=spec)
    assert rec["macs"] == 6 * 3 * 10 and rec["figures"]["energy_per_mac_pj"] > 0
    # a capture in another format is converted by value, and says so
    (ops2,) = capture_operands(tmp_path / "cap", spec_of("fixed:8:3"))
    assert ops2.notes and np.array_equal(ops2.a, a)


def test_not_a_mac_design(tmp_path):
    from fewbits.hw.eda.power_vectors import layout

    with pytest.raises(SynthError, match="power needs a fewbits design"):
        layout({"x": ("input", [2]), "y": ("output", [3])})


def test_cli_power_and_bad_input(tmp_path):
    from fewbits.hw import export

    from fewbits.cli import main

    spec = spec_of("fixed:4:1", rows=1, cols=1)
    export.verilog(spec, tmp_path / "hw", "arr")
    r = CliRunner().invoke(main, ["power", str(tmp_path / "hw"), "--vectors", "random:0.5", "--shape", "2,8,2",
                                  "-o", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output + r.stderr
    assert re.search(r"energy/MAC [0-9.]+ pJ", r.output) and "fewbits-45nm-v1" in r.output
    assert (tmp_path / "o" / "arr.multiplier.power.json").exists()
    for args, pat in [(["--vectors", "noise"], "accepted random"), (["--vectors", "random:2"], r"\(0, 1\]"),
                      (["--capture", str(tmp_path / "none")], "no such capture")]:
        bad = CliRunner().invoke(main, ["power", str(tmp_path / "hw"), *args, "-o", str(tmp_path / "o")])
        lines = [x for x in bad.stderr.splitlines() if x.strip()]
        assert bad.exit_code != 0 and len(lines) == 1 and re.search(pat, lines[0]), bad.stderr


def test_cli_power_on_a_missing_design_names_the_design_not_the_vectors(tmp_path, monkeypatch):
    """Without --capture/--vectors and no default capture, a missing design is still the error reported."""
    from fewbits.cli import main

    monkeypatch.chdir(tmp_path)  # no build/train/capture here
    bad = CliRunner().invoke(main, ["power", str(tmp_path / "nodesign")])
    lines = [x for x in bad.stderr.splitlines() if x.strip()]
    assert bad.exit_code == 2 and len(lines) == 1, bad.stderr
    assert "nodesign: no such file or directory" in lines[0] and "vectors" not in lines[0]


# ---------------------------------------------------------------- Liberty power model

def tiny_lib(internal_fj: float | None, caps: bool = False) -> str:
    """A small valid Liberty library; with ``internal_fj``, every output pin has internal_power tables;
    with ``caps``, every input pin has its own capacitance (else 1.5 fF)."""
    ip = ("" if internal_fj is None else
          f'internal_power () {{ related_pin : "A" ; rise_power (scalar) {{ values ("{internal_fj}") ; }} '
          f'fall_power (scalar) {{ values ("{internal_fj}") ; }} }}')
    cells = [("BUF", 0.8, ["A"], '"A"'), ("INV", 0.5, ["A"], "\"A'\""), ("NAND2", 0.8, ["A", "B"], "\"(A B)'\""),
             ("NOR2", 0.8, ["A", "B"], "\"(A+B)'\""), ("XOR2", 1.6, ["A", "B"], '"(A^B)"')]
    body = []
    for k, (name, area, ins, func) in enumerate(cells):
        pins = " ".join(f"pin ({p}) {{ direction : input ; capacitance : {1.5 + 0.1 * k + 0.03 * j if caps else 1.5} ; }}"
                        for j, p in enumerate(ins))
        body.append(f"cell ({name}) {{ area : {area} ; {pins} pin (Y) {{ direction : output ; function : {func} ; {ip} }} }}")
    body.append("cell (DFF) { area : 4.5 ; ff (IQ, IQN) { clocked_on : \"C\" ; next_state : \"D\" ; } "
                "pin (C) { direction : input ; capacitance : 0.9 ; clock : true ; } "
                "pin (D) { direction : input ; capacitance : 1.1 ; } "
                f"pin (Q) {{ direction : output ; function : \"IQ\" ; {ip} }} }}")
    return ("library (tiny) {\n  delay_model : table_lookup ;\n  time_unit : \"1ns\" ;\n  voltage_unit : \"1V\" ;\n"
            "  nom_voltage : 1.0 ;\n  capacitive_load_unit (1, ff) ;\n  " + "\n  ".join(body) + "\n}\n")


@pytest.mark.parametrize("seed", [51])
def test_liberty_power_model(tmp_path, seed):
    spec = spec_of("fixed:5:0")
    d = part_design(spec, "multiplier", name="mul5")
    (tmp_path / "a.lib").write_text(tiny_lib(None))
    (tmp_path / "b.lib").write_text(tiny_lib(2.0))
    ops = synthetic(spec, "random", seed, 3, 8, 3)
    a = P.estimate(d, [ops], spec=spec, liberty=tmp_path / "a.lib", trace=True)
    b = P.estimate(d, [ops], spec=spec, liberty=tmp_path / "b.lib")
    # the Liberty-mapped model computes the products
    expect = []
    for v in a["sequence"][2:]:
        x = v["a"] - 32 if v["a"] >> 4 else v["a"]
        y = v["b"] - 32 if v["b"] >> 4 else v["b"]
        expect.append((x * y) & 0x3FF)
    assert a["trace"][2:] == expect
    assert a["figures"]["model"] == "liberty:tiny" and a["area"] > 0
    # same mapping, same toggles; the internal energy adds 2 fJ per toggle of every cell-driven net
    fa, fb = a["figures"], b["figures"]
    assert fa["toggles"] == fb["toggles"]
    cell_toggles = fa["toggles"] - fa["toggles_by_driver"].get("input", 0)
    assert fb["energy_data_fj"] - fa["energy_data_fj"] == pytest.approx(2.0 * cell_toggles, rel=1e-9)
    const = P.estimate(d, [synthetic(spec, "constant", seed, 3, 8, 3)], spec=spec, liberty=tmp_path / "b.lib")
    assert const["figures"]["energy_total_fj"] == 0.0



# ---------------------------------------------------------------- Liberty cells as table primitives

def check_same_as_expressions(d, spec, ops, liberty, monkeypatch) -> dict:
    """``estimate`` with each Liberty cell output as a table primitive (UDP) gives the same toggles
    and energies as with the cell's function as a Verilog expression (the model before the
    primitives, kept for outputs of more than ``UDP_MAX_INPUTS`` pins); returns the record."""
    from pathlib import Path

    udp = P.estimate(d, [ops], spec=spec, liberty=liberty)
    assert "primitive" in (Path(udp["work"]) / "tb.v").read_text()
    monkeypatch.setattr(P, "UDP_MAX_INPUTS", 0)
    expr = P.estimate(d, [ops], spec=spec, liberty=liberty)
    assert "primitive" not in (Path(expr["work"]) / "tb.v").read_text()
    assert udp["figures"] == expr["figures"] and udp["groups"] == expr["groups"]
    assert udp["figures"]["toggles"] > 0
    return udp


@pytest.mark.parametrize("seed", [61])
def test_table_primitives_count_what_expressions_count(tmp_path, seed, monkeypatch):
    """On a MAC unit (flip-flops) and a bare multiplier, with a Liberty library whose pins all
    differ in capacitance (so nets fall into many groups)."""
    spec = spec_of("fixed:4:1")
    lib = tmp_path / "a.lib"
    lib.write_text(tiny_lib(0.7, caps=True))
    for part in ("mac_unit", "multiplier"):
        with monkeypatch.context() as m:
            rec = check_same_as_expressions(part_design(spec, part, name=f"{part}4"), spec,
                                            synthetic(spec, "random", seed, 3, 8, 3), lib, m)
        assert (rec["figures"]["flip_flops"] > 0) == (part == "mac_unit")
