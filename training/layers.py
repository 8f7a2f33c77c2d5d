"""Quantized layers: fully connected, convolution (im2col), maxout, max pooling, softmax output.

Each layer quantizes at the paper's points (``w``, ``b``, ``z``, ``y`` forward;
``dEdy``, ``dEdz``, input gradient, ``dEdw``, ``dEdb`` backward) through its
network's ``QuantState``; all three matmuls of a layer (forward ``x@W``,
input gradient ``dEdz@W.T``, weight gradient ``x.T@dEdz``) are MAC-contract
calls.  Values travel between layers as ``QT`` (values + codes + format); the
``values`` tensors carry the autograd graph.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .qcore import QT, QuantState, ones_qt as _ones_qt, scaled


class _MatmulLayerFn(torch.autograd.Function):
    """z = requant(x @ W + b); backward: dEdx, dEdW, dEdb, each a MAC-contract matmul."""

    @staticmethod
    def forward(ctx, x, w, b, layer, box):
        xq, wq, bq = box["x"], box["w"], box["b"]
        xr = layer.to_rows(xq)
        zq = layer.qs.matmul(f"{layer.name}:forward", xr, wq, f"{layer.name}.z", bq)
        box["z"] = zq
        # keep only the inputs on ctx: holding the output (box["z"]) would make a reference
        # cycle through the autograd graph that is never freed (one graph leaked per step);
        # the rows (im2col patches of a convolution) are kept for the weight gradient
        ctx.layer, ctx.xr, ctx.wq, ctx.shape = layer, xr, wq, getattr(layer, "_shape", None)
        return layer.from_rows(zq, xq).values

    @staticmethod
    def backward(ctx, dEdz):
        layer = ctx.layer
        qs = layer.qs
        g = layer.grad_rows(dEdz)
        dq = qs.encode_on_grid(g, qs.fmt(f"{layer.name}.dEdz"))
        layer._shape = ctx.shape  # this call's image shape, for the input gradient
        dw = qs.matmul(f"{layer.name}:weight_grad", ctx.xr.t(), dq, f"{layer.name}.dEdw")
        db = qs.matmul(f"{layer.name}:bias_grad", _ones_qt(dq.values.shape[0], dq), dq, f"{layer.name}.dEdb")
        dx = None
        if ctx.needs_input_grad[0]:
            dx = layer.input_grad(dq, ctx.wq)
        dwv = dw.values.to(layer.weight.dtype)
        dbv = db.values.reshape(-1).to(layer.bias.dtype)
        return dx, dwv, dbv, None, None


class QLayer(nn.Module):
    """Base of layers with parameters ``weight`` (K x N matrix) and ``bias`` (N)."""

    def __init__(self, name: str, qs: QuantState, k: int, n: int, scale: float = 1.0,
                 max_col_norm: float | None = None, lr_scale: float = 1.0):
        super().__init__()
        self.name, self.qs, self.k, self.n = name, qs, k, n
        self.scale, self.max_col_norm, self.lr_scale = scale, max_col_norm, lr_scale
        dtype = torch.float64 if qs.spec.quantized or qs.spec.update is not None else torch.float32
        self.weight = nn.Parameter(torch.zeros(k, n, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(n, dtype=dtype))
        self.register_buffer("update_w", torch.zeros(k, n, dtype=dtype))
        self.register_buffer("update_b", torch.zeros(n, dtype=dtype))
        #: the group the input gradient is requantized to (the layer below's ``dEdy``)
        self.grad_out_group = f"{name}.dEdx"

    # layout hooks (identity for fully connected layers)
    def to_rows(self, xq: QT) -> QT:
        return xq

    def from_rows(self, zq: QT, xq: QT) -> QT:
        return zq

    def grad_rows(self, g: torch.Tensor) -> torch.Tensor:
        return g

    def input_grad(self, dq: QT, wq: QT) -> torch.Tensor:
        return self.qs.matmul(f"{self.name}:input_grad", dq, wq.t(), self.grad_out_group).values

    def forward(self, xq: QT) -> QT:
        qs = self.qs
        wq = qs.quantize(f"{self.name}.w", self.weight.detach())
        bq = qs.quantize(f"{self.name}.b", self.bias.detach())
        if not self.training:
            wq, bq = scaled(wq, self.scale), scaled(bq, self.scale)
        box = {"x": xq, "w": wq, "b": bq}
        z = _MatmulLayerFn.apply(xq.values, self.weight, self.bias, self, box)
        zq = self.from_rows(box["z"], xq)
        return zq.with_values(z)

    def reset_parameters(self, gen: torch.Generator) -> None:
        raise NotImplementedError


class QLinear(QLayer):
    """Fully connected ``z = x @ W + b`` (``W`` is inputs x outputs, as in the paper's code)."""

    def __init__(self, name, qs, n_in, n_out, init="glorot", **kw):
        super().__init__(name, qs, n_in, n_out, **kw)
        self.init = init

    def reset_parameters(self, gen, fan_out=None):
        with torch.no_grad():
            self.bias.zero_()
            self.update_w.zero_()
            self.update_b.zero_()
            if self.init == "zeros":
                self.weight.zero_()
            else:
                fo = self.n if fan_out is None else fan_out
                bound = math.sqrt(6.0 / (self.k + fo))
                w = torch.rand(self.k, self.n, generator=gen, dtype=torch.float64) * (2 * bound) - bound
                self.weight.copy_(w.to(self.weight.dtype))


class QConv2d(QLayer):
    """Stride-1 convolution as an im2col matmul, so it follows the MAC contract too.

    ``W`` is stored as (C*kh*kw) x F: its column norms are the filter norms.
    The input gradient is the full correlation of ``dEdz`` with the flipped
    filters, also one im2col matmul (a single requantization per element).
    """

    def __init__(self, name, qs, in_ch, out_ch, kernel, padding=0, fan_out_div=1, **kw):
        super().__init__(name, qs, in_ch * kernel * kernel, out_ch, **kw)
        self.in_ch, self.out_ch, self.kernel, self.padding = in_ch, out_ch, kernel, padding
        self.fan_out_div = fan_out_div
        self._shape = None

    def reset_parameters(self, gen):
        with torch.no_grad():
            self.bias.zero_()
            self.update_w.zero_()
            self.update_b.zero_()
            fan_in = self.k
            fan_out = self.out_ch * self.kernel * self.kernel / self.fan_out_div
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            w = torch.rand(self.k, self.n, generator=gen, dtype=torch.float64) * (2 * bound) - bound
            self.weight.copy_(w.to(self.weight.dtype))

    def to_rows(self, xq: QT) -> QT:
        if xq.values.dim() == 2:
            return xq
        B, C, H, W = xq.values.shape
        k, p = self.kernel, self.padding
        self._shape = (B, C, H, W, H + 2 * p - k + 1, W + 2 * p - k + 1)
        return _im2col(QT(xq.values.detach(), None, xq.fmt), k, p)

    def _img(self, t):
        B, C, H, W, Ho, Wo = self._shape
        return t.reshape(B, Ho, Wo, self.out_ch).permute(0, 3, 1, 2).contiguous()

    def from_rows(self, zq: QT, xq: QT) -> QT:
        return QT(self._img(zq.values), None, zq.fmt)

    def grad_rows(self, g):
        return g.permute(0, 2, 3, 1).reshape(-1, self.out_ch)

    def input_grad(self, dq: QT, wq: QT) -> torch.Tensor:
        B, C, H, W, Ho, Wo = self._shape
        k, p = self.kernel, self.padding
        dimg = QT(self._img(dq.values), None, dq.fmt)
        # full correlation with the flipped filters: pad k-1-p, kernel k, channels F -> C
        rows = _im2col(dimg, k, k - 1 - p)

        def flip(t):
            t = t.reshape(C, k, k, self.out_ch).flip(1, 2)
            return t.permute(3, 1, 2, 0).reshape(self.out_ch * k * k, C)

        wf = QT(flip(wq.values), None, wq.fmt)
        dx = self.qs.matmul(f"{self.name}:input_grad", rows, wf, self.grad_out_group)
        return dx.values.reshape(B, H, W, C).permute(0, 3, 1, 2).contiguous()


def _im2col(q: QT, k: int, padding: int) -> QT:
    """Rows of (B*L) x (C*k*k) patches of an image QT (zero padding is code 0 in every format)."""
    C = q.values.shape[1]
    u = F.unfold(q.values, k, padding=padding)  # B, C*k*k, L
    return QT(u.transpose(1, 2).reshape(-1, C * k * k), None, q.fmt)


class _ActFn(torch.autograd.Function):
    """Forward: exact pre-activation (pooling, maxout), then quantize ``y``.

    Backward: quantize ``dEdy`` (top of the net) or check it is on its grid,
    send it back through the exact pre-activation (winner-takes-all: the
    pieces/pool indices, never split between ties), quantize at ``dEdz``.
    """

    @staticmethod
    def forward(ctx, z, act, box):
        with torch.enable_grad():
            zz = z.detach().requires_grad_(True)
            m = act.pre(zz)
        ctx.act, ctx.zz, ctx.m = act, zz, m
        box["y"] = act.qs.quantize(f"{act.name}.y", act.post(m.detach()))
        return box["y"].values

    @staticmethod
    def backward(ctx, g):
        act, qs = ctx.act, ctx.act.qs
        if act.quantize_dEdy:
            g = qs.quantize(f"{act.name}.dEdy", g).values
        elif qs.point_hooks:
            gq = qs.encode_on_grid(g, qs.fmt(f"{act.name}.dEdy"))
            for h in qs.point_hooks:
                h(f"{act.name}.dEdy", gq)
        (dz,) = torch.autograd.grad(ctx.m, ctx.zz, g)
        return qs.quantize(f"{act.name}.dEdz", dz).values, None, None


class Activation(nn.Module):
    """Activation of layer ``name``: optional max pooling, maxout over ``pieces``, or softmax."""

    def __init__(self, name: str, qs: QuantState, pieces: int = 1, pool: tuple | None = None,
                 softmax: bool = False):
        super().__init__()
        self.name, self.qs, self.pieces, self.pool, self.softmax = name, qs, pieces, pool, softmax
        #: the top of the network quantizes the incoming gradient at ``dEdy``;
        #: below, the layer above's input-gradient MAC already output ``dEdy`` codes
        self.quantize_dEdy = softmax

    def pre(self, z: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            z = F.max_pool2d(z, self.pool[0], self.pool[1], ceil_mode=len(self.pool) > 2 and self.pool[2])
        if self.pieces > 1:
            shape = list(z.shape)
            units = shape[1] // self.pieces
            z = z.reshape(shape[0], units, self.pieces, *shape[2:]).max(dim=2).values
        return z

    def post(self, m: torch.Tensor) -> torch.Tensor:
        if self.softmax:
            # the paper's combined softmax + NLL gradient: backward treats dE/dy as dE/dz
            return torch.softmax(m.to(torch.float64), dim=1)
        return m

    def forward(self, zq: QT) -> QT:
        box = {}
        y = _ActFn.apply(zq.values, self, box)
        return box["y"].with_values(y)


class Flatten(nn.Module):
    def forward(self, q: QT) -> QT:
        B = q.values.shape[0]
        return QT(q.values.reshape(B, -1), None, q.fmt)


class Dropout(nn.Module):
    """Keep each input with probability ``p`` while training (a 0/1 mask: exact on any grid)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.gen: torch.Generator | None = None

    def forward(self, q: QT) -> QT:
        if not self.training or self.p >= 1.0:
            return q
        mask = torch.rand(q.values.shape, generator=self.gen, dtype=torch.float64) < self.p
        return QT(q.values * mask.to(q.values.dtype), None, q.fmt)
