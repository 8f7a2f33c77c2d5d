"""``fewbits.training.lowp``: a user's nn.Module under the MAC contract.

Every matmul of every supported site type (forward, input gradient, weight gradient, bias
gradient) gives ``mac_reference``'s codes and flags (``==``) at fixed, dynamic fixed and fp16;
the convolution's input/weight gradients are the true ones (float64 autograd of the quantized
operands, exact at these widths, then requantized); matmuls inside ``forward()`` are caught;
unsupported modules are one line; ``keep_float`` works and is reported; two runs are identical;
the paper's pi-mlp written as a plain nn.Module gives the built-in network's parameters bit for bit.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from fewbits.training import lowp
from torch import nn

from .helpers import batch, example, make_net
from .helpers import step as builtin_step

FORMATS = [("fixed:12:6", "fixed:16:10", False), ("dfixed:10", "dfixed:12", True), ("fp16", "fp16", False)]
FMT_IDS = ["fixed", "dfixed-paper", "fp16"]




class Functional(nn.Module):
    """Matmuls a module swap cannot see: ``@``, ``torch.matmul`` (batched), ``F.linear``, ``F.conv1d``."""

    def __init__(self, gen):
        super().__init__()
        self.P = nn.Parameter(torch.randn(6, 5, generator=gen) * 0.3)
        self.Q = nn.Parameter(torch.randn(4, 5, generator=gen) * 0.3)
        self.k = nn.Parameter(torch.randn(3, 2, 3, generator=gen) * 0.3)

    def forward(self, x):  # x: B x 2 x 6
        h = torch.relu(F.conv1d(x, self.k, padding=1))  # B x 3 x 6
        h = torch.matmul(h, self.P)  # batched: B x 3 x 5
        h = torch.tanh(h) @ h.transpose(1, 2)  # B x 3 x 3
        return F.linear(h.flatten(1)[:, :5], self.Q)


LAYERS = {
    "linear": (lambda g: nn.Linear(7, 5), (6, 7)),
    "linear-nobias-3d": (lambda g: nn.Linear(7, 5, bias=False), (2, 3, 7)),
    "conv1d-s2-p1-d2": (lambda g: nn.Conv1d(3, 4, 3, stride=2, padding=1, dilation=2), (2, 3, 11)),
    "conv2d-s2-p1": (lambda g: nn.Conv2d(2, 3, 3, stride=2, padding=1), (2, 2, 7, 6)),
    "conv2d-d2-same": (lambda g: nn.Conv2d(2, 3, 3, padding="same", dilation=2, bias=False), (2, 2, 6, 6)),
    "conv2d-k1-s2": (lambda g: nn.Conv2d(2, 3, 1, stride=2), (2, 2, 5, 5)),
    "functional": (lambda g: Functional(g), (3, 2, 6)),
}


def _build(kind, seed, prop, update, paper):
    torch.manual_seed(seed)  # nn.Module initializers draw from the global generator
    gen = torch.Generator().manual_seed(seed)
    make, shape = LAYERS[kind]
    model = lowp.convert(make(gen), prop, update, paper_bits=paper)
    return model, torch.randn(*shape, generator=gen), gen


def _macs(model):
    seen = []
    lowp.state_of(model).qs.mac_hooks.append(lambda tag, a, b, bias, out, ovf: seen.append((tag, a, b, bias, out, ovf)))
    return seen


@pytest.mark.parametrize("prop,update,paper", FORMATS, ids=FMT_IDS)
@pytest.mark.parametrize("kind", list(LAYERS))
def test_every_matmul_of_every_site_type_is_mac_reference(kind, prop, update, paper):
    from fewbits.sim import mac_reference

    seed = 101
    model, x, gen = _build(kind, seed, prop, update, paper)
    seen = _macs(model)
    x.requires_grad_(True)
    out = model(x)
    out.backward(torch.randn(out.shape, generator=gen, dtype=out.dtype))
    assert x.grad is not None
    tags = {t for t, *_ in seen}
    kinds = {t.split(":")[1] for t in tags}
    assert {"forward", "input_grad", "weight_grad"} <= kinds, tags
    for tag, a, b, bias, z, ovf in seen:
        ref, rovf = mac_reference(a.codes, b.codes, a.fmt, b.fmt, None, z.fmt,
                                  None if bias is None else bias.codes, None if bias is None else bias.fmt)
        assert torch.equal(ref, z.codes), tag
        assert torch.equal(rovf, ovf.to(torch.bool)), tag


@pytest.mark.parametrize("kind", ["conv1d-s2-p1-d2", "conv2d-s2-p1", "conv2d-d2-same", "conv2d-k1-s2", "linear"])
def test_gradients_are_the_true_gradients_of_the_quantized_operands(kind):
    """At fixed:12:6 every product and sum is exact in float64: autograd's gradients of the
    quantized operands, requantized once, are what the input/weight-gradient MACs must give."""
    model, x, gen = _build(kind, 7, "fixed:12:6", "fixed:16:10", False)
    pts = {}
    lowp.state_of(model).qs.point_hooks.append(lambda g, q: pts.__setitem__(g, q))
    x.requires_grad_(True)
    out = model(x)
    g = torch.randn(out.shape, generator=gen, dtype=out.dtype)
    out.backward(g)
    xq, wq, dq = (pts[f".{p}"].values for p in ("x", "w", "dEdz"))  # the root module's site is ""
    if kind == "linear":
        wq = wq.t()  # the MAC's B operand is W.T
    elif x.dim() == 3:
        xq, wq = xq.squeeze(2), wq.squeeze(2)  # a 1-D convolution runs as a 2-D one of height 1
    xr = xq.clone().requires_grad_(True)
    wr = wq.clone().requires_grad_(True)
    if kind == "linear":
        zr = F.linear(xr, wr)
    else:
        m = model
        fn = F.conv1d if x.dim() == 3 else F.conv2d
        zr = fn(xr, wr, None, m.stride, m.padding, m.dilation)
    zr.backward(dq.to(zr.dtype).reshape(zr.shape))
    fmt = pts[".dEdx"].fmt
    assert torch.equal(x.grad.to(torch.float64), fmt.quantize(xr.grad)), "input gradient"
    fw = pts[".dEdw"].fmt
    assert torch.equal(model.weight.grad, fw.quantize(wr.grad)), "weight gradient"


def test_sites_are_named_by_module_path():
    model, x, _ = _build("functional", 3, "fixed:12:6", "fixed:16:10", False)
    model(x)
    assert lowp.describe(model)["sites"] == {"conv0": "conv", "matmul0": "matmul", "matmul1": "matmul",
                                              "linear0": "linear"}


@pytest.mark.parametrize("bad,why", [
    (lambda: nn.LSTM(4, 4), "LSTM"),
    (lambda: nn.Conv2d(4, 4, 3, groups=2), "groups=2"),
    (lambda: nn.ConvTranspose2d(4, 4, 3), "ConvTranspose2d"),
    (lambda: nn.MultiheadAttention(4, 2), "MultiheadAttention"),
])
def test_unsupported_module_is_one_line_naming_its_path(bad, why):
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), bad()))
    with pytest.raises(lowp.LowpError) as e:
        lowp.convert(model, "fixed:12:6", "fixed:16:10")
    msg = str(e.value)
    assert "\n" not in msg and "1.1 (" in msg and why in msg and "nn.Linear" in msg and "keep_float" in msg


def test_unsupported_functional_call_is_one_line():
    class E(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(3, 3))

        def forward(self, x):
            return torch.einsum("bi,ij->bj", x, self.w)

    model = lowp.convert(nn.Sequential(E()), "fixed:12:6", "fixed:16:10")
    with pytest.raises(lowp.LowpError, match=r"^0: torch.einsum cannot be put under the MAC contract"):
        model(torch.ones(2, 3))


def test_keep_float_runs_in_float_and_is_reported():
    class RNNNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(3, 4, batch_first=True)
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    torch.manual_seed(5)
    model = lowp.convert(RNNNet(), "fixed:12:6", "fixed:16:10", keep_float=["rnn"])
    seen = _macs(model)
    gen = torch.Generator().manual_seed(5)
    out = model(torch.randn(2, 5, 3, generator=gen))
    before = model.rnn.weight_hh_l0.detach().clone()
    out.sum().backward()
    lowp.SGD(model, 0.1, 0.5).step()
    assert {t.split(":")[0] for t, *_ in seen} == {"head"}
    assert lowp.describe(model)["keep_float"] == ["rnn"]
    assert not torch.equal(before, model.rnn.weight_hh_l0)  # updated, in float
    with pytest.raises(lowp.LowpError, match="keep_float names no module: 'rnm'"):
        lowp.convert(RNNNet(), "fixed:12:6", keep_float=["rnm"])


def _train(model_fn, seed, prop, update, paper, steps=4, shape=(1, 8, 8)):
    torch.manual_seed(seed)
    model = lowp.convert(model_fn(shape, 10), prop, update, paper_bits=paper, track_steps=2)
    opt = lowp.SGD(model, 0.05, 0.5, max_norm=2.0)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, y = batch(gen, 16, shape)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model


@pytest.mark.parametrize("name", ["lenet", "resnet_small"])
@pytest.mark.parametrize("seed", [21], ids=lambda s: f"seed{s}")
def test_two_runs_give_identical_parameters(name, seed):
    a = _train(example(name), seed, "dfixed:10", "dfixed:12", True)
    b = _train(example(name), seed, "dfixed:10", "dfixed:12", True)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    c = _train(example(name), seed + 1, "dfixed:10", "dfixed:12", True)
    assert not all(torch.equal(sa[k], c.state_dict()[k]) for k in sa)  # the seed matters


class _Dropout(nn.Module):
    """The paper's dropout (a 0/1 mask, no rescaling), drawn like the built-in networks' ``PaperDropout``."""

    def __init__(self, p, gen):
        super().__init__()
        self.p, self.gen = p, gen

    def forward(self, x):
        return x * (torch.rand(x.shape, generator=self.gen, dtype=torch.float64) < self.p).to(x.dtype)


class _Maxout(nn.Module):
    def __init__(self, pieces):
        super().__init__()
        self.pieces = pieces

    def forward(self, z):
        return z.reshape(z.shape[0], -1, self.pieces).max(dim=2).values


def _pi_mlp_as_user_model(builtin, gen):
    """The paper's PI maxout MLP as a plain nn.Module, with the built-in network's parameters."""
    mods = []
    sites = builtin.sites()
    for i, site in enumerate(sites):
        lin = nn.Linear(site.in_features, site.out_features, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(site.weight)
            lin.bias.copy_(site.bias)
        mods += [_Dropout(0.8 if i == 0 else 0.5, gen), lin]
        if i < len(sites) - 1:
            mods.append(_Maxout(5))
    return nn.Sequential(*mods)


MAX_NORM = 0.35


@pytest.mark.parametrize("prop,update,paper", FORMATS, ids=FMT_IDS)
@pytest.mark.parametrize("seed", [4], ids=lambda s: f"seed{s}")
def test_pi_mlp_as_a_user_model_is_bit_identical_to_the_builtin_after_20_steps(prop, update, paper, seed):
    """A plain nn.Module (no explicit points, the sites' own input groups) trains as the built-in
    definition does: the re-quantization where a value enters a site changes nothing here."""
    import dataclasses

    shape = (1, 8, 8)
    net, qs, gen = make_net("pi-mlp", prop, update, seed, input_shape=shape, paper_bits=paper)
    options = lowp.state_of(net.model).options
    for s in net.site_names:  # below the columns' norms after a few steps: the constraint acts
        options[s] = dataclasses.replace(options[s], max_norm=MAX_NORM)
    user_gen = torch.Generator().set_state(gen.get_state())
    names = {f"{i}": name for i, name in zip((1, 4, 7), net.site_names)}
    user = lowp.convert(_pi_mlp_as_user_model(net, user_gen), prop, update, paper_bits=paper, range_every=1000)
    ust = lowp.state_of(user)
    opt = lowp.SGD(user, 0.1, 0.5, max_norm=MAX_NORM)
    data = torch.Generator().manual_seed(seed + 1000)
    for _ in range(20):
        x, y = batch(data, 16, shape)
        builtin_step(net, qs, x, y, lr=0.1, momentum=0.5)
        z = user(x.reshape(16, -1))
        p = ust.qs.quantize("7.y", torch.softmax(z, dim=1)).values  # the loss's softmax, as the paper's L2.y
        z.backward((p - F.one_hot(y, 10).to(p.dtype)) / 10)
        opt.step()
    for site, name in names.items():
        mine, theirs = net.model.get_submodule(name), user.get_submodule(site)
        assert torch.equal(mine.weight, theirs.weight), name
        assert torch.equal(mine.bias, theirs.bias), name
        assert torch.equal(net.opt.buf[name + ".update_w"], opt.buf[site + ".update_w"]), name


def _digits_error(prop, update, paper, epochs, seed, limit=None):
    """Test error (%) of the LeNet example trained on digits with ``lowp.SGD`` (batch 50)."""
    from fewbits.training import datasets as ds

    data = ds.load("digits")
    x, y = torch.from_numpy(data.train.x[:limit]), torch.from_numpy(data.train.y[:limit])
    torch.manual_seed(seed)
    batches = len(y) // 50
    model = lowp.convert(example("lenet")(data.input_shape, data.n_classes), prop, update, paper_bits=paper,
                         track_steps=batches, range_every=max(1, batches // 5))
    opt = lowp.SGD(model, 0.1, 0.9)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        for i in range(batches):
            idx = order[i * 50:(i + 1) * 50]
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(data.test.x)).argmax(dim=1)
    return 100.0 * float((pred != torch.from_numpy(data.test.y)).double().mean())


@pytest.mark.parametrize("seed", [0], ids=lambda s: f"seed{s}")
def test_lenet_on_digits_at_dfixed_10_12_within_2_points_of_fp32(seed):
    """15 epochs of digits, about 20 s on one thread: in the fast suite."""
    base = _digits_error("fp32", "fp32", False, epochs=15, seed=seed)
    low = _digits_error("dfixed:10", "dfixed:12", True, epochs=15, seed=seed)
    assert base < 10.0, base
    assert low <= base + 2.0, (low, base)


@pytest.mark.parametrize("acc", ["bf16,chunk=4", "fp32"])
@pytest.mark.parametrize("kind", ["linear", "conv2d-s2-p1", "functional"])
def test_a_float_accumulator_is_mac_reference_with_it(kind, acc):
    """``convert(acc=...)``: every matmul is ``mac_reference`` with the run's float accumulator, and the
    accumulator matters (with bf16 some outputs differ from the exact accumulator's)."""
    from fewbits.sim import mac_reference
    from fewbits.sim.run import run_accumulator

    torch.manual_seed(5)
    gen = torch.Generator().manual_seed(5)
    make, shape = LAYERS[kind]
    model = lowp.convert(make(gen), "fp16", "fp16", acc=acc)
    seen = _macs(model)
    x = torch.randn(*shape, generator=gen).requires_grad_(True)
    out = model(x)
    out.backward(torch.randn(out.shape, generator=gen, dtype=out.dtype))
    facc = run_accumulator(acc)
    differs = 0
    for tag, a, b, bias, z, ovf in seen:
        bc, bf = (None, None) if bias is None else (bias.codes, bias.fmt)
        ref, rovf = mac_reference(a.codes, b.codes, a.fmt, b.fmt, facc, z.fmt, bc, bf)
        assert torch.equal(ref, z.codes) and torch.equal(rovf, ovf.to(torch.bool)), tag
        exact, _ = mac_reference(a.codes, b.codes, a.fmt, b.fmt, None, z.fmt, bc, bf)
        differs += int((exact != z.codes).sum())
    assert (differs > 0) == acc.startswith("bf16"), differs
    with pytest.raises(ValueError, match="float accumulator takes no runtime shift"):
        lowp.convert(make(gen), "dfixed:10", acc=acc)


# ---- explicit points and per-site settings (what the paper's networks are defined with) ----------------
def _point_net(seed, prop="dfixed:10", update="dfixed:12", paper=True):
    """Point "in" -> Linear "a" -> ReLU -> Point "h" -> Linear "b"; the sites read the points' outputs."""
    torch.manual_seed(seed)
    model = nn.Sequential()
    model.add_module("pin", lowp.Point("in"))
    model.add_module("a", nn.Linear(6, 5))
    model.add_module("act", nn.ReLU())
    model.add_module("ph", lowp.Point("h"))
    model.add_module("b", nn.Linear(5, 3))
    return lowp.convert(model, prop, update, paper_bits=paper)


@pytest.mark.parametrize("seed", [41], ids=lambda s: f"seed{s}")
def test_a_point_quantizes_once_and_a_site_reading_it_counts_nothing_again(seed):
    model = _point_net(seed)
    lowp.configure(model, "a", input_group="in")
    lowp.configure(model, "b", input_group="h", grad_group="a.dEdy")
    qs = lowp.state_of(model).qs
    pts = {}
    qs.point_hooks.append(lambda g, q: pts.__setitem__(g, q))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 6, generator=gen) * 3
    out = model(x)
    out.backward(torch.randn(out.shape, generator=gen, dtype=out.dtype))
    groups = qs.controller.groups
    assert "a.x" not in groups and "b.x" not in groups and "b.dEdx" not in groups
    assert groups["in"].count == x.numel() and groups["h"].count == 4 * 5  # counted once, at the point
    assert groups["a.dEdy"].count == 4 * 5  # b's input gradient, in the named group
    h = qs.fmt("h")
    assert pts["b.x"].fmt == h and torch.equal(pts["b.x"].values, pts["h"].values)
    assert torch.equal(pts["h"].values, h.quantize(torch.relu(pts["a.z"].values)))  # quantized at the point
    assert torch.equal(pts["in"].values, qs.fmt("in").quantize(x.double()))


@pytest.mark.parametrize("seed", [42], ids=lambda s: f"seed{s}")
def test_the_paper_softmax_quantizes_p_and_passes_the_gradient_to_the_logits(seed):
    """Forward: softmax(z) on the grid of ``out.y``; backward: the given gradient quantized at
    ``out.dEdy`` arrives at the last site as its dEdz (no softmax Jacobian)."""
    torch.manual_seed(seed)
    model = lowp.convert(nn.Sequential(nn.Linear(6, 4), lowp.paper_softmax("out")), "fixed:12:6", "fixed:16:10")
    qs = lowp.state_of(model).qs
    pts = {}
    qs.point_hooks.append(lambda g, q: pts.__setitem__(g, q))
    gen = torch.Generator().manual_seed(seed)
    p = model(torch.randn(5, 6, generator=gen))
    fmt = qs.fmt("out.y")
    assert torch.equal(p, fmt.quantize(torch.softmax(pts["0.z"].values, dim=1)))
    g = torch.randn(p.shape, generator=gen, dtype=p.dtype) / 7
    p.backward(g)
    assert torch.equal(pts["out.dEdy"].values, fmt.quantize(g)) and qs.controller.groups["out.dEdy"].count == g.numel()
    assert torch.equal(pts["0.dEdz"].values, fmt.quantize(fmt.quantize(g)))
    assert not torch.equal(fmt.quantize(g), g)  # the quantization is visible


def _sgd_run(seed, per_site: bool, max_norm, lr_scale, steps=1):
    model = _point_net(seed, "fixed:12:6", "fixed:16:10", False)
    if per_site:
        lowp.configure(model, "a", max_norm=max_norm, lr_scale=lr_scale)
        opt = lowp.SGD(model, 0.1, 0.5)
    else:
        opt = lowp.SGD(model, 0.1 * lr_scale, 0.5, max_norm=max_norm)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, y = torch.randn(8, 6, generator=gen), torch.randint(0, 3, (8,), generator=gen)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model


@pytest.mark.parametrize("seed", [43], ids=lambda s: f"seed{s}")
def test_a_sites_max_norm_and_lr_scale_act_on_that_site_only(seed):
    """Site "a" configured with max-norm 0.3 and lr x 0.25 updates as an optimizer with those
    settings for every site would; site "b" as one without them (one step: b's gradient does not
    depend on a's update yet)."""
    site = _sgd_run(seed, True, 0.3, 0.25)
    everywhere = _sgd_run(seed, False, 0.3, 0.25)
    plain = _sgd_run(seed, False, None, 1.0)
    assert torch.equal(site.a.weight, everywhere.a.weight) and torch.equal(site.a.bias, everywhere.a.bias)
    assert not torch.equal(site.a.weight, plain.a.weight) and not torch.equal(site.a.bias, plain.a.bias)
    assert float(everywhere.a.weight.detach().norm(dim=1).max()) <= 0.3 + 2 ** -9  # the norm is active
    assert torch.equal(site.b.weight, plain.b.weight) and torch.equal(site.b.bias, plain.b.bias)


@pytest.mark.parametrize("site", ["linear", "conv"])
@pytest.mark.parametrize("paper_float", [False, True], ids=["plain", "paper_float"])
def test_eval_scale_multiplies_an_fp32_sites_weights_when_not_training(site, paper_float):
    torch.manual_seed(47)
    layer, shape = (nn.Linear(6, 4), (3, 6)) if site == "linear" else (nn.Conv2d(2, 3, 3, padding=1), (2, 2, 5, 5))
    ref = lowp.convert(nn.Sequential(copy.deepcopy(layer)), "fp32")
    model = lowp.convert(nn.Sequential(layer), "fp32")
    lowp.configure(model, "0", eval_scale=0.5, paper_float=paper_float)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(47))
    lowp.configure(ref, "0", paper_float=paper_float)
    with torch.no_grad():
        ref[0].weight.mul_(0.5)
        ref[0].bias.mul_(0.5)
        train = model(x)
        model.eval(), ref.eval()
        assert torch.equal(model(x), ref(x))
        assert not torch.equal(model(x), train)


@pytest.mark.parametrize("prop,update,paper", FORMATS, ids=FMT_IDS)
def test_eval_scale_multiplies_the_quantized_weights_when_not_training(prop, update, paper):
    torch.manual_seed(44)
    model = lowp.convert(nn.Sequential(nn.Linear(6, 4)), prop, update, paper_bits=paper)
    lowp.configure(model, "0", eval_scale=0.5)
    seen = _macs(model)
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(44))
    model(x)
    model.eval()
    with torch.no_grad():
        model(x)
    (_, _, w_train, b_train, _, _), (_, _, w_eval, b_eval, _, _) = seen
    assert torch.equal(w_eval.values, w_train.values * 0.5) and torch.equal(b_eval.values, b_train.values * 0.5)
    assert torch.equal(w_eval.codes, w_train.codes) or prop == "fp16"  # fixed point: the same codes, re-labelled
    with pytest.raises(lowp.LowpError, match="not a power of two"):
        lowp.configure(model, "0", eval_scale=0.3)
    with pytest.raises(lowp.LowpError, match="no site 'zz'"):
        lowp.configure(model, "zz")


@pytest.mark.parametrize("seed", [45], ids=lambda s: f"seed{s}")
def test_paper_float_runs_an_fp32_linear_site_on_the_paper_k_by_n_matrix(seed):
    """fp32 with ``paper_float``: forward ``x @ W + b``, input gradient ``dEdz @ W.T``, weight gradient
    ``x.T @ dEdz`` and bias gradient ``ones @ dEdz`` on the contiguous K x N matrix ``W``, bit for bit
    (at this shape F.linear's N x K layout and column sums round differently)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = lowp.convert(nn.Sequential(nn.Linear(240, 1200)), "fp32")
    lowp.configure(model, "0", paper_float=True)
    x = torch.randn(20, 240, generator=gen).requires_grad_(True)
    g = torch.randn(20, 1200, generator=gen)
    z = model(x)
    z.backward(g)
    w = model[0].weight.detach().t().contiguous()  # K x N
    assert torch.equal(z, x.detach() @ w + model[0].bias)
    assert torch.equal(x.grad, g @ w.t())
    assert torch.equal(model[0].weight.grad.t(), x.detach().t() @ g)
    assert torch.equal(model[0].bias.grad, (torch.ones(1, 20) @ g).reshape(-1))
    with pytest.raises(lowp.LowpError, match="paper_float is for nn.Linear and square stride-1 nn.Conv2d"):
        lowp.configure(lowp.convert(nn.Sequential(nn.Conv2d(1, 2, 3, stride=2)), "fp32"), "0", paper_float=True)


@pytest.mark.parametrize("seed", [46], ids=lambda s: f"seed{s}")
def test_paper_float_runs_an_fp32_conv_site_as_im2col_matmuls_of_the_k_by_n_matrix(seed):
    """fp32 convolution with ``paper_float``: the im2col matmuls on the contiguous (C*k*k) x F matrix
    (forward, weight and bias gradients) and the input gradient as one im2col matmul of the flipped
    filters, bit for bit; and the gradients are the convolution's (close to F.conv2d's)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = lowp.convert(nn.Sequential(nn.Conv2d(16, 32, 5, padding=2)), "fp32")
    lowp.configure(model, "0", paper_float=True)
    conv = model[0]
    x = torch.randn(4, 16, 12, 12, generator=gen).requires_grad_(True)
    z = model(x)
    g = torch.randn(z.shape, generator=gen)
    z.backward(g)
    w = conv.weight.detach().reshape(32, -1).t().contiguous()
    rows = F.unfold(x.detach(), 5, padding=2).transpose(1, 2).reshape(-1, 16 * 25)
    assert torch.equal(z, (rows @ w + conv.bias).reshape(4, 12, 12, 32).permute(0, 3, 1, 2))
    dq = g.permute(0, 2, 3, 1).reshape(-1, 32)
    assert torch.equal(conv.weight.grad, (rows.t() @ dq).t().reshape(conv.weight.shape))
    assert torch.equal(conv.bias.grad, (torch.ones(1, dq.shape[0]) @ dq).reshape(-1))
    flipped = w.reshape(16, 5, 5, 32).flip(1, 2).permute(3, 1, 2, 0).reshape(32 * 25, 16)
    grows = F.unfold(g, 5, padding=2).transpose(1, 2).reshape(-1, 32 * 25)
    assert torch.equal(x.grad, (grows @ flipped).reshape(4, 12, 12, 16).permute(0, 3, 1, 2))
    xr = x.detach().clone().requires_grad_(True)
    F.conv2d(xr, conv.weight.detach(), conv.bias.detach(), padding=2).backward(g)
    torch.testing.assert_close(x.grad, xr.grad, rtol=1e-4, atol=1e-4)
