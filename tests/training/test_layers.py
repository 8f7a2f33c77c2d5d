"""Every quantization point of a training step is hit and its values lie on its format's grid;
the fp32 path is the plain float network (gradients equal torch autograd's)."""

import pytest
import torch
import torch.nn.functional as F
from fewbits.training.layers import QConv2d
from fewbits.training.qcore import QT

from .helpers import batch, make_net, step

LAYER_POINTS = ("w", "b", "z", "y", "dEdy", "dEdz", "dEdw", "dEdb", "update_w", "update_b", "w_stored", "b_stored")
FORMATS = [("dfixed:11", "dfixed:13", False), ("fixed:12:6", "fixed:16:10", False),
           ("dfixed:10", "dfixed:12", True), ("fp16", "fp16", False)]


def _on_grid(q: QT) -> bool:
    return bool(torch.equal(q.fmt.decode(q.fmt.encode(q.values)), q.values.to(torch.float64))) and (
        q.codes is None or bool(torch.equal(q.fmt.encode(q.values), q.codes)))


@pytest.mark.parametrize("net", ["mlp-small", "conv-small"])
@pytest.mark.parametrize("prop,update,paper", FORMATS)
def test_every_quantization_point_is_hit_on_its_grid(net, prop, update, paper):
    seed = 3
    n, qs, gen = make_net(net, prop, update, seed, paper_bits=paper)
    seen = {}
    qs.point_hooks.append(lambda g, q: seen.setdefault(g, []).append(q))
    x, y = batch(gen)
    step(n, qs, x, y)
    expected = {"input.x"} | {f"{l.name}.{p}" for l in n.layers for p in LAYER_POINTS}
    assert expected <= set(seen), f"points never quantized: {sorted(expected - set(seen))}"
    off = [g for g, qts in seen.items() for q in qts if not _on_grid(q)]
    assert not off, f"values off their format's grid at {off}"


@pytest.mark.parametrize("prop,update,paper", FORMATS)
def test_state_after_a_step_is_on_the_update_and_prop_grids(prop, update, paper):
    n, qs, gen = make_net("mlp-small", prop, update, 5, paper_bits=paper)
    x, y = batch(gen)
    step(n, qs, x, y)
    for l in n.layers:
        for group, t, width in ((f"{l.name}.w", l.weight, "update"), (f"{l.name}.b", l.bias, "update"),
                                (f"{l.name}.update_w", l.update_w, "prop"), (f"{l.name}.update_b", l.update_b, "prop")):
            f = qs.fmt(group, width)
            assert torch.equal(f.decode(f.encode(t.detach())), t.detach().to(torch.float64)), group


def test_weight_gradient_is_the_dEdw_matmul_output():
    """The parameter gradient autograd hands to the update is the MAC's decoded output, unchanged."""
    n, qs, gen = make_net("mlp-small", "dfixed:11", "dfixed:13", 7)
    outs = {}
    qs.mac_hooks.append(lambda tag, a, b, bias, out, ovf: outs.__setitem__(tag, out))
    x, y = batch(gen)
    step(n, qs, x, y, update=False)
    for l in n.layers:
        assert torch.equal(l.weight.grad, outs[f"{l.name}:weight_grad"].values)
        assert torch.equal(l.bias.grad, outs[f"{l.name}:bias_grad"].values.reshape(-1))
    assert {t.split(":")[1] for t in outs} == {"forward", "weight_grad", "bias_grad", "input_grad"}


def test_unquantized_linear_matches_torch_autograd():
    n, qs, gen = make_net("mlp-small", "fp32", "fp32", 11)
    from fewbits.training.layers import Dropout

    for m in n.stages:
        if isinstance(m, Dropout):
            m.p = 1.0  # keep every unit: the network is deterministic
    with torch.no_grad():
        n.layers[-1].weight.copy_(torch.randn(n.layers[-1].weight.shape, generator=gen) * 0.1)
    x, y = batch(gen)
    out = n(x)
    g = torch.randn(out.values.shape, generator=gen)
    out.values.backward(g)
    # the same function with plain torch ops (softmax backward = identity, the paper's simplification)
    h = x.reshape(16, -1)
    ws = []
    for l, act in zip(n.layers, [m for m in n.stages if hasattr(m, "pieces")]):
        w = l.weight.detach().clone().requires_grad_(True)
        ws.append(w)
        z = h @ w + l.bias.detach()
        h = z.reshape(16, -1, act.pieces).max(dim=2).values if act.pieces > 1 else z
    torch.testing.assert_close(out.values, torch.softmax(h, dim=1).detach())
    h.backward(g)
    for l, w in zip(n.layers, ws):
        torch.testing.assert_close(l.weight.grad, w.grad)


@pytest.mark.parametrize("pad", [0, 1, 2])
def test_conv_input_and_weight_gradients_match_torch(pad):
    """The im2col forward and the flipped-filter input gradient are the real convolution."""
    from fewbits.sim.run import RunSpec
    from fewbits.training.qcore import QuantState

    qs = QuantState(RunSpec.parse("fp32", "fp32"))
    gen = torch.Generator().manual_seed(pad)
    conv = QConv2d("L1", qs, 3, 4, 3, padding=pad)
    conv.reset_parameters(gen)
    x = torch.randn(2, 3, 6, 5, generator=gen, requires_grad=True)
    z = conv(QT(x)).values
    g = torch.randn(z.shape, generator=gen)
    z.backward(g)
    w4 = conv.weight.detach().t().reshape(4, 3, 3, 3).clone().requires_grad_(True)
    x2 = x.detach().clone().requires_grad_(True)
    ref = F.conv2d(x2, w4, conv.bias.detach(), padding=pad)
    torch.testing.assert_close(z, ref)
    ref.backward(g)
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(conv.weight.grad, w4.grad.reshape(4, -1).t())


@pytest.mark.parametrize("seed", [0, 1])
def test_quantized_conv_forward_is_one_requantization_of_the_exact_convolution(seed):
    from fewbits.sim import DynamicFixed
    from fewbits.sim.run import RunSpec
    from fewbits.training.qcore import QuantState

    qs = QuantState(RunSpec.parse("dfixed:11", "dfixed:13"))
    gen = torch.Generator().manual_seed(seed)
    conv = QConv2d("L0", qs, 2, 3, 3, padding=1)
    conv.reset_parameters(gen)
    fx = DynamicFixed(11, 9)
    xv = fx.quantize(torch.rand(2, 2, 5, 5, generator=gen, dtype=torch.float64))
    zq = conv(QT(xv, fx.encode(xv), fx))
    wq = qs.fmt("L0.w").quantize(conv.weight.detach())
    exact = F.conv2d(xv, wq.t().reshape(3, 2, 3, 3), padding=1)  # float64: exact at these widths
    assert torch.equal(zq.values, zq.fmt.quantize(exact))
