"""Maxout networks of the paper (and small variants), built from quantized layers.

Every network is a stack of stages ``Dropout -> QLinear/QConv2d -> Activation``
named ``L0, L1, ...``; the input is quantized once at group ``input.x``.
Hyper-parameters follow the paper's ``model.py``/``main.py`` (Courbariaux et al.
2014, after Goodfellow et al.'s maxout networks).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from .layers import Activation, Dropout, Flatten, QConv2d, QLayer, QLinear
from .qcore import QT, QuantState

PAPER_MAX_COL_NORM = 1.9365


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Learning rate and momentum schedule (linear ramps, as the paper's Trainer)."""

    lr_start: float = 0.05
    lr_final_ratio: float = 0.1
    lr_sat: float = 0.5  # fraction of the epochs after which the lr stays at its final value
    m_start: float = 0.5
    m_final: float = 0.7
    m_sat: float = 0.25
    batch_size: int = 100

    def lr(self, epoch: int, n_epochs: int, lr_start: float | None = None) -> float:
        l0 = self.lr_start if lr_start is None else lr_start
        sat = max(1.0, self.lr_sat * n_epochs)
        t = min(1.0, epoch / sat)
        return l0 + t * (l0 * self.lr_final_ratio - l0)

    def momentum(self, epoch: int, n_epochs: int) -> float:
        sat = max(1.0, self.m_sat * n_epochs)
        t = min(1.0, epoch / sat)
        return self.m_start + t * (self.m_final - self.m_start)


#: small nets see few examples (digits: 1200): more, larger steps than the paper's
SMALL = Schedule(lr_start=0.2, batch_size=50)


class QNet(nn.Module):
    """A sequential quantized network; ``forward`` takes float inputs and returns the output ``QT``."""

    def __init__(self, qs: QuantState, stages: list, input_shape: tuple, schedule: Schedule):
        super().__init__()
        self.qs = qs
        self.stages = nn.ModuleList(stages)
        self.input_shape = tuple(input_shape)
        self.schedule = schedule
        prev = None
        for m in self.stages:
            if isinstance(m, QLayer):
                if prev is not None:
                    m.grad_out_group = f"{prev}.dEdy"
                prev = m.name

    @property
    def layers(self) -> list[QLayer]:
        return [m for m in self.stages if isinstance(m, QLayer)]

    def set_generator(self, gen: torch.Generator) -> None:
        for m in self.stages:
            if isinstance(m, Dropout):
                m.gen = gen

    def reset_parameters(self, gen: torch.Generator) -> None:
        for layer in self.layers:
            layer.reset_parameters(gen)

    def forward(self, x: torch.Tensor) -> QT:
        x = x.reshape(x.shape[0], *self.input_shape)
        q = self.qs.quantize("input.x", x.to(torch.float64) if self.qs.spec.quantized else x)
        for m in self.stages:
            q = m(q)
        return q


def _mlp(qs, n_in, n_out, hidden, pieces, n_hidden, p_in=0.8, p_hid=0.5, col=PAPER_MAX_COL_NORM):
    stages, k = [], n_in
    for i in range(n_hidden):
        name = f"L{i}"
        stages += [
            Dropout(p_in if i == 0 else p_hid),
            QLinear(name, qs, k, hidden * pieces, scale=1.0 if i == 0 else 0.5, max_col_norm=col),
            Activation(name, qs, pieces=pieces),
        ]
        k = hidden
    name = f"L{n_hidden}"
    stages += [
        Dropout(p_in if n_hidden == 0 else p_hid),
        QLinear(name, qs, k, n_out, init="zeros", scale=1.0 if n_hidden == 0 else 0.5, max_col_norm=col),
        Activation(name, qs, softmax=True),
    ]
    return stages


def _conv(name, qs, in_ch, units, pieces, kernel, pad, pool, p, scale, col, lr_scale=1.0):
    return [
        Dropout(p),
        QConv2d(name, qs, in_ch, units * pieces, kernel, padding=pad, fan_out_div=pieces * pool[0] * pool[0],
                scale=scale, max_col_norm=col, lr_scale=lr_scale),
        Activation(name, qs, pieces=pieces, pool=pool),
    ]


def _head(qs, start, n_in, n_out, hidden=None, pieces=5):
    stages, i = [Flatten()], start
    k = n_in
    if hidden:
        stages += [Dropout(0.5), QLinear(f"L{i}", qs, k, hidden * pieces, scale=0.5, max_col_norm=PAPER_MAX_COL_NORM),
                   Activation(f"L{i}", qs, pieces=pieces)]
        i, k = i + 1, hidden
    stages += [Dropout(0.5), QLinear(f"L{i}", qs, k, n_out, init="zeros", scale=0.5, max_col_norm=PAPER_MAX_COL_NORM),
               Activation(f"L{i}", qs, softmax=True)]
    return stages


def _out_size(n, k, pad, pool):
    """Side of a conv + max-pool layer's output; a ValueError (not torch's traceback mid-forward)
    when the image is too small for the layer."""
    c = n + 2 * pad - k + 1
    out = -(-(c - pool[0]) // pool[1]) + 1  # ceil mode, as cuda-convnet's MaxPool
    if c < 1 or out < 1:
        raise _TooSmall(f"{n}x{n} input to a {k}x{k} conv (padding {pad}) and {pool[0]}x{pool[0]} pool")
    return out


class _TooSmall(ValueError):
    pass


NETS = {}


def register(name, help_text):
    def deco(fn):
        NETS[name] = (fn, help_text)
        return fn
    return deco


@register("mlp-small", "maxout MLP, 2 x (64 units x 5 pieces), for digits and tests")
def mlp_small(qs, input_shape, n_classes):
    n_in = int(torch.tensor(input_shape).prod())
    return QNet(qs, _mlp(qs, n_in, n_classes, 64, 5, 2), (n_in,), SMALL)


@register("pi-mlp", "the paper's permutation-invariant maxout MLP: 2 x (240 units x 5 pieces)")
def pi_mlp(qs, input_shape, n_classes):
    n_in = int(torch.tensor(input_shape).prod())
    return QNet(qs, _mlp(qs, n_in, n_classes, 240, 5, 2), (n_in,), Schedule())


@register("conv-small", "2 conv maxout layers (16 x 2 pieces, 3x3, pool 2) + softmax, for digits and tests")
def conv_small(qs, input_shape, n_classes):
    c, h, w = _image_shape(input_shape)
    st = _conv("L0", qs, c, 16, 2, 3, 1, (2, 2), 0.8, 1.0, 0.9)
    h1 = _out_size(h, 3, 1, (2, 2))
    st += _conv("L1", qs, 16, 16, 2, 3, 1, (2, 2), 0.5, 0.5, PAPER_MAX_COL_NORM)
    h2 = _out_size(h1, 3, 1, (2, 2))
    st += _head(qs, 2, 16 * h2 * h2, n_classes)
    return QNet(qs, _fix_ceil(st), (c, h, w), SMALL)


@register("mnist-conv", "the paper's MNIST conv maxout net (48x2 8x8, 48x2 8x8, 24x4 5x5, softmax)")
def mnist_conv(qs, input_shape, n_classes):
    c, h, w = _image_shape(input_shape)
    st = _conv("L0", qs, c, 48, 2, 8, 0, (4, 2), 0.8, 1.0, 0.9)
    h = _out_size(h, 8, 0, (4, 2))
    st += _conv("L1", qs, 48, 48, 2, 8, 3, (4, 2), 0.5, 0.5, PAPER_MAX_COL_NORM)
    h = _out_size(h, 8, 3, (4, 2))
    st += _conv("L2", qs, 48, 24, 4, 5, 3, (2, 2), 0.5, 0.5, PAPER_MAX_COL_NORM)
    h = _out_size(h, 5, 3, (2, 2))
    st += _head(qs, 3, 24 * h * h, n_classes)
    return QNet(qs, _fix_ceil(st), (c, input_shape[-2], input_shape[-1]), Schedule(lr_start=0.02, m_sat=0.25))


@register("cifar-conv", "the paper's CIFAR-10/SVHN conv maxout net (3 x 5x5 conv maxout, 400x5 maxout, softmax)")
def cifar_conv(qs, input_shape, n_classes):
    c, h, w = _image_shape(input_shape)
    st = _conv("L0", qs, c, 64, 2, 5, 2, (3, 2), 0.8, 1.0, 0.9, lr_scale=0.2)
    h = _out_size(h, 5, 2, (3, 2))
    st += _conv("L1", qs, 64, 128, 2, 5, 2, (3, 2), 0.5, 0.5, PAPER_MAX_COL_NORM, lr_scale=0.2)
    h = _out_size(h, 5, 2, (3, 2))
    st += _conv("L2", qs, 128, 128, 2, 5, 2, (3, 2), 0.5, 0.5, PAPER_MAX_COL_NORM, lr_scale=0.2)
    h = _out_size(h, 5, 2, (3, 2))
    st += _head(qs, 3, 128 * h * h, n_classes, hidden=400)
    return QNet(qs, _fix_ceil(st), (c, input_shape[-2], input_shape[-1]),
                Schedule(lr_start=0.02, m_sat=0.5))


def _image_shape(input_shape):
    if len(input_shape) == 3:
        return tuple(input_shape)
    if len(input_shape) == 2:
        return (1, *input_shape)
    n = int(input_shape[0])
    s = int(round(n ** 0.5))
    if s * s != n:
        raise ValueError(f"a conv net needs image inputs; got {n} features")
    return (1, s, s)


def _fix_ceil(stages):
    for m in stages:
        if isinstance(m, Activation) and m.pool is not None:
            m.pool = (m.pool[0], m.pool[1], True)
    return stages


def build(name: str, qs: QuantState, input_shape: tuple, n_classes: int) -> QNet:
    if name not in NETS:
        raise KeyError(name)
    try:
        return NETS[name][0](qs, tuple(input_shape), n_classes)
    except _TooSmall as e:
        c, h, w = _image_shape(input_shape)
        raise ValueError(f"net {name} cannot take the data set's {h}x{w} images ({e}): accepted images of at least "
                         f"{_smallest(name, qs, c, n_classes)} pixels a side (choose another --net, e.g. conv-small or "
                         f"mlp-small)") from None


def _smallest(name: str, qs: QuantState, c: int, n_classes: int) -> int:
    """The smallest square image ``name`` takes (the chain of conv/pool sizes, tried upward; only
    on the way to an error, so what the trial builds leave in ``qs`` does not matter)."""
    for side in range(1, 1025):
        try:
            NETS[name][0](qs, (c, side, side), n_classes)
            return side
        except _TooSmall:
            continue
    raise ValueError(f"net {name} takes no image up to 1024 pixels a side")
