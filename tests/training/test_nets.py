"""The networks build with the paper's shapes and train one step (unquantized, tiny batch)."""

import pytest
import torch
from fewbits.sim.capture import replay
from fewbits.training.trainer import TrainConfig, record

from .helpers import make_net, step


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
