"""``fewbits cosim``: passes on a good design, and fails (non-zero + mismatch report) on mutated ones."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from fewbits import cli

FIXED = ["--a", "fixed:6:3", "--b", "fixed:5:4", "--out", "fixed:6:3,round=rne"]


def cosim(*args):
    return CliRunner().invoke(cli.main, ["cosim", *args], catch_exceptions=False)


def last_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else ""


@pytest.fixture(scope="module")
def good_design(tmp_path_factory):
    """A design folder written by `fewbits verilog` (2x3 fixed point)."""
    d = tmp_path_factory.mktemp("hw")
    r = CliRunner().invoke(cli.main, ["verilog", "--rows", "2", "--cols", "3", *FIXED, "--k-max", "32",
                                      "-o", str(d)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return d


def test_generate_and_pass(tmp_path):
    r = cosim("--rows", "2", "--cols", "2", *FIXED, "--k-max", "32", "--vectors", "40", "--seed", "2",
              "-o", str(tmp_path))
    assert r.exit_code == 0, r.output + r.stderr
    s = json.loads((tmp_path / "report.json").read_text())
    assert s["ok"] and s["mismatches"] == 0 and s["tiles_checked"] == s["vectors"] > 40
    assert (tmp_path / "design" / "mac_2x2.v").is_file()
    assert r.stdout.startswith("PASS")


# ---- mutants: change one thing in the generated Verilog, the co-simulation must catch it ----------
def _wrap(text, top, body):
    """Rename the design's top to <top>_inner and add a <top> wrapper with the same ports doing ``body``."""
    head = re.search(rf"module {top}\((.*?)\);", text, re.S)
    ports = [p.strip() for p in head.group(1).split(",")]
    text = text.replace(f"module {top}(", f"module {top}_inner(", 1)
    decls = "\n".join(line for line in text[head.end():].split("endmodule", 1)[0].splitlines()
                      if re.match(r"\s*(input|output)\b", line))
    decls = re.sub(r"output\s+reg", "output", decls)
    return text + body(top, ports, decls)


def _override_output(text, man, role, value):
    """Wrap the design so that its ``role`` output port is ``value`` (a Verilog expression of ``<port>_i``)."""
    port = next(p for p in man["ports"] if p["role"] == role)
    name = port["name"]

    def body(top, ports, decls):
        conns = ", ".join(f".{p}({p}_i)" if p == name else f".{p}({p})" for p in ports)
        return (f"\nmodule {top}({', '.join(ports)});\n{decls}\n  wire [{port['width'] - 1}:0] {name}_i;\n"
                f"  {top}_inner inner({conns});\n  assign {name} = {value.format(name + '_i')};\nendmodule\n")

    return _wrap(text, man["top"], body)


def flip_z_bit(text, man):
    return _override_output(text, man, "z", "{} ^ 1")


def ovf_stuck_low(text, man):
    return _override_output(text, man, "ovf", "0")


def subtract_products(text, man):
    """One PE accumulates a - p instead of a + p (an operator mutation)."""
    new, n = re.subn(r"\+ \$signed\(p_val\)", "- $signed(p_val)", text, count=1)
    assert n == 1, "mutation site (accumulator adder) not found in the generated Verilog"
    return new


def drop_rounding(text, man):
    """One PE's requantizer truncates: its rounding increment is removed (a rounding-bit mutation)."""
    new, n = re.subn(r"(assign rsh = [^;]*?) \+ \$signed\(\{[^;]*\}\);", r"\1;", text, count=1)
    assert n == 1, "mutation site (requantizer rounding increment) not found in the generated Verilog"
    return new


def manifest_claims_rna(man):
    """The Verilog is untouched but its manifest promises ties away from zero (a wrong expected format)."""
    wrong = "fixed:6:3,round=rna"
    man["spec"]["out_fmt"] = man["spec"]["bias_fmt"] = wrong
    man["formats"]["out"] = man["formats"]["bias"] = wrong
    return man


@pytest.mark.parametrize("mutate", [flip_z_bit, ovf_stuck_low, subtract_products, drop_rounding,
                                    manifest_claims_rna], ids=lambda f: f.__name__)
def test_mutant_fails_with_report(good_design, tmp_path, mutate):
    d = tmp_path / "mutant"
    shutil.copytree(good_design, d)
    mpath = d / "mac_2x3.json"
    man = json.loads(mpath.read_text())
    v = d / "mac_2x3.v"
    if mutate is manifest_claims_rna:
        mpath.write_text(json.dumps(mutate(man)))
    else:
        v.write_text(mutate(v.read_text(), man))
    r = cosim("--design", str(d), "--vectors", "30", "--seed", "1", "-o", str(tmp_path / "rep"))
    assert r.exit_code == 1, r.output + r.stderr
    assert "co-simulation mismatch" in last_line(r) and "Traceback" not in r.stderr
    s = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert not s["ok"] and s["mismatches"] > 0
    e = next(e for e in s["first_mismatches"] if e["kind"] == "mismatch")
    for key in ("tile", "i", "j", "K", "a_codes", "b_codes", "expected", "actual", "expected_value",
                "actual_value", "formats"):
        assert key in e
    assert e["expected"] != e["actual"] or e["expected_ovf"] != e["actual_ovf"]
    txt = (tmp_path / "rep" / "report.txt").read_text()
    assert txt.startswith("FAIL") and "expected 0x" in txt


def test_good_design_dir_passes(good_design, tmp_path):
    r = cosim("--design", str(good_design), "--vectors", "30", "--seed", "1", "-o", str(tmp_path))
    assert r.exit_code == 0, r.output + r.stderr


# ---- bad input: one line, non-zero, nothing simulated ------------------------------------------------
@pytest.mark.parametrize("args,frag", [
    (["--rows", "2"], "missing --cols --a --b --out"),
    (["--design", "/nonexistent/dir"], "no such file or folder"),
    (["--rows", "2", "--cols", "2", "--a", "fixed:8", "--b", "fixed:8:7", "--out", "fixed:8:5"], "fixed"),
    (["--simulator", "modelsim"], "modelsim"),
    (["--capture", "/nonexistent/capture.json", "--rows", "1", "--cols", "1", *FIXED], "--capture"),
])
def test_bad_input_one_line(tmp_path, args, frag):
    r = cosim(*args, "-o", str(tmp_path))
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fewbits: error:") and frag in lines[0], r.stderr


def test_design_with_format_options_is_rejected(good_design, tmp_path):
    r = cosim("--design", str(good_design), "--a", "fixed:8:6", "-o", str(tmp_path))
    assert r.exit_code == 2 and "cannot be combined with --design" in r.stderr


def test_missing_simulator_is_one_line(good_design, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no iverilog/vvp here
    r = subprocess.run([sys.executable, "-m", "fewbits", "cosim", "--design", str(good_design), "-o",
                        str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fewbits: error: icarus not found"), r.stderr
    assert "apt-get install iverilog" in lines[0]
    assert "Traceback" not in r.stderr


# ---- a real capture from `fewbits train --dataset digits` -------------------------------------------
def test_capture_all_three_matmuls(tmp_path):
    train = tmp_path / "train"
    r = CliRunner().invoke(cli.main, ["train", "--dataset", "digits", "--net", "mlp-small", "--prop", "dfixed:9",
                                      "--update", "dfixed:11", "--epochs", "1", "--batch-size", "4",
                                      "--capture", "L1", "--quiet", "--out", str(train)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    cap = train / "capture" / "capture.json"
    assert cap.is_file()
    r = cosim("--rows", "4", "--cols", "4", "--a", "dfixed:9", "--b", "dfixed:9", "--out", "dfixed:9",
              "--capture", str(cap), "--no-corners", "-o", str(tmp_path / "cosim"))
    assert r.exit_code == 0, r.output + r.stderr
    s = json.loads((tmp_path / "cosim" / "report.json").read_text())
    checked = {src["name"] for src in s["sources"] if src["capture_checked"]}
    assert {"capture[L1.forward]", "capture[L1.input_grad]", "capture[L1.weight_grad]"} <= checked
    assert s["capture_elements_checked"] > 0 and s["capture_mismatches"] == 0
    assert s["reference_vs_capture_mismatches"] == 0


@pytest.mark.slow
def test_issue_example_2000_vectors(tmp_path):
    """The issue's "done when" command, as written (4x4, 2000 random tiles, Icarus)."""
    r = cosim("--rows", "4", "--cols", "4", "--a", "fixed:8:6", "--b", "fixed:8:7", "--out", "fixed:8:5",
              "--vectors", "2000", "-o", str(tmp_path))
    assert r.exit_code == 0, r.output + r.stderr
    assert json.loads((tmp_path / "report.json").read_text())["tiles_checked"] >= 2000


@pytest.mark.slow
def test_full_capture_on_generated_design_verilator(tmp_path):
    """`fewbits train` (default batch) -> `fewbits verilog` -> `fewbits cosim --design --capture` on Verilator."""
    train = tmp_path / "train"
    r = CliRunner().invoke(cli.main, ["train", "--dataset", "digits", "--net", "mlp-small", "--prop", "dfixed:11",
                                      "--update", "dfixed:13", "--epochs", "1", "--capture", "L0,L1", "--quiet",
                                      "--out", str(train)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    hw = tmp_path / "hw"
    r = CliRunner().invoke(cli.main, ["verilog", "--rows", "4", "--cols", "4", "--a", "dfixed:11", "--b",
                                      "dfixed:11", "--out", "dfixed:11", "-o", str(hw)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    r = cosim("--design", str(hw), "--capture", str(train / "capture" / "capture.json"), "--simulator",
              "verilator", "-o", str(tmp_path / "cosim"))
    s = json.loads((tmp_path / "cosim" / "report.json").read_text())
    checked = {src["name"] for src in s["sources"] if src["capture_checked"]}
    assert {"capture[L1.forward]", "capture[L1.input_grad]", "capture[L1.weight_grad]"} <= checked, \
        s["capture_skipped"]
    assert r.exit_code == 0, r.output + r.stderr


# ---- `cosim --capture DIR` alone: the design from the spec a capture of examples/lenet.py records ----------
LENET = str(__import__("pathlib").Path(__file__).resolve().parents[3] / "examples" / "lenet.py") + ":lenet"


@pytest.fixture(scope="module")
def lenet_capture(tmp_path_factory):
    """One epoch of the LeNet example on digits at dynamic fixed point 10/12 (batch 10), its last layer captured."""
    train = tmp_path_factory.mktemp("lenet")
    r = CliRunner().invoke(cli.main, ["train", "--model", LENET, "--prop", "dfixed:10", "--update", "dfixed:12",
                                      "--paper-bits", "--epochs", "1", "--batch-size", "10", "--capture",
                                      "classifier.4", "--capture-step", "3", "--quiet", "--out", str(train)],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return train / "capture"


def test_capture_alone_generates_its_design_and_cosimulates_bit_exact(lenet_capture, tmp_path):
    r = cosim("--capture", str(lenet_capture), "-o", str(tmp_path))
    assert r.exit_code == 0, r.output + r.stderr
    assert "generating 2x2 MAC array (dfixed:11,round=rna,symmetric" in r.stderr  # paper bits: 10 + sign
    s = json.loads((tmp_path / "report.json").read_text())
    checked = {src["name"] for src in s["sources"] if src["capture_checked"]}
    assert {"capture[classifier.4.forward]", "capture[classifier.4.input_grad]",
            "capture[classifier.4.weight_grad]"} <= checked
    # z, dE/dx, dE/dw and dE/db of an 84 -> 10 layer at batch 10, every element
    assert s["capture_elements_checked"] == 10 * 10 + 10 * 84 + 84 * 10 + 10
    assert s["capture_mismatches"] == 0 and s["mismatches"] == 0
    from fewbits.hw.design import load_design

    spec = load_design(tmp_path / "design").spec
    assert (spec.rows, spec.cols, spec.k_max) == (2, 2, 150)  # the largest layer: conv 6 -> 16, 5x5


@pytest.mark.parametrize("args,frag", [
    (["--a", "fixed:8:4"], "--a fixed:8:4 conflicts with capture"),
    (["--out", "dfixed:12"], "--out dfixed:12 conflicts with capture"),
    (["--acc", "fp32"], "--acc fp32 conflicts with capture"),
])
def test_capture_with_conflicting_formats_is_one_line(lenet_capture, tmp_path, args, frag):
    r = cosim("--capture", str(lenet_capture), *args, "-o", str(tmp_path))
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fewbits: error:") and frag in lines[0], r.stderr
    assert not (tmp_path / "design").exists()  # refused before generating anything


def test_capture_without_a_recorded_spec_is_one_line(lenet_capture, tmp_path):
    import shutil as sh

    old = tmp_path / "old"
    sh.copytree(lenet_capture, old)
    doc = json.loads((old / "capture.json").read_text())
    del doc["run_spec"]  # as captures written before they recorded one
    (old / "capture.json").write_text(json.dumps(doc))
    r = cosim("--capture", str(old), "--rows", "2", "-o", str(tmp_path / "o"))
    assert r.exit_code == 2
    assert r.stderr.strip() == (f"fewbits: error: capture {old} records no design spec (written before captures "
                                "recorded one): give --cols --a --b --out, or --design DIR")
