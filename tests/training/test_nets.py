"""The networks build with the paper's shapes and train one step (unquantized, tiny batch)."""

import pytest
import torch
from fewbits.sim.capture import replay
from fewbits.training.trainer import TrainConfig, record

from .helpers import batch, make_net, step


@pytest.mark.parametrize("net,shape,n_params", [
    ("pi-mlp", (1, 28, 28), 784 * 1200 + 1200 + 240 * 1200 + 1200 + 240 * 10 + 10),
    ("mnist-conv", (1, 28, 28), None),
    ("cifar-conv", (3, 32, 32), None),
    ("mlp-small", (1, 8, 8), None),
    ("conv-small", (1, 8, 8), None),
])
def test_net_builds_and_steps(net, shape, n_params):
    seed = 1
    n, qs, gen = make_net(net, "fp32", "fp32", seed, input_shape=shape)
    if n_params is not None:
        assert sum(p.numel() for p in n.parameters()) == n_params
    x = torch.rand(2, *shape, generator=gen)
    y = torch.tensor([1, 7])
    weights = [m.weight for m in n.sites()] if hasattr(n, "sites") else [l.weight for l in n.layers]
    before = [w.detach().clone() for w in weights]
    out = step(n, qs, x, y)
    assert out.shape == (2, 10)
    assert any(not torch.equal(b, w) for b, w in zip(before, weights))


def test_paper_mlp_hyper_parameters():
    from fewbits.training import lowp

    n, _, _ = make_net("pi-mlp", "fp32", "fp32", 0, input_shape=(1, 28, 28))
    assert [m.p for m in n.dropouts] == [0.8, 0.5, 0.5]
    options = lowp.state_of(n.model).options
    assert [options[s].max_norm for s in n.site_names] == [1.9365] * 3
    assert [lowp.state_of(n.model).qs.eval_scale.get(f"{s}.w", 1.0) for s in n.site_names] == [1.0, 0.5, 0.5]
    s = n.schedule
    assert (s.lr(0, 800), s.lr(400, 800), s.lr(800, 800)) == (0.05, pytest.approx(0.005), pytest.approx(0.005))
    assert (s.momentum(0, 800), s.momentum(200, 800)) == (0.5, pytest.approx(0.7))


def test_capture_api_records_a_chosen_step(tmp_path):
    cfg = TrainConfig(prop="dfixed:11", update="dfixed:13", seed=9, limit_train=100, batch_size=25, epochs=1)
    path = record(cfg, tmp_path / "cap", layers=["L0", "L2"], step=5)
    assert path.is_file()
    assert all(replay(tmp_path / "cap").values())


@pytest.mark.parametrize("net,channels,smallest", [("mnist-conv", 1, 16), ("cifar-conv", 3, 8)])
def test_images_too_small_for_a_net_are_refused_before_training_with_the_smallest_accepted(net, channels, smallest,
                                                                                         monkeypatch):
    """The size check agrees with torch: the smallest accepted side runs forward; one less is refused,
    and with the check taken out torch itself fails on it."""
    from fewbits.training import nets

    with pytest.raises(ValueError, match=f"accepted images of at least {smallest} pixels a side"):
        make_net(net, "fp32", "fp32", 0, input_shape=(channels, smallest - 1, smallest - 1))
    n, qs, gen = make_net(net, "fp32", "fp32", 0, input_shape=(channels, smallest, smallest))
    out = step(n, qs, torch.rand(2, channels, smallest, smallest, generator=gen), torch.tensor([1, 7]))
    assert out.shape == (2, 10)
    monkeypatch.setattr(nets, "_out_size", lambda n, k, pad, pool: max(1, -(-(n + 2 * pad - k + 1 - pool[0])
                                                                            // pool[1]) + 1))
    n, qs, gen = make_net(net, "fp32", "fp32", 0, input_shape=(channels, smallest - 1, smallest - 1))
    with pytest.raises(RuntimeError):
        step(n, qs, torch.rand(2, channels, smallest - 1, smallest - 1, generator=gen), torch.tensor([1, 7]))


#: the paper's quantization points of every layer ``L<i>`` of a built-in network (DESIGN.md, Training)
LAYER_POINTS = ("w", "b", "z", "y", "dEdz", "dEdw", "dEdb", "update_w", "update_b", "w_stored", "b_stored")
FORMATS = [("dfixed:11", "dfixed:13", False), ("fixed:12:6", "fixed:16:10", False),
           ("dfixed:10", "dfixed:12", True), ("fp16", "fp16", False)]


def _on_grid(q) -> bool:
    return bool(torch.equal(q.fmt.decode(q.fmt.encode(q.values)), q.values.to(torch.float64))) and (
        q.codes is None or bool(torch.equal(q.fmt.encode(q.values), q.codes)))


@pytest.mark.parametrize("net", ["mlp-small", "conv-small"])
@pytest.mark.parametrize("prop,update,paper", FORMATS)
def test_every_quantization_point_is_hit_on_its_grid(net, prop, update, paper):
    """input.x, every layer's points, the top's dEdy and each lower layer's dEdy (the input gradient
    of the layer above) are quantized in one step, all on their formats' grids."""
    n, qs, gen = make_net(net, prop, update, 3, paper_bits=paper)
    seen = {}
    qs.point_hooks.append(lambda g, q: seen.setdefault(g, []).append(q))
    x, y = batch(gen)
    step(n, qs, x, y)
    names = n.site_names
    expected = {"input.x"} | {f"{s}.{p}" for s in names for p in LAYER_POINTS} | {f"{s}.dEdy" for s in names}
    assert expected <= set(seen), f"points never quantized: {sorted(expected - set(seen))}"
    off = [g for g, qts in seen.items() for q in qts if not _on_grid(q)]
    assert not off, f"values off their format's grid at {off}"


@pytest.mark.parametrize("prop,update,paper", FORMATS)
def test_state_after_a_step_is_on_the_update_and_prop_grids(prop, update, paper):
    n, qs, gen = make_net("mlp-small", prop, update, 5, paper_bits=paper)
    x, y = batch(gen)
    step(n, qs, x, y)
    for s, m in zip(n.site_names, n.sites()):
        for group, t, width in ((f"{s}.w", m.weight, "update"), (f"{s}.b", m.bias, "update"),
                                (f"{s}.update_w", n.opt.buf[f"{s}.update_w"], "prop"),
                                (f"{s}.update_b", n.opt.buf[f"{s}.update_b"], "prop")):
            f = qs.fmt(group, width)
            assert torch.equal(f.decode(f.encode(t.detach())), t.detach().to(torch.float64)), group


def test_weight_gradient_is_the_dEdw_matmul_output():
    """The parameter gradient autograd hands to the update is the MAC's decoded output, unchanged."""
    n, qs, gen = make_net("mlp-small", "dfixed:11", "dfixed:13", 7)
    outs = {}
    qs.mac_hooks.append(lambda tag, a, b, bias, out, ovf: outs.__setitem__(tag, out))
    x, y = batch(gen)
    step(n, qs, x, y, update=False)
    for s, m in zip(n.site_names, n.sites()):
        assert torch.equal(m.weight.grad.t(), outs[f"{s}:weight_grad"].values)
        assert torch.equal(m.bias.grad, outs[f"{s}:bias_grad"].values.reshape(-1))
    assert {t.split(":")[1] for t in outs} == {"forward", "weight_grad", "bias_grad", "input_grad"}


def test_unquantized_mlp_is_the_float_network():
    """fp32: the network is the plain float function (dropout off; the softmax's backward is the
    identity, the paper's simplification) and its gradients are torch autograd's."""
    n, qs, gen = make_net("mlp-small", "fp32", "fp32", 11)
    for m in n.dropouts:
        m.p = 1.0  # keep every unit: the network is deterministic
    top = n.sites()[-1]
    with torch.no_grad():
        top.weight.copy_(torch.randn(top.weight.shape, generator=gen) * 0.1)
    x, y = batch(gen)
    out = n.model(x.reshape(16, -1))
    g = torch.randn(out.shape, generator=gen)
    out.backward(g)
    h = x.reshape(16, -1)
    ws = []
    for layer, m in zip(n.layers, n.sites()):
        w = m.weight.detach().clone().requires_grad_(True)
        ws.append(w)
        z = h @ w.t() + m.bias.detach()
        h = z.reshape(16, -1, layer.pieces).max(dim=2).values if layer.pieces > 1 else z
    torch.testing.assert_close(out, torch.softmax(h, dim=1).detach())
    h.backward(g)
    for m, w in zip(n.sites(), ws):
        torch.testing.assert_close(m.weight.grad, w.grad)
