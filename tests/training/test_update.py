"""The fused weight update (compiled loops, in place) == the unfused rule, value for value and count for count."""

import copy

import pytest
import torch
from fewbits.training import update
from fewbits.sim.run import RunSpec
from fewbits.training.qcore import QuantState
from fewbits.training.ranges import RangeController

GROUPS = ("L.update_w", "L.w", "L.update_b", "L.b")


def sequential_column_norms(w):
    """Column norms summed row by row, the order the compiled loop sums them in."""
    s = torch.zeros(w.shape[1], dtype=torch.float64)
    for row in w:
        s += row * row
    return torch.sqrt(s)


def _layer(k, n, norm):
    """What ``apply_update`` reads of a layer: the paper's K x N ``weight``, ``bias``, momentum buffers."""
    layer = torch.nn.Module()
    layer.name, layer.lr_scale, layer.max_col_norm = "L", 1.0, norm
    layer.weight = torch.nn.Parameter(torch.zeros(k, n, dtype=torch.float64))
    layer.bias = torch.nn.Parameter(torch.zeros(n, dtype=torch.float64))
    layer.register_buffer("update_w", torch.zeros(k, n, dtype=torch.float64))
    layer.register_buffer("update_b", torch.zeros(n, dtype=torch.float64))
    return layer


def setup(prop, upd, paper, norm, seed):
    gen = torch.Generator().manual_seed(seed)
    qs = QuantState(RunSpec.parse(prop, upd, paper_bits=paper), RangeController())
    layer = _layer(37, 23, norm)
    ctl = qs.controller
    for g, bits in zip(GROUPS, (-3, 0, -3, 0)):  # tight ranges: some values saturate
        ctl.state(g).int_bits, ctl.state(g).set = bits, True
    with torch.no_grad():
        w = torch.randn(37, 23, generator=gen, dtype=torch.float64) * 0.4
        layer.weight.copy_(qs.quantize("L.w_stored", w, width="update", record=False).values)
        layer.update_w.copy_(qs.quantize("L.update_w", torch.randn(37, 23, generator=gen, dtype=torch.float64) * 0.1,
                                         record=False).values)
        layer.bias.copy_(qs.quantize("L.b_stored", torch.randn(23, generator=gen, dtype=torch.float64) * 0.3,
                                     width="update", record=False).values)
    layer.weight.grad = torch.randn(37, 23, generator=gen, dtype=torch.float64) * 30.0  # lr * g saturates some
    layer.bias.grad = torch.randn(23, generator=gen, dtype=torch.float64)
    return qs, layer


@pytest.mark.parametrize("seed", [31, 32])
@pytest.mark.parametrize("prop,upd,paper,norm", [
    ("dfixed:6", "dfixed:8", True, 0.9),  # the paper's convention (ties away, symmetric)
    ("dfixed:6", "dfixed:8", True, 2.5),  # some columns over the norm, some under (their rescale is skipped)
    ("dfixed:9", "dfixed:11", False, 100.0),  # every column under: no rescale pass at all
    ("dfixed:9", "dfixed:11", False, None),
    ("fixed:8:6", "fixed:12:9", False, 0.5),
    ("fixed:8:6", "fixed:12:9", True, None),
    # floats (no max norm: the fused float pass): IEEE overflow to infinity, FN and SAT saturation,
    # directed and away-from-zero rounding, subnormals off
    ("float:2:3", "fp16", False, None),
    ("float:2:1,special=fn,round=rtz,bias=3", "float:4:6,special=sat,round=rna", False, None),
    ("float:2:2,subnormals=off,round=rdn", "bf16", False, None),
])
def test_fused_update_is_the_unfused_rule(monkeypatch, prop, upd, paper, norm, seed):
    qs, layer = setup(prop, upd, paper, norm, seed)
    qs2, layer2 = copy.deepcopy((qs, layer))
    layer2.weight.grad, layer2.bias.grad = layer.weight.grad.clone(), layer.bias.grad.clone()
    fused = []
    real = update._fused_weight_update
    monkeypatch.setattr(update, "_fused_weight_update", lambda *a: fused.append(real(*a)) or fused[-1])
    skipped = []
    real_skip = update._rescale_is_identity
    monkeypatch.setattr(update, "_rescale_is_identity", lambda f, fmt: skipped.append(real_skip(f, fmt)) or skipped[-1])
    update.apply_update(qs, layer, 0.05, 0.6)
    assert fused == [True]
    if norm == 2.5:
        assert skipped[0].any() and not skipped[0].all()
    if norm == 100.0:
        assert skipped[0].all()

    monkeypatch.setattr(update, "_fused_weight_update", lambda *a: False)
    monkeypatch.setattr(update, "_column_norms", sequential_column_norms)
    update.apply_update(qs2, layer2, 0.05, 0.6)

    for name in ("weight", "update_w", "bias", "update_b"):
        a, b = getattr(layer, name).detach(), getattr(layer2, name).detach()
        assert torch.equal(a, b), f"{name}: {(a != b).sum()} elements differ"
    for g in GROUPS:
        s1, s2 = qs.controller.state(g), qs2.controller.state(g)
        assert (s1.count, s1.overflow, s1.overflow_narrower) == (s2.count, s2.overflow, s2.overflow_narrower), g
    assert qs.controller.state("L.update_w").overflow > 0  # saturation was exercised
    if prop.startswith("dfixed"):
        assert qs.controller.state("L.w").overflow_narrower > 0


@pytest.mark.parametrize("prop,upd,paper,norm", [("dfixed:6", "dfixed:8", True, 0.9), ("fp16", "fp16", False, None)])
def test_fused_update_reports_every_point_to_hooks(prop, upd, paper, norm):
    qs, layer = setup(prop, upd, paper, norm, 33)
    seen = []
    qs.point_hooks.append(lambda group, q: seen.append((group, q.values.clone())))
    update.apply_update(qs, layer, 0.05, 0.6)
    assert [g for g, _ in seen] == ["L.update_w", "L.w_stored", "L.w_stored", "L.update_b", "L.b_stored"]
    assert torch.equal(seen[2][1], layer.weight.detach()) and torch.equal(seen[0][1], layer.update_w)


def test_unset_range_uses_the_unfused_path():
    qs, layer = setup("dfixed:6", "dfixed:8", True, 0.9, 34)
    qs.controller.state("L.update_w").set = False
    assert update._fused_weight_update(qs, layer, 0.05, 0.6, layer.weight.grad) is False
