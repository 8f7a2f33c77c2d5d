"""``fewbits report`` refuses an output folder inside the results store (it would write into the store)."""

from __future__ import annotations

import subprocess
import sys


def _snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_report_inside_the_store_is_refused(tmp_path):
    store = tmp_path / "results"
    (store / "points").mkdir(parents=True)
    (store / "points" / "abc.json").write_text('{"key": "abc"}\n')
    before = _snapshot(store)
    for out in (store, store / "report", store / "points" / "r"):
        proc = subprocess.run([sys.executable, "-m", "fewbits", "report", str(store), "-o", str(out)],
                              capture_output=True, text=True, timeout=120)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert lines[0].startswith("fewbits: error:") and "inside the results store" in lines[0]
        assert "Traceback" not in proc.stderr
    assert _snapshot(store) == before


def test_a_bad_rule_is_one_line(tmp_path):
    (tmp_path / "results" / "points").mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-m", "fewbits", "report", str(tmp_path / "results"), "-o",
                           str(tmp_path / "rep"), "--rule", "luckiest"], capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("fewbits: error:"), proc.stderr
    assert "luckiest" in lines[0] and "confidence" in lines[0] and not (tmp_path / "rep").exists()


def _fewbits(*args):
    return subprocess.run([sys.executable, "-m", "fewbits", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def _one_error_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("fewbits: error:"), proc.stderr
    return lines[0]


def test_a_bad_cost_is_one_line_listing_the_axes(tmp_path):
    from fewbits.report.costs import NAMES

    (tmp_path / "results" / "points").mkdir(parents=True)
    for cmd in (["report", tmp_path / "results", "-o", tmp_path / "rep"], ["demo", "-o", tmp_path / "demo"],
                ["sweep", tmp_path / "no.toml", "--results", tmp_path / "res"]):
        line = _one_error_line(_fewbits(*cmd, "--cost", "area"))
        assert "'area'" in line and all(n in line for n in NAMES), line
    assert not (tmp_path / "rep").exists() and not (tmp_path / "demo").exists() and not (tmp_path / "res").exists()


def test_a_cost_the_results_lack_names_its_target_and_writes_nothing(tmp_path):
    from ..conftest import constructed_store

    costs = {f: {"transistors": t, "luts": 10, "energy_pj": 0.1} for f, t in (("fp32", 900), ("fixed", 90),
                                                                           ("dfixed", 80))}
    errors = {f: {0: 5.0, 1: 5.1} for f in costs}
    store = constructed_store(tmp_path / "results", costs, errors, targets=("cmos", "ice40"))
    before = _snapshot(store)
    line = _one_error_line(_fewbits("report", store, "-o", tmp_path / "rep", "--cost", "area_um2"))
    assert "no result has sky130 area" in line and 'synthesis target "sky130"' in line, line
    assert not (tmp_path / "rep").exists() and _snapshot(store) == before
    ok = _fewbits("report", store, "-o", tmp_path / "rep", "--cost", "luts", "--rule", "mean")
    assert ok.returncode == 0, ok.stderr
    assert "cheapest by iCE40 LUTs" in ok.stdout


def test_sweep_refuses_a_cost_its_targets_do_not_give_before_any_work(tmp_path):
    from ..conftest import tiny_toml

    (tmp_path / "s.toml").write_text(tiny_toml(targets=("cmos",)))
    line = _one_error_line(_fewbits("sweep", tmp_path / "s.toml", "--results", tmp_path / "res", "--cost",
                                    "fmax_mhz"))
    assert 'synthesis target "sky130"' in line and "fmax_mhz" in line, line
    assert not (tmp_path / "res").exists()
