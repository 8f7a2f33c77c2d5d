"""Benchmark (``pytest -m bench``): time per epoch of the paper's PI maxout MLP on Fashion-MNIST
for fp32 (no quantization), fp16, fixed point and dynamic fixed point, as ratios to fp32.

Target (issue 3): dynamic fixed point at most 2x fp32.  The figures are written to
``$FEWBITS_BENCH_OUT`` (default: the test's tmp_path) as ``bench_training.json`` and printed.
"""

import json
import os
from pathlib import Path

import pytest
from fewbits.training import datasets as ds
from fewbits.training.bench import time_formats

FASHION = Path(ds.FASHION_SYSTEM_DIR)


@pytest.mark.bench
@pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").is_file(),
                    reason=f"real Fashion-MNIST not installed in {FASHION}")
def test_time_per_epoch_pi_mlp_fashion(tmp_path, capsys):
    batches = int(os.environ.get("FEWBITS_BENCH_BATCHES", "10"))
    r = time_formats("fashion-mnist", "pi-mlp", batches=batches, repeats=2)
    out = Path(os.environ.get("FEWBITS_BENCH_OUT", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_training.json").write_text(json.dumps(r, indent=1))
    with capsys.disabled():
        print()
        for name, v in r.items():
            if name != "_meta":
                print(f"{name:7s} {v['seconds_per_epoch']:9.1f} s/epoch  {v['ratio_to_fp32']:6.2f}x fp32")
    assert {"fp32", "fp16", "fixed", "dfixed"} <= set(r)
    assert r["fp32"]["ratio_to_fp32"] == 1.0
