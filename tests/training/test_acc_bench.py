"""Benchmark (``pytest -m bench``): one training step of the paper's PI maxout MLP on Fashion-MNIST
(batch 100, one thread) with float accumulators against the same run with the exact accumulator,
interleaved in one run (``fewbits.training.bench.time_formats``; the fastest of the repeats kept).

Issue 12's target: ``--acc fp32`` at most 5x the exact path (asserted: the compiled path exists
for it).  bf16 (the general rounder) and chunk=16 are reported.  Written to
``$FEWBITS_BENCH_OUT`` (default tmp_path) as ``bench_acc.json``.
"""

import json
import os
from pathlib import Path

import pytest
from fewbits.training import datasets as ds
from fewbits.training.bench import time_formats

FASHION = Path(ds.FASHION_SYSTEM_DIR)
FORMATS = {  # the first is the base of the ratios
    "exact": ("fp16", "fp16", False),
    "acc=fp32": ("fp16", "fp16", False, "fp32"),
    "acc=fp32,chunk=16": ("fp16", "fp16", False, "fp32,chunk=16"),
    "acc=bf16": ("fp16", "fp16", False, "bf16"),
}  # (no key "fp32": time_formats takes the ratios to that one when present)


@pytest.mark.bench
@pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").is_file(),
                    reason=f"real Fashion-MNIST not installed in {FASHION}")
def test_float_accumulator_step_vs_exact(tmp_path, capsys):
    batches = int(os.environ.get("FEWBITS_BENCH_BATCHES", "5"))
    r = time_formats("fashion-mnist", "pi-mlp", formats=FORMATS, batches=batches, repeats=3, threads=1)
    out = Path(os.environ.get("FEWBITS_BENCH_OUT", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_acc.json").write_text(json.dumps(r, indent=1))
    with capsys.disabled():
        print()
        for name, v in r.items():
            if name != "_meta":
                print(f"acc {name:18s} {v['seconds_per_batch'] * 1e3:8.1f} ms/step  {v['ratio_to_fp32']:6.2f}x exact")
    assert r["_meta"]["threads"] == 1 and r["exact"]["ratio_to_fp32"] == 1.0
    assert r["acc=fp32"]["ratio_to_fp32"] <= 5.0
