"""Real Icarus (and Verilator) runs: every tile's codes and flags equal mac_reference, bit for bit."""

import pytest
from fewbits.cosim import vectors as V
from fewbits.cosim.schedule import Plan
from fewbits.cosim.verify import verify

RANDOM = Plan(idle_prob=0.25, reset_prob=0.15, shuffle=True, seed=7)


def check(s, tiles=None):
    assert s["ok"], s["first_mismatches"][:3]
    assert s["mismatches"] == 0 and s["missing"] == 0 and s["unexpected"] == 0
    assert s["tiles_checked"] == s["tiles_expected"] == (tiles or s["vectors"])
    assert s["macs_checked"] > 0


@pytest.mark.parametrize("seed", [3])
def test_fixed_stream_idle_resets(make_design, tmp_path, seed):
    d = make_design("fixed:6:3", "fixed:5:4", "fixed:6:3,round=rna")
    mms = V.random_matmuls(d.spec, 60, seed) + V.corner_matmuls(d.spec, seed)
    s = verify(d, mms, tmp_path, plan=Plan(idle_prob=0.25, reset_prob=0.15, shuffle=True, seed=seed))
    check(s)
    assert s["tiles_aborted_by_reset"] > 0 and s["flag_mismatches"] == 0
    assert any(src["name"].startswith("corner[rounding ties") for src in s["sources"])


@pytest.mark.parametrize("seed", [4])
def test_port_mode_cocotb_driver(make_design, tmp_path, seed):
    """The cocotb TileDriver/ResultMonitor path (Python every cycle) agrees as well."""
    d = make_design("fixed:6:3", "fixed:5:4", "fixed:6:3,round=rna")
    s = verify(d, V.random_matmuls(d.spec, 30, seed), tmp_path, mode="ports",
               plan=Plan(idle_prob=0.3, reset_prob=0.2, shuffle=True, seed=seed))
    check(s)
    assert s["mode"] == "ports" and s["tiles_aborted_by_reset"] > 0


@pytest.mark.parametrize("seed", [5])
def test_dynamic_fixed_shift_changes_between_tiles(make_design, tmp_path, seed):
    d = make_design("dfixed:8", "dfixed:7", "dfixed:8")
    mms = V.random_matmuls(d.spec, 64, seed) + V.corner_matmuls(d.spec, seed)
    s = verify(d, mms, tmp_path, plan=RANDOM)
    check(s)
    shifts = {src["shift"] for src in s["sources"]}
    assert len(shifts) >= 3 and min(shifts) < 0 <= max(shifts), shifts
    # biases on their own grids: the output's, coarser and finer than the products (in_bias_shift < 0)
    pairs = {(src["shift"], src["bias_shift"]) for src in s["sources"] if src["bias_fmt"]}
    assert any(b == sh for sh, b in pairs) and any(b != sh for sh, b in pairs), pairs
    assert min(b for _, b in pairs) < 0 < max(b for _, b in pairs), pairs
    assert any(sh < 0 for sh, _ in pairs), "a negative shift with a bias"


@pytest.mark.parametrize("fmts", [("fp8_e5m2", "fp8_e4m3", "fp8_e5m2")], ids=str)
def test_float_corners_and_random(make_design, tmp_path, fmts):
    d = make_design(*fmts)
    mms = V.random_matmuls(d.spec, 40, 6) + V.corner_matmuls(d.spec, 6)
    s = verify(d, mms, tmp_path, plan=RANDOM)
    check(s)
    from fewbits.cosim.tiles import TileSet

    ts = TileSet.load(tmp_path / "tiles.npz")
    fo = d.spec.out_fmt
    import torch

    z = torch.from_numpy(ts.ref_z.reshape(-1))
    assert bool(fo.is_nan(z).any()) and bool(fo.is_inf(z).any()), "corners must reach NaN and inf outputs"
    assert (ts.ref_ovf.any()), "corners must overflow"


def test_exhaustive_4bit(make_design, tmp_path):
    d = make_design("fixed:4:2", "fixed:4:1", "fixed:5:2,round=rne", 4, 4)
    mms = V.exhaustive_matmuls(d.spec)
    s = verify(d, mms, tmp_path, plan=Plan(seed=1))
    check(s)
    assert s["elements_checked"] >= 256


@pytest.mark.parametrize("mode", ["stream", "ports"])
def test_verilator(make_design, tmp_path, mode):
    from fewbits.cosim import runner

    try:
        runner.simulator_env("verilator")
    except runner.SimulatorError as e:
        pytest.skip(str(e))
    d = make_design("fixed:6:3", "fixed:5:4", "fixed:6:3,round=rna", 1, 2, 16)
    s = verify(d, V.random_matmuls(d.spec, 40, 8) + V.corner_matmuls(d.spec, 8), tmp_path, "verilator", RANDOM,
               mode)
    check(s)
    assert s["simulator"] == "verilator" and s["mode"] == mode


SWEEP = [
    ("fixed:8:4", "fixed:8:4", "fixed:8:4,round=rne"),
    ("fixed:8:4", "fixed:8:4", "fixed:8:4,round=rna"),
    ("fixed:8:4", "fixed:8:4", "fixed:8:4,round=rtz"),
    ("fixed:8:4", "fixed:8:4", "fixed:8:4,round=rdn"),
    ("fixed:8:4", "fixed:8:4", "fixed:6:2,overflow=wrap"),
    ("fixed:11:5,symmetric,round=rna", "fixed:11:5,symmetric,round=rna", "fixed:11:5,symmetric,round=rna"),
    ("ufixed:6:3", "ufixed:5:2", "ufixed:7:3"),
    ("fp16", "fp16", "fp16"),
    ("bf16", "bf16", "bf16,round=rtz"),
    ("fp8_e4m3", "fp8_e4m3", "bf16"),
    ("fp8_e5m2", "fp8_e5m2", "fp8_e4m3"),
]


@pytest.mark.slow
@pytest.mark.parametrize("fmts", SWEEP, ids=str)
def test_format_sweep(make_design, tmp_path, fmts):
    d = make_design(*fmts, 2, 2, 64)
    mms = V.random_matmuls(d.spec, 200, 12) + V.corner_matmuls(d.spec, 12)
    if len(V.all_codes(d.spec.a_fmt)) * len(V.all_codes(d.spec.b_fmt)) <= 1 << 16:
        mms += V.exhaustive_matmuls(d.spec)
    check(verify(d, mms, tmp_path, plan=RANDOM))
