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


def _run_demo(tmp_path, env=None):
    """The full ``fewbits demo`` on digits after the one-time set-up `make demo` does first (like the venv:
    the sky130 library); returns the wall seconds of the demo alone and its results."""
    subprocess.run([sys.executable, "-m", "fewbits", "tech", "sky130"], capture_output=True, check=True, timeout=3600,
                   env=env)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "fewbits", "demo", "-o", str(tmp_path / "demo"), "--quiet"],
                       capture_output=True, text=True, timeout=3600, env=env)
    wall = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-1].startswith("report: ") and lines[-1].endswith("index.html")
    assert any("95 % upper bound" in ln and "3 seeds" in ln for ln in lines), lines  # the recommendation's interval
    assert (tmp_path / "demo" / "report" / "summary.csv").is_file()
    return wall, json.loads((tmp_path / "demo" / "report" / "results.json").read_text())


@pytest.mark.slow
def test_full_demo_reports_every_family_with_sky130_costs(tmp_path):
    _, data = _run_demo(tmp_path)
    fams = {p["family"] for p in data["points"] if p["status"] == "ok" and p.get("transistors")}
    assert fams == {"fp32", "float", "fixed", "dfixed"}  # the Pareto plot shows every family
    sky = {p["family"] for p in data["points"] if p["status"] == "ok" and p.get("area_um2") and p.get("fmax_mhz")
           and p.get("energy_sky130_pj")}
    assert sky == fams  # and the sky130 area, clock and energy of every family


@pytest.mark.bench
def test_demo_wall_time(tmp_path):
    """Benchmark (issue 13's budget: 5 minutes on 2 quiet cores), not a timed test: prints the figure.

    Runs on a fresh cache folder (cached stages would make the figure meaningless); the sky130 library is
    built there first, outside the timing, as `make demo`'s one-time set-up does."""
    import os

    env = dict(os.environ, FEWBITS_CACHE=str(tmp_path / "cache"))
    wall, data = _run_demo(tmp_path, env)
    runs = [p for p in data["points"]]
    fig = {"wall_seconds": round(wall, 1), "runs": len(runs), "ok": sum(p["status"] == "ok" for p in runs),
           "load_average_1min": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    (tmp_path / "bench.json").write_text(json.dumps(fig) + "\n")
    print("\nBENCH", json.dumps(fig))


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
