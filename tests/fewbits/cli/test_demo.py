"""The built-in demo: its sweep covers every family; the full run (slow) ends with a report and a summary."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from fewbits import cli
from fewbits.flow.config import parse_sweep
from fewbits.flow.demo import demo_toml


def test_demo_sweep_has_every_family_at_about_four_widths():
    cfg = parse_sweep(demo_toml("digits"), "demo.toml")
    fams = {}
    for p in cfg.points:
        fams.setdefault(p["family"], set()).add(p["prop_width"])
    assert set(fams) == {"fp32", "float", "fixed", "dfixed"}
    assert len(fams["fixed"]) >= 4 and len(fams["dfixed"]) >= 4
    assert {p["prop"] for p in cfg.points if p["family"] == "float"} == {"fp16"}
    assert all(p["dataset"] == "digits" for p in cfg.points)
    assert cfg.points[0]["synth"]["targets"] == ["cmos", "ice40", "sky130"]   # the demo shows sky130 by default


def test_demo_runs_three_seeds_of_every_configuration():
    cfg = parse_sweep(demo_toml("digits"), "demo.toml")
    seeds = {}
    for p in cfg.points:
        seeds.setdefault(p["prop"], []).append(p["seed"])
    assert all(sorted(v) == [0, 1, 2] for v in seeds.values()), seeds
    from fewbits.flow.stages import hw_seed

    assert {hw_seed(p) for p in cfg.points} == {0}  # the hardware of every configuration: once, on seed 0


def test_larger_scale_demo_keeps_the_grid():
    small, big = (parse_sweep(demo_toml(d), "d.toml").points for d in ("digits", "fashion-mnist"))
    assert [p["prop"] for p in small] == [p["prop"] for p in big]
    assert big[0]["hardware"]["k_max"] >= 784  # a whole image row per dot product


def test_bad_dataset_is_one_line():
    r = CliRunner().invoke(cli.main, ["demo", "--dataset", "imagenet"])
    assert r.exit_code == 2
    assert "imagenet" in r.output and "Traceback" not in r.output


@pytest.mark.slow
def test_full_demo_under_ten_minutes(tmp_path):
    # the one-time set-up `make demo` does first (like the venv): the sky130 library, outside the timing
    subprocess.run([sys.executable, "-m", "fewbits", "tech", "sky130"], capture_output=True, check=True, timeout=3600)
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "fewbits", "demo", "-o", str(tmp_path / "demo"), "--quiet"],
                       capture_output=True, text=True, timeout=1200)
    wall = time.time() - t0
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-1].startswith("report: ") and lines[-1].endswith("index.html")
    data = json.loads((tmp_path / "demo" / "report" / "results.json").read_text())
    fams = {p["family"] for p in data["points"] if p["status"] == "ok" and p.get("transistors")}
    assert fams == {"fp32", "float", "fixed", "dfixed"}  # the Pareto plot shows every family
    sky = {p["family"] for p in data["points"] if p["status"] == "ok" and p.get("area_um2") and p.get("fmax_mhz")
           and p.get("energy_sky130_pj")}
    assert sky == fams  # and the sky130 axes of every family
    assert wall < 600, f"demo took {wall:.0f} s"


def test_demo_cosim_checks_captured_data_and_random_tiles_for_every_design():
    """The demo co-simulates without the corner cases (issue 13's time budget) but never without data:
    every design gets its training capture (fp32's holds no codes) and random tiles besides."""
    from fewbits.flow.stages import plan

    for dataset in ("digits", "fashion-mnist"):
        for p in parse_sweep(demo_toml(dataset), "demo.toml").points:
            cos = [i for i in plan(p) if i.stage.name == "cosim"]
            assert len(cos) == 1 and cos[0].needs == ("train", "verilog")
            c = cos[0].config
            assert c["corners"] is False and c["vectors"] > 0 and c["max_tiles"] >= 16 and c["matmuls"] == ["forward"]
