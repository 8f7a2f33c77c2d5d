"""Maxout networks of the paper (and small variants), defined on ``fewbits.training.lowp``.

Every network is a plain ``nn.Sequential``: the input quantized at the point ``input.x``,
then per layer ``L<i>`` the paper's dropout, an ``nn.Linear``/``nn.Conv2d`` site, max pooling
and maxout, and the point ``L<i>.y`` (the top: the paper's softmax output), converted by
``lowp`` and each site configured as the paper's layer (``BuiltinNet``); there is no second
quantized-layer implementation.  Hyper-parameters follow the paper's ``model.py``/``main.py``
(Courbariaux et al. 2014, after Goodfellow et al.'s maxout networks).
"""

from __future__ import annotations

import collections
import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from fewbits.sim.run import RunSpec

from . import lowp
from .lowpnet import ConvertedNet

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


def _mlp_layers(n_in, n_out, hidden, pieces, n_hidden, p_in=0.8, p_hid=0.5, col=PAPER_MAX_COL_NORM):
    layers, k = [], n_in
    for i in range(n_hidden):
        layers.append(Layer(p_in if i == 0 else p_hid, k, hidden * pieces, pieces, scale=1.0 if i == 0 else 0.5,
                            col=col))
        k = hidden
    layers.append(Layer(p_in if n_hidden == 0 else p_hid, k, n_out, init="zeros",
                        scale=1.0 if n_hidden == 0 else 0.5, col=col, softmax=True))
    return layers


def _conv(in_ch, units, pieces, kernel, pad, pool, p, scale, col, lr_scale=1.0):
    return Layer(p, in_ch, units * pieces, pieces, kernel, pad, pool, scale, col, lr_scale,
                 fan_out_div=pieces * pool[0] * pool[0])


def _head(n_in, n_out, hidden=None, pieces=5):
    layers, k = [], n_in
    if hidden:
        layers.append(Layer(0.5, k, hidden * pieces, pieces, scale=0.5, flatten=True))
        k = hidden
    layers.append(Layer(0.5, k, n_out, init="zeros", scale=0.5, softmax=True, flatten=not hidden))
    return layers


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
def mlp_small(spec, input_shape, n_classes):
    n_in = int(torch.tensor(input_shape).prod())
    return BuiltinNet(spec, (n_in,), n_classes, _mlp_layers(n_in, n_classes, 64, 5, 2), SMALL)


@register("pi-mlp", "the paper's permutation-invariant maxout MLP: 2 x (240 units x 5 pieces)")
def pi_mlp(spec, input_shape, n_classes):
    n_in = int(torch.tensor(input_shape).prod())
    return BuiltinNet(spec, (n_in,), n_classes, _mlp_layers(n_in, n_classes, 240, 5, 2), Schedule())


@register("conv-small", "2 conv maxout layers (16 x 2 pieces, 3x3, pool 2) + softmax, for digits and tests")
def conv_small(spec, input_shape, n_classes):
    c, h, w = _image_shape(input_shape)
    layers = [_conv(c, 16, 2, 3, 1, (2, 2), 0.8, 1.0, 0.9)]
    h1 = _out_size(h, 3, 1, (2, 2))
    layers.append(_conv(16, 16, 2, 3, 1, (2, 2), 0.5, 0.5, PAPER_MAX_COL_NORM))
    h2 = _out_size(h1, 3, 1, (2, 2))
    return BuiltinNet(spec, (c, h, w), n_classes, layers + _head(16 * h2 * h2, n_classes), SMALL)


@register("mnist-conv", "the paper's MNIST conv maxout net (48x2 8x8, 48x2 8x8, 24x4 5x5, softmax)")
def mnist_conv(spec, input_shape, n_classes):
    c, h, w = _image_shape(input_shape)
    layers = [_conv(c, 48, 2, 8, 0, (4, 2), 0.8, 1.0, 0.9)]
    h = _out_size(h, 8, 0, (4, 2))
    layers.append(_conv(48, 48, 2, 8, 3, (4, 2), 0.5, 0.5, PAPER_MAX_COL_NORM))
    h = _out_size(h, 8, 3, (4, 2))
    layers.append(_conv(48, 24, 4, 5, 3, (2, 2), 0.5, 0.5, PAPER_MAX_COL_NORM))
    h = _out_size(h, 5, 3, (2, 2))
    return BuiltinNet(spec, (c, input_shape[-2], input_shape[-1]), n_classes, layers + _head(24 * h * h, n_classes),
                      Schedule(lr_start=0.02, m_sat=0.25))


@register("cifar-conv", "the paper's CIFAR-10/SVHN conv maxout net (3 x 5x5 conv maxout, 400x5 maxout, softmax)")
def cifar_conv(spec, input_shape, n_classes):
    c, h, w = _image_shape(input_shape)
    layers = [_conv(c, 64, 2, 5, 2, (3, 2), 0.8, 1.0, 0.9, lr_scale=0.2)]
    h = _out_size(h, 5, 2, (3, 2))
    layers.append(_conv(64, 128, 2, 5, 2, (3, 2), 0.5, 0.5, PAPER_MAX_COL_NORM, lr_scale=0.2))
    h = _out_size(h, 5, 2, (3, 2))
    layers.append(_conv(128, 128, 2, 5, 2, (3, 2), 0.5, 0.5, PAPER_MAX_COL_NORM, lr_scale=0.2))
    h = _out_size(h, 5, 2, (3, 2))
    return BuiltinNet(spec, (c, input_shape[-2], input_shape[-1]), n_classes,
                      layers + _head(128 * h * h, n_classes, hidden=400), Schedule(lr_start=0.02, m_sat=0.5))


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


def build(name: str, spec: RunSpec, input_shape: tuple, n_classes: int):
    """The built-in network ``name`` at ``spec``'s formats for ``input_shape`` and ``n_classes``
    (its ``qs`` holds its formats and range state)."""
    if name not in NETS:
        raise KeyError(name)
    try:
        return NETS[name][0](spec, tuple(input_shape), n_classes)
    except _TooSmall as e:
        c, h, w = _image_shape(input_shape)
        raise ValueError(f"net {name} cannot take the data set's {h}x{w} images ({e}): accepted images of at least "
                         f"{_smallest(name, spec, c, n_classes)} pixels a side (choose another --net, e.g. conv-small or "
                         f"mlp-small)") from None


def _smallest(name: str, spec: RunSpec, c: int, n_classes: int) -> int:
    """The smallest square image ``name`` takes (the chain of conv/pool sizes, tried upward; only
    on the way to an error)."""
    for side in range(1, 1025):
        try:
            NETS[name][0](spec, (c, side, side), n_classes)
            return side
        except _TooSmall:
            continue
    raise ValueError(f"net {name} takes no image up to 1024 pixels a side")


# ---- the paper's networks on ``fewbits.training.lowp`` (one quantized-layer implementation) ------------
@dataclasses.dataclass(frozen=True)
class Layer:
    """One stage ``L<i>`` of a paper network: dropout keeping ``p``, a fully connected layer
    (``kernel`` 0; ``k_in`` inputs) or a stride-1 convolution (``k_in`` channels, ``kernel`` x
    ``kernel``, zero padding ``pad``) with ``n_out`` outputs (units x ``pieces``), then max pooling
    (``pool``: size, stride; ceil mode, as cuda-convnet) and maxout over ``pieces``, or the softmax
    output.  ``scale``: the weights' factor at inference (the dropout probability of its input),
    ``col``: the max column norm, ``lr_scale``: the learning-rate factor, ``init``: glorot or
    zeros (glorot's fan-out divided by ``fan_out_div``), ``flatten``: flatten its input first."""

    p: float
    k_in: int
    n_out: int
    pieces: int = 1
    kernel: int = 0
    pad: int = 0
    pool: tuple | None = None
    scale: float = 1.0
    col: float | None = PAPER_MAX_COL_NORM
    lr_scale: float = 1.0
    init: str = "glorot"
    fan_out_div: float = 1
    softmax: bool = False
    flatten: bool = False

    @property
    def k(self) -> int:
        """The forward matmul's K (a convolution's C x kh x kw)."""
        return self.k_in * max(1, self.kernel) ** 2


class PaperDropout(nn.Module):
    """The paper's dropout: keep each input with probability ``p`` while training (a 0/1 mask, no
    rescaling: exact on any grid), drawn from the trainer's generator."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.gen: torch.Generator | None = None

    def forward(self, x):
        if not self.training or self.p >= 1.0:
            return x
        mask = torch.rand(x.shape, generator=self.gen, dtype=torch.float64) < self.p
        return x * mask.to(x.dtype)


class Maxout(nn.Module):
    """Max pooling (``pool``: size, stride; ceil mode), then the max over ``pieces`` consecutive
    channels (units); exact, and its gradient goes to one winner."""

    def __init__(self, pieces: int, pool: tuple | None = None):
        super().__init__()
        self.pieces, self.pool = pieces, pool

    def forward(self, z):
        if self.pool is not None:
            z = F.max_pool2d(z, self.pool[0], self.pool[1], ceil_mode=True)
        if self.pieces > 1:
            shape = list(z.shape)
            z = z.reshape(shape[0], shape[1] // self.pieces, self.pieces, *shape[2:]).max(dim=2).values
        return z


class BuiltinNet(ConvertedNet):
    """A paper network of ``layers`` as a plain ``nn.Sequential`` converted by ``lowp``: the input
    quantized at ``input.x``, every layer ``L<i>`` a site whose input is the point below
    (``input.x`` or ``L<i-1>.y``, quantized before the dropout, as the paper's code), whose input
    gradient goes to ``L<i-1>.dEdy``, then its activation quantized at ``L<i>.y``; the top the
    paper's softmax output.  Trained by ``lowp.SGD`` with the paper's loss gradient."""

    def __init__(self, spec: RunSpec, input_shape: tuple, n_classes: int, layers: list, schedule: Schedule):
        self.input_shape, self.n_classes, self.layers, self.schedule = tuple(input_shape), int(n_classes), layers, schedule
        mods = [("input", lowp.Point("input.x"))]
        for i, layer in enumerate(layers):
            name = f"L{i}"
            if layer.flatten:
                mods.append((f"flat{i}", nn.Flatten()))
            mods.append((f"drop{i}", PaperDropout(layer.p)))
            if layer.kernel:
                site = nn.utils.skip_init(nn.Conv2d, layer.k_in, layer.n_out, layer.kernel, padding=layer.pad)
            else:
                site = nn.utils.skip_init(nn.Linear, layer.k_in, layer.n_out)
            mods.append((name, site))
            if layer.softmax:
                mods.append(("out", lowp.paper_softmax(name)))
            else:
                mods += [(f"act{i}", Maxout(layer.pieces, layer.pool)), (f"y{i}", lowp.Point(f"{name}.y"))]
        model = lowp.convert(nn.Sequential(collections.OrderedDict(mods)), spec=spec)
        for i, layer in enumerate(layers):
            lowp.configure(model, f"L{i}", input_group=f"L{i - 1}.y" if i else "input.x",
                           grad_group=f"L{i - 1}.dEdy" if i else None, max_norm=layer.col,
                           lr_scale=layer.lr_scale, eval_scale=layer.scale, paper_float=True)
        self._attach(model, lowp.SGD(model, schedule.lr_start, schedule.m_start))
        self.dropouts = [m for m in model if isinstance(m, PaperDropout)]

    @property
    def site_names(self) -> list[str]:
        return [f"L{i}" for i in range(len(self.layers))]

    @property
    def shapes(self) -> dict:
        """Every layer's forward shape ``{L<i>: (K, N)}``."""
        return {f"L{i}": (layer.k, layer.n_out) for i, layer in enumerate(self.layers)}

    def sites(self) -> list:
        return [self.model.get_submodule(s) for s in self.site_names]

    def set_generator(self, gen: torch.Generator) -> None:
        for m in self.dropouts:
            m.gen = gen

    @torch.no_grad()
    def reset_parameters(self, gen: torch.Generator) -> None:
        """Glorot-uniform weights drawn as the paper's K x N matrices, layer after layer, from ``gen``;
        zero biases and momentum."""
        for layer, m in zip(self.layers, self.sites()):
            m.bias.zero_()
            if layer.init == "zeros":
                m.weight.zero_()
                continue
            fo = layer.n_out * layer.kernel * layer.kernel / layer.fan_out_div if layer.kernel else layer.n_out
            bound = math.sqrt(6.0 / (layer.k + fo))
            w = torch.rand(layer.k, layer.n_out, generator=gen, dtype=torch.float64) * (2 * bound) - bound
            m.weight.copy_(w.t().reshape(m.weight.shape).to(m.weight.dtype))
        self.opt.buf.clear()

    def _batch(self, x):
        return x.reshape(x.shape[0], *self.input_shape)

    def forward_backward(self, x, y) -> torch.Tensor:
        """The quantized softmax output ``p`` of ``x`` (detached) and the backward pass of the
        paper's loss gradient ``(p - onehot(y)) / n_classes``."""
        p = self.model(self._batch(x))
        pd = p.detach()
        p.backward((pd - F.one_hot(y, self.n_classes).to(pd.dtype)) / self.n_classes)
        return pd

    def train_batch(self, x, y, lr: float, momentum: float) -> int:
        """One step of the paper's loss; the number of misclassified examples."""
        out = {}
        self._step(lambda: out.setdefault("p", self.forward_backward(x, y)), lr, momentum)
        return int((out["p"].argmax(dim=1) != y).sum())

    def predict(self, x) -> torch.Tensor:
        """The quantized softmax output."""
        return self.model(self._batch(x))
