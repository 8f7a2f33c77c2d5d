"""Float-accumulator designs co-simulate bit-exact on Icarus (fewbits verilog -> fewbits cosim), and a
mutant that rounds once per tile instead of once per chunk is caught."""

import shutil

import pytest
from fewbits.cosim import vectors as V
from fewbits.cosim.verify import verify
from fewbits.hw import export
from fewbits.hw.design import load_design
from fewbits.sim import MacSpec

from .test_verify import RANDOM, check


def _export(spec, d):
    export.verilog(spec, d, f"mac_{spec.rows}x{spec.cols}")
    return load_design(d)


@pytest.mark.parametrize("seed", [81])
def test_chunked_float_acc_cosim_and_per_tile_mutant(tmp_path, seed):
    spec = MacSpec("fp8_e4m3", "fp8_e4m3", "bf16", acc_fmt="float:5:6,chunk=4", rows=2, cols=3, k_max=16)
    d = _export(spec, tmp_path / "good")
    mms = V.random_matmuls(d.spec, 40, seed) + V.corner_matmuls(d.spec, seed)
    s = verify(d, mms, tmp_path / "run", plan=RANDOM)
    check(s)
    # the mutant: the Verilog of chunk = k_max (one rounding per tile) under the chunk=4 manifest
    once = MacSpec("fp8_e4m3", "fp8_e4m3", "bf16", acc_fmt="float:5:6,chunk=16", rows=2, cols=3, k_max=16)
    _export(once, tmp_path / "mutant")
    shutil.copy(tmp_path / "good" / "mac_2x3.json", tmp_path / "mutant" / "mac_2x3.json")
    m = verify(load_design(tmp_path / "mutant"), mms, tmp_path / "run_mutant", plan=RANDOM)
    assert not m["ok"] and m["mismatches"] > 0


@pytest.mark.parametrize("acc", ["fp32", "float:8:10,chunk=4"])
def test_issue_designs_cosim(tmp_path, acc):
    """The issue's designs: 2x2 fp8_e4m3 x fp8_e4m3 -> bf16, k_max 32, fp32 and float:8:10,chunk=4."""
    d = _export(MacSpec("fp8_e4m3", "fp8_e4m3", "bf16", acc_fmt=acc, rows=2, cols=2, k_max=32), tmp_path / "d")
    assert str(d.spec.acc_fmt) == acc  # the manifest carries the accumulator string
    mms = V.random_matmuls(d.spec, 20, 82) + V.corner_matmuls(d.spec, 82)
    check(verify(d, mms, tmp_path / "run", plan=RANDOM))
