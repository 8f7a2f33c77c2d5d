"""A capture from a converted user model's conv layer (``lowp.capture``) replays under
``mac_reference`` and co-simulates bit-exact on Icarus (the forward matmul, with its bias)."""

import pytest
import torch
import torch.nn.functional as F
from fewbits.cosim import vectors as V
from fewbits.cosim.verify import verify
from fewbits.training import lowp
from fewbits.sim.capture import replay
from torch import nn


@pytest.mark.parametrize("seed", [3], ids=lambda s: f"seed{s}")
def test_lowp_conv_capture_cosimulates_bit_exact(make_design, tmp_path, seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(48, 4))
    lowp.convert(model, "fixed:8:6", "fixed:12:10")
    opt = lowp.SGD(model, 0.05, 0.5)
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.rand(4, 1, 8, 8, generator=gen), torch.randint(0, 4, (4,), generator=gen)
    F.cross_entropy(model(x), y).backward()
    opt.step()
    with lowp.capture(model, ["0"], tmp_path / "cap"):
        F.cross_entropy(model(x), y).backward()
        opt.step()
    # the first layer's input needs no gradient: no input-gradient matmul runs
    assert replay(tmp_path / "cap") == {"0.forward": True, "0.weight_grad": True, "0.bias_grad": True}
    d = make_design("fixed:8:6", "fixed:8:6", "fixed:8:6", 2, 3, 64)
    mms, skipped = V.capture_matmuls(tmp_path / "cap", d.spec)
    forward = [m for m in mms if m.name.endswith(".forward]")]
    assert len(forward) == 1, skipped
    s = verify(d, forward, tmp_path / "sim")
    assert s["ok"] and s["mismatches"] == 0 and s["capture_mismatches"] == 0, s.get("first_mismatches", [])[:3]
    assert s["capture_elements_checked"] == forward[0].z.size
