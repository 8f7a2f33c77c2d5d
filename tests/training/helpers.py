"""Shared builders for the training tests (tiny nets on random data, one generator each)."""

import importlib.util
from pathlib import Path

import torch
from fewbits.training.nets import build
from fewbits.sim.run import RunSpec


def make_net(net, prop, update, seed, input_shape=(1, 8, 8), paper_bits=False):
    n = build(net, RunSpec.parse(prop, update, paper_bits), input_shape, 10)
    qs = n.qs
    qs.controller.update_every = 1000
    gen = torch.Generator().manual_seed(seed)
    n.set_generator(gen)
    n.reset_parameters(gen)
    return n, qs, gen


def batch(gen, n=16, shape=(1, 8, 8)):
    x = torch.rand(n, *shape, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    return x, y


def step(n, qs, x, y, lr=0.1, momentum=0.5, update=True):
    """One training step of a built-in network (the paper's loss); its output probabilities."""
    p = n.forward_backward(x, y)
    if update:
        n.opt.lr, n.opt.momentum = lr, momentum
        n.opt.step()
    return p


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name):
    """The model function ``name`` of ``examples/<name>.py`` (a user's file: loaded by path)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return getattr(mod, name)
