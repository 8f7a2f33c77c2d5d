"""Benchmark (not a timed test): MACs verified per second, 4x4 and 8x8, Icarus and Verilator.

``make bench`` (``pytest -m bench -s``) prints one line per case and writes
``bench.json`` in the test's folder.  In-test rate = MACs checked / (schedule +
simulation + scoreboard), i.e. without the one-time build and process start;
wall rate includes vector generation, the reference model and the simulator start.
"""

import json

import pytest
from fewbits.cosim import runner
from fewbits.cosim import vectors as V
from fewbits.cosim.schedule import Plan
from fewbits.cosim.verify import verify

CASES = [("icarus", 4, 400), ("icarus", 8, 100), ("verilator", 4, 8000), ("verilator", 8, 4000)]


@pytest.mark.bench
@pytest.mark.parametrize("simulator,n,tiles", CASES, ids=lambda x: str(x))
def test_macs_per_second(make_design, tmp_path, simulator, n, tiles):
    try:
        runner.simulator_env(simulator)
    except runner.SimulatorError as e:
        pytest.skip(str(e))
    d = make_design("fixed:8:6", "fixed:8:7", "fixed:8:5", n, n, 64)
    runner.build(d, simulator)  # the one-time build is not part of the figure
    mms = V.random_matmuls(d.spec, tiles, seed=11, k_max=64)
    s = verify(d, mms, tmp_path, simulator, Plan(seed=11))
    assert s["ok"]
    fig = {"simulator": simulator, "array": f"{n}x{n}", "tiles": s["tiles_checked"], "macs": s["macs_checked"],
           "cycles": s["cycles"], "sim_seconds": round(s["sim_seconds"], 3),
           "cycles_per_second": round(s["cycles_per_second"]), "macs_per_second": round(s["macs_per_second"]),
           "macs_per_second_wall": round(s["macs_per_second_wall"])}
    (tmp_path / "bench.json").write_text(json.dumps(fig) + "\n")
    print("\nBENCH", json.dumps(fig))
