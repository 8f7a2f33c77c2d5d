"""``fewbits verilog``: writes TOP.v + TOP.json; bad input is one line and nothing is built."""

import json

import pytest
from click.testing import CliRunner

from fewbits import cli

BASE = ["verilog", "--rows", "2", "--cols", "3", "--a", "fixed:8:6", "--b", "fixed:8:7", "--out", "fixed:8:5"]


def invoke(args):
    return CliRunner().invoke(cli.main, args, prog_name="fewbits")


def test_writes_verilog_and_manifest(tmp_path):
    out = tmp_path / "hw"
    r = invoke([*BASE, "--k-max", "64", "--name", "top_a", "-o", str(out)])
    assert r.exit_code == 0, r.output
    man = json.loads((out / "top_a.json").read_text())
    assert (man["top"], man["rows"], man["cols"], man["k_max"]) == ("top_a", 2, 3, 64)
    assert man["formats"]["a"] == "fixed:8:6" and man["formats"]["acc"].startswith("acc:")
    assert "module top_a(" in (out / "top_a.v").read_text()


def test_default_name(tmp_path):
    r = invoke([*BASE, "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "mac_2x3.v").exists() and (tmp_path / "mac_2x3.json").exists()


@pytest.mark.parametrize("extra, fragment", [
    (["--a", "fixed:33:0"], "widths 1..32"),
    (["--a", "fixed:0:3"], "width"),
    (["--b", "fp64"], "up to 32 bits"),
    (["--b", "fp16"], "not mixed"),
    (["--out", "float:5:10,subnormals=off"], "subnormals"),
    (["--a", "acc:20:3"], "accepted"),
    (["--rows", "0"], "rows"),
    (["--cols", "33"], "cols"),
    (["--acc", "acc:12:13"], "too narrow"),
    (["--k-max", "0"], "k-max"),
    (["--name", "9lives"], "--name"),
    (["--name", "module"], "not a Verilog keyword"),
    (["--name", "fewbits_tb"], "reserved for the co-simulation testbench"),  # cosim's own module
    (["--bias", "dfixed:8", "--acc", "acc:30:15"], "dynamic"),  # runtime shifts count from the product grid
    (["--rows", "two"], "two"),
])
def test_bad_input_is_one_line_before_building(tmp_path, extra, fragment):
    out = tmp_path / "hw"
    r = invoke([*BASE, *extra, "-o", str(out)])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("fewbits: error:") and fragment in lines[0], lines[0]
    assert not out.exists()


def test_narrow_accumulator_accepted_with_wrap(tmp_path):
    r = invoke([*BASE, "--acc", "acc:12:13,overflow=wrap", "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    from fewbits.sim import parse_format

    acc = json.loads((tmp_path / "mac_2x3.json").read_text())["formats"]["acc"]
    assert parse_format(acc) == parse_format("acc:12:13,overflow=wrap")


@pytest.mark.parametrize("args, fragment, wrong", [
    (["--cols", "-1"], "bad cols -1", "mac_2x-1"),  # the shape is blamed, not the top name made of it
    (["--rows", "-2"], "bad rows -2", "mac_-2x3"),
])
def test_a_bad_shape_is_blamed_on_the_shape(tmp_path, args, fragment, wrong):
    r = invoke([*BASE, *args, "-o", str(tmp_path / "hw")])
    assert r.exit_code == 2 and fragment in r.stderr and wrong not in r.stderr, r.stderr


@pytest.mark.parametrize("drop", ["--a", "--b", "--out", "--rows", "--cols"])
def test_a_missing_required_option_is_named(tmp_path, drop):
    i = BASE.index(drop)
    r = invoke([*BASE[:i], *BASE[i + 2:], "-o", str(tmp_path / "hw")])
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and f"Missing option '{drop}'" in lines[0], r.stderr
    assert "None" not in lines[0]


@pytest.mark.parametrize("arch", ["booth", "dadda"])
def test_multiplier_architecture_reaches_manifest_and_verilog(tmp_path, arch):
    r = invoke([*BASE, "--multiplier", arch, "-o", str(tmp_path / arch)])
    assert r.exit_code == 0, r.output
    from fewbits.hw.manifest import load_manifest

    spec = load_manifest(tmp_path / arch / "mac_2x3.json").spec
    assert spec.multiplier == arch
    default = invoke([*BASE, "-o", str(tmp_path / "yosys")])
    assert default.exit_code == 0 and "multiplier" not in (tmp_path / "yosys" / "mac_2x3.json").read_text()
    assert (tmp_path / arch / "mac_2x3.v").read_text() != (tmp_path / "yosys" / "mac_2x3.v").read_text()


def test_unknown_multiplier_is_one_line(tmp_path):
    r = invoke([*BASE, "--multiplier", "wallace", "-o", str(tmp_path / "hw")])
    assert r.exit_code == 2 and "wallace" in r.stderr and "booth" in r.stderr and not (tmp_path / "hw").exists()
