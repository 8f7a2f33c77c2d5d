"""hw.synth with the real Yosys: figures, scaling with width, DSP inference, truncated logs, bad input."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from fewbits.hw.design import load_designs
from fewbits.hw.eda import synth as S
from fewbits.hw.eda.synth_parse import parse_ltp, parse_stat
from fewbits.hw.eda.synth_tools import SynthError
from fewbits.sim import MacSpec, parse_format

pytestmark = pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed (apt-get install yosys)")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    """One cache folder per test session (synthesis results are reused across tests, never the cwd)."""
    monkeypatch.setenv("FEWBITS_CACHE", str(tmp_path_factory.getbasetemp() / "fewbits-cache"))


def mul_design(width, tmp_path_factory) -> S.Design:
    """A bare exact fixed multiplier (the hardware engineer's Multiplier) of width x width."""
    from fewbits.hw.eda.synth_parts import part_design

    f = f"fixed:{width}:0"
    spec = MacSpec(parse_format(f), parse_format(f), parse_format(f), rows=1, cols=1, k_max=4)
    return part_design(spec, "multiplier", name=f"mul{width}")


def amaranth_mul(tmp_path, width=4, top="m"):
    """A bare ``a*b`` module written by Amaranth (independent of fewbits.hw)."""
    from amaranth.back import verilog
    from amaranth.hdl import Module, Signal

    a, b, p = Signal(width), Signal(width), Signal(2 * width)
    m = Module()
    m.d.comb += p.eq(a * b)
    path = tmp_path / f"{top}.v"
    path.write_text(verilog.convert(m, name=top, ports=[a, b, p], emit_src=False))
    return path


def test_cmos_counts_positive(tmp_path_factory):
    r = S.synthesize(mul_design(4, tmp_path_factory), "cmos")
    f = r["figures"]
    assert f["cells"] > 0 and f["transistors"] > 0 and f["depth"] > 0
    assert sum(f["cells_by_type"].values()) == f["cells"]
    assert set(f["cells_by_type"]) <= {f"$_{g}_" for g in S.CMOS_GATES.split(",") + ["NOT", "BUF", "DFF_P"]}
    assert r["tools"]["yosys"].startswith("Yosys") and "abc -g" in r["script"]
    assert len(r["design_hash"]) == 16


def test_transistors_grow_with_width(tmp_path_factory):
    t = [S.synthesize(mul_design(w, tmp_path_factory), "cmos")["figures"]["transistors"] for w in (2, 4, 8)]
    assert t[0] < t[1] < t[2]


def test_16_bit_costs_2p5_to_5x_the_8_bit(tmp_path_factory):
    t8 = S.synthesize(mul_design(8, tmp_path_factory), "cmos")["figures"]["transistors"]
    t16 = S.synthesize(mul_design(16, tmp_path_factory), "cmos")["figures"]["transistors"]
    assert 2.5 <= t16 / t8 <= 5.0, (t8, t16)


@pytest.mark.parametrize("dsp", [True, False])
def test_ice40_coarse_section_is_the_installed_yosys_one_without_share(dsp):
    """fewbits runs synth_ice40's coarse section itself (to leave out the SAT ``share`` pass): it must be
    the installed Yosys's own section, command for command, but for ``share``."""
    import subprocess

    help_text = subprocess.run(["yosys", "-h", "synth_ice40"], capture_output=True, text=True, check=True).stdout
    section = help_text.split("\n    coarse:\n", 1)[1].split("\n    map_ram:", 1)[0]
    want = []
    for line in section.splitlines():
        cmd, _, cond = line.strip().partition("  ")
        if not cmd or (cond.strip() == "(if -dsp)" and not dsp):
            continue
        want.append(cmd.replace(" [-no-rw-check]", ""))
    assert "share" in want
    assert S.ice40_coarse(dsp) == [c for c in want if c != "share"]
    script = S.script(S.Design(top="m", sources=(Path("m.v"),)), "ice40", dsp=dsp)
    assert "share" not in script.split() and script.count("synth_ice40") == 2


def test_ice40_dsp_and_no_dsp(tmp_path_factory):
    d = mul_design(8, tmp_path_factory)
    with_dsp = S.synthesize(d, "ice40", dsp=True)["figures"]
    no_dsp = S.synthesize(d, "ice40", dsp=False)["figures"]
    assert with_dsp["cells_by_type"].get("SB_MAC16", 0) >= 1 and with_dsp["dsps"] >= 1
    assert "SB_MAC16" not in no_dsp["cells_by_type"] and no_dsp["dsps"] == 0
    assert no_dsp["luts"] > with_dsp["luts"]


@pytest.mark.parametrize("target", ["ecp5", "xilinx"])
def test_other_fpga_dsp_cells(target, tmp_path_factory):
    d = mul_design(8, tmp_path_factory)
    yes = S.synthesize(d, target, dsp=True)["figures"]["cells_by_type"]
    no = S.synthesize(d, target, dsp=False)["figures"]
    assert yes.get(S.DSP_CELLS[target], 0) >= 1
    assert S.DSP_CELLS[target] not in no["cells_by_type"] and no["luts"] > 0


def test_cache_hit_and_key(tmp_path_factory):
    d = mul_design(4, tmp_path_factory)
    first = S.synthesize(d, "cmos", use_cache=False)
    again = S.synthesize(d, "cmos")
    assert again["cached"] and again["figures"] == first["figures"] and again["key"] == first["key"]
    other = S.synthesize(d, "ice40")
    assert other["key"] != first["key"]


def test_any_verilog_with_inferred_top(tmp_path):
    v = amaranth_mul(tmp_path, 4, top="mymul")
    (d,) = load_designs(v)
    assert d.top == "mymul"
    assert S.synthesize(d, "cmos")["figures"]["transistors"] > 0


def cmos_log(tmp_path_factory) -> str:
    r = S.synthesize(mul_design(4, tmp_path_factory), "cmos")
    return open(r["log"]).read()


def test_full_log_parses(tmp_path_factory):
    text = cmos_log(tmp_path_factory)
    assert parse_stat(text, need_transistors=True)["transistors"] > 0
    assert parse_ltp(text) > 0


@pytest.mark.parametrize("cut", ["inside_abc", "inside_stat", "before_end"])
def test_truncated_log_is_an_error(cut, tmp_path_factory):
    text = cmos_log(tmp_path_factory)
    if cut == "inside_abc":
        cut_text = text[: text.index("Executing ABC")]
    elif cut == "inside_stat":
        i = text.rindex("Printing statistics")
        cut_text = text[: text.index("Number of cells", i) + 20]
    else:
        cut_text = text[: text.index("End of script.")]
    with pytest.raises(SynthError, match="truncated|lack"):
        parse_stat(cut_text, need_transistors=True)


TINY_LIB = """
library (tiny) {
  delay_model : table_lookup ;
  time_unit : "1ns" ;
  voltage_unit : "1V" ;
  current_unit : "1mA" ;
  capacitive_load_unit (1, ff) ;
  leakage_power_unit : "1nW" ;
  cell (BUF) { area : %(BUF)s ;
    pin (A) { direction : input ; capacitance : 1.7 ; }
    pin (Y) { direction : output ; function : "A" ; } }
  cell (INV) { area : %(INV)s ;
    pin (A) { direction : input ; capacitance : 1.7 ; }
    pin (Y) { direction : output ; function : "A'" ; } }
  cell (NAND2) { area : %(NAND2)s ;
    pin (A) { direction : input ; capacitance : 1.6 ; }
    pin (B) { direction : input ; capacitance : 1.6 ; }
    pin (Y) { direction : output ; function : "(A B)'" ; } }
  cell (NOR2) { area : %(NOR2)s ;
    pin (A) { direction : input ; capacitance : 1.7 ; }
    pin (B) { direction : input ; capacitance : 1.7 ; }
    pin (Y) { direction : output ; function : "(A+B)'" ; } }
  cell (DFF) { area : %(DFF)s ;
    ff (IQ, IQN) { clocked_on : "C" ; next_state : "D" ; }
    pin (C) { direction : input ; capacitance : 0.9 ; clock : true ; }
    pin (D) { direction : input ; capacitance : 1.1 ; }
    pin (Q) { direction : output ; function : "IQ" ; } }
}
"""
LIB_AREAS = {"BUF": 0.798, "INV": 0.532, "NAND2": 0.798, "NOR2": 0.798, "DFF": 4.522}


def test_liberty_area_is_sum_of_cell_areas(tmp_path, tmp_path_factory):
    lib = tmp_path / "tiny.lib"
    lib.write_text(TINY_LIB % LIB_AREAS)
    r = S.synthesize(mul_design(4, tmp_path_factory), "liberty", liberty=lib)
    f = r["figures"]
    assert set(f["cells_by_type"]) <= set(LIB_AREAS)
    expected = sum(LIB_AREAS[c] * n for c, n in f["cells_by_type"].items())
    assert f["area"] == pytest.approx(expected, rel=1e-6)   # Yosys prints the area rounded
    assert "abc -liberty" in r["script"]


def test_per_pe_and_parts(tmp_path):
    from fewbits.hw import export
    from fewbits.hw.eda.synth_parts import part_design

    spec = MacSpec(parse_format("fixed:4:2"), parse_format("fixed:4:2"), parse_format("fixed:4:2"),
                   rows=2, cols=1, k_max=4)
    export.verilog(spec, tmp_path, "arr")
    (d,) = load_designs(tmp_path)
    assert d.pe_count == 2
    r = S.synthesize(d, "cmos")
    assert r["per_pe"]["transistors"] == r["figures"]["transistors"] / 2
    mul = S.synthesize(part_design(d, "multiplier"), "cmos")["figures"]["transistors"]
    pe = S.synthesize(part_design(d, "mac_unit"), "cmos")["figures"]["transistors"]
    assert 0 < mul < pe


def test_timeout_reports_tail(tmp_path_factory):
    d = mul_design(16, tmp_path_factory)
    with pytest.raises(SynthError, match="timed out"):
        S.synthesize(d, "cmos", timeout=0.05, use_cache=False)


# ---------------------------------------------------------------- CLI

def run_cli(*args):
    from fewbits.cli import main

    return CliRunner().invoke(main, list(args))


def one_line_error(res, pattern):
    assert res.exit_code != 0
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("fewbits: error:"), res.stderr
    assert re.search(pattern, lines[0]), lines[0]


def test_cli_unknown_target(tmp_path):
    v = amaranth_mul(tmp_path)
    one_line_error(run_cli("synth", str(v), "--target", "asic7", "-o", str(tmp_path / "o")),
                   "unknown target 'asic7'.*cmos")


def test_cli_missing_liberty(tmp_path):
    v = amaranth_mul(tmp_path)
    one_line_error(run_cli("synth", str(v), "--liberty", str(tmp_path / "no.lib"), "-o", str(tmp_path / "o")),
                   "Liberty file not found")


def test_cli_dir_without_manifest(tmp_path):
    (tmp_path / "d").mkdir()
    one_line_error(run_cli("synth", str(tmp_path / "d"), "-o", str(tmp_path / "o")), "no design manifest")


def test_cli_unparsable_verilog(tmp_path):
    v = tmp_path / "bad.v"
    v.write_text("module bad(input a, output b);\n assign b = a +* ;\nendmodule\n")
    res = run_cli("synth", str(v), "-o", str(tmp_path / "o"))
    assert res.exit_code != 0
    last = [line for line in res.stderr.splitlines() if line.startswith("fewbits: error:")]
    assert len(last) == 1 and "ERROR" in last[0] and "syntax error" in last[0]


def test_cli_design_dir_records_and_table(tmp_path):
    from fewbits.hw import export

    spec = MacSpec(parse_format("fixed:4:2"), parse_format("fixed:4:2"), parse_format("fixed:4:2"),
                   rows=1, cols=2, k_max=4)
    export.verilog(spec, tmp_path / "hw", "arr")
    res = run_cli("synth", str(tmp_path / "hw"), "--target", "cmos", "--target", "ice40", "-o", str(tmp_path / "o"))
    assert res.exit_code == 0, res.output + res.stderr
    files = sorted(p.name for p in (tmp_path / "o").glob("*.json"))
    assert files == sorted(f"arr{p}.{t}.json" for p in ("", ".multiplier", ".mac_unit") for t in ("cmos", "ice40"))
    rec = json.loads((tmp_path / "o" / "arr.cmos.json").read_text())
    assert rec["spec"] == spec.to_dict() and rec["pe_count"] == 2
    assert "arr:multiplier" in res.output and "transistors" in res.output


# ---------------------------------------------------------------- Fmax and missing tools

def test_harness_parallel_and_serial(tmp_path):
    from fewbits.hw.eda.synth_fmax import harness

    small = {"clk": ("input", [2]), "a": ("input", [3, 4]), "p": ("output", [5, 6, 7])}
    text, mode = harness(small, "dut_top")
    assert mode == "parallel" and "dut_top dut(" in text and ".clk(clk)" in text
    wide = {"a": ("input", list(range(150))), "p": ("output", list(range(150, 300)))}
    text, mode = harness(wide, "dut_top")
    assert mode == "serial" and "input sin" in text
    v = tmp_path / "h.v"
    v.write_text(text + "module dut_top(input [149:0] a, output [149:0] p); assign p = ~a; endmodule\n")
    import subprocess

    subprocess.run(["iverilog", "-o", str(tmp_path / "h.vvp"), str(v)], check=True)


@pytest.mark.skipif(shutil.which("nextpnr-ice40") is None, reason="nextpnr-ice40 not installed")
def test_fmax_ice40(tmp_path_factory):
    from fewbits.hw.eda.synth_fmax import fmax_ice40

    rec = fmax_ice40(mul_design(4, tmp_path_factory))
    assert rec["fmax_mhz"] > 0 and rec["harness"] == "parallel" and "nextpnr" in rec["nextpnr"]


def test_fmax_without_nextpnr_is_a_note(tmp_path_factory, monkeypatch, tmp_path):
    from fewbits.hw.eda.synth_fmax import fmax_ice40

    monkeypatch.setenv("PATH", str(tmp_path))   # an empty folder: no tools at all
    rec = fmax_ice40(mul_design(4, tmp_path_factory))
    assert rec["fmax_mhz"] is None and "apt-get install nextpnr-ice40" in rec["note"]


def test_cli_missing_yosys_is_one_line(tmp_path):
    v = amaranth_mul(tmp_path)
    from fewbits.cli import main

    res = CliRunner().invoke(main, ["synth", str(v), "-o", str(tmp_path / "o")], env={"PATH": str(tmp_path)})
    one_line_error(res, r"yosys not found on PATH: install it with `apt-get install yosys`")


def test_cached_record_whose_netlist_is_gone_is_redone(tmp_path_factory):
    """A cache entry points into the cache's work folder: if that went, synthesize again, never fail."""
    d = mul_design(3, tmp_path_factory)
    first = S.synthesize(d, "cmos")
    assert S.synthesize(d, "cmos")["cached"] is True
    Path(first["netlist"]).unlink()
    again = S.synthesize(d, "cmos")
    assert again["cached"] is False and Path(again["netlist"]).is_file()
    assert again["figures"]["transistors"] == first["figures"]["transistors"]
    (Path(S.cache_dir()) / "synth" / f"{first['key']}.json").write_text("{truncated")
    assert S.synthesize(d, "cmos")["cached"] is False


def test_part_exports_are_keyed_by_their_generator(tmp_path_factory, monkeypatch):
    """A cached Amaranth export of a part is not reused once the generator (sources, Amaranth) changed."""
    from fewbits.hw.eda import synth_parts
    old = mul_design(3, tmp_path_factory).sources[0]
    synth_parts.generator_digest.cache_clear()
    import amaranth

    monkeypatch.setattr(amaranth, "__version__", amaranth.__version__ + "+another")
    try:
        new = mul_design(3, tmp_path_factory).sources[0]
    finally:
        synth_parts.generator_digest.cache_clear()
    assert new != old and new.is_file()


def test_cli_sweep_part_selects_parts(tmp_path):
    """``--sweep ... --part multiplier``: the sweep synthesizes the bare multiplier only (no MAC unit)."""
    import csv

    res = run_cli("synth", "--sweep", "fixed:3..3", "--part", "multiplier", "--target", "cmos", "-o", str(tmp_path / "o"))
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(open(tmp_path / "o" / "sweep.csv")))
    assert [(r["part"], r["target"]) for r in rows] == [("multiplier", "cmos")]
    assert int(rows[0]["transistors"]) > 0


def test_cli_part_without_sweep_is_a_usage_error(tmp_path):
    v = amaranth_mul(tmp_path)
    res = run_cli("synth", str(v), "--part", "multiplier", "-o", str(tmp_path / "o"))
    assert res.exit_code == 2
    one_line_error(res, "--part goes with --sweep")
    one_line_error(run_cli("synth", "--sweep", "fixed:3..3", "--part", "adder", "-o", str(tmp_path / "p")),
                   "adder")
