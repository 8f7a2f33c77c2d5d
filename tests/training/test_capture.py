"""Captures recorded during training (training.capture.Recorder) reproduce: re-running mac_reference on a capture gives its output codes and flags."""

import json

import numpy as np
import pytest
from fewbits.sim.capture import read_capture, replay
from fewbits.training.capture import Recorder

from .helpers import batch, make_net, step


@pytest.mark.parametrize("prop,update,paper", [("dfixed:11", "dfixed:13", False), ("fixed:10:5", "fixed:12:7", True),
                                               ("fp16", "fp16", False)])
@pytest.mark.parametrize("net", ["mlp-small", "conv-small"])
def test_capture_replays_bit_exactly(tmp_path, net, prop, update, paper):
    seed = 21
    n, qs, gen = make_net(net, prop, update, seed, paper_bits=paper)
    x, y = batch(gen)
    step(n, qs, x, y)  # ranges settle, then capture the second step
    cap = Recorder(["L0", "L1"], step=1)
    qs.mac_hooks.append(cap.hook)
    x, y = batch(gen)
    step(n, qs, x, y)
    path = cap.save(tmp_path / "cap")
    manifest = json.loads(path.read_text())
    names = {e["name"] for e in manifest["matmuls"]}
    assert {f"{l}.{m}" for l in ("L0", "L1") for m in ("forward", "weight_grad")} | {"L1.input_grad"} <= names
    assert "L0.input_grad" not in names  # the input needs no gradient
    result = replay(tmp_path / "cap")
    assert result and all(result.values()), result


def test_replay_detects_a_changed_code(tmp_path):
    n, qs, gen = make_net("mlp-small", "dfixed:11", "dfixed:13", 4)
    cap = Recorder(["L1"], step=0)
    qs.mac_hooks.append(cap.hook)
    x, y = batch(gen)
    step(n, qs, x, y)
    cap.save(tmp_path)
    e = next(m for m in read_capture(tmp_path).matmuls if m.matmul == "forward")
    assert e.rows == 16 and e.cols == n.shapes["L1"][1] and e.bias_fmt
    z = e.z.copy()
    z[0, 0] += 1
    with np.load(tmp_path / "capture.npz") as f:
        data = {k: f[k] for k in f.files}
    data[e.name + ".z"] = z
    np.savez(tmp_path / "capture.npz", **data)
    assert replay(tmp_path)[e.name] is False
