"""The autograd functions of ``fewbits.training.lowp``: one MAC-contract site's three matmuls.

A *site* is one matmul-type operation of a user's model (an ``nn.Linear``, an
``nn.Conv1d``/``nn.Conv2d``, or an ``F.linear``/``F.conv2d``/``torch.matmul``
call inside a ``forward()``), named by its module path.  Its quantization
points (each its own range group for dynamic fixed point) are

=============  ==============================================================
``site.x``     the input, quantized where it enters the matmul (the paper's
               ``y`` of whatever float elementwise op produced it)
``site.w``     the second operand (the weights of a layer)
``site.b``     the bias
``site.z``     the forward MAC's output
``site.dEdz``  the incoming gradient, quantized where it enters the backward MACs
``site.dEdx``  the input-gradient MAC's output (the paper's ``dEdy`` below)
``site.dEdw``  the weight-gradient MAC's output
``site.dEdb``  the bias-gradient MAC's output (a ones-row matmul, as the built-in layers)
=============  ==============================================================

Forward ``x @ W``, input gradient ``dEdz @ W.T`` and weight gradient
``x.T @ dEdz`` all go through ``QuantState.matmul`` (exact fast paths, else
``mac_reference``).  A convolution is an im2col matmul; its input gradient is
one im2col matmul too (the full correlation of the stride-dilated ``dEdz`` with
the flipped filters), so every element of ``dEdx`` is requantized once, as the
hardware would, never a float sum of requantized pieces.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .layers import _ones_qt
from .qcore import QT, QuantState


def _quantize_operands(qs: QuantState, site: str, x, w, b):
    xq = qs.quantize(f"{site}.x", x.detach())
    wq = qs.quantize(f"{site}.w", w.detach())
    bq = None if b is None else qs.quantize(f"{site}.b", b.detach())
    return xq, wq, bq


def _grads(qs: QuantState, site: str, rows: QT, dq: QT, want_w: bool, want_b: bool):
    """The weight-gradient (``rows.T @ dq``) and bias-gradient (``1 @ dq``) MACs of a site."""
    dw = qs.matmul(f"{site}:weight_grad", rows.t(), dq, f"{site}.dEdw").values if want_w else None
    db = None
    if want_b:
        db = qs.matmul(f"{site}:bias_grad", _ones_qt(dq.values.shape[0], dq), dq, f"{site}.dEdb").values
        db = db.reshape(-1)
    return dw, db


class MatmulFn(torch.autograd.Function):
    """``z = requant(x @ w + b)`` for a 2-D ``x`` (M x K), ``w`` (K x N), optional ``b`` (N)."""

    @staticmethod
    def forward(ctx, x, w, b, qs, site):
        xq, wq, bq = _quantize_operands(qs, site, x, w, b)
        z = qs.matmul(f"{site}:forward", xq, wq, f"{site}.z", bq)
        ctx.qs, ctx.site, ctx.xq, ctx.wq = qs, site, xq, wq
        ctx.dtypes = (x.dtype, w.dtype, None if b is None else b.dtype)
        return z.values.to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        qs, site = ctx.qs, ctx.site
        dq = qs.quantize(f"{site}.dEdz", g.detach())
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dx = qs.matmul(f"{site}:input_grad", dq, ctx.wq.t(), f"{site}.dEdx").values if need_x else None
        dw, db = _grads(qs, site, ctx.xq, dq, need_w, need_b)
        cast = [None if t is None else t.to(d) for t, d in zip((dx, dw, db), ctx.dtypes)]
        return (*cast, None, None)


def conv_geometry(x_shape, w_shape, stride, padding, dilation):
    """Output size (Ho, Wo) of a 2-D convolution with per-dimension tuples."""
    H, W = x_shape[-2:]
    kh, kw = w_shape[-2:]
    ho = (H + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (W + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return ho, wo


class Conv2dFn(torch.autograd.Function):
    """A 2-D convolution (groups 1, zero padding, any stride/dilation) as im2col MAC-contract matmuls.

    ``w`` is the layer's ``F x C x kh x kw`` weight; the MAC's ``B`` operand is
    its ``(C*kh*kw) x F`` matrix (the column norms are the filter norms).
    """

    @staticmethod
    def forward(ctx, x, w, b, qs, site, stride, padding, dilation):
        xq, wq, bq = _quantize_operands(qs, site, x, w, b)
        B = x.shape[0]
        Fo, k = w.shape[0], tuple(w.shape[-2:])
        ho, wo = conv_geometry(x.shape, w.shape, stride, padding, dilation)
        rows = F.unfold(xq.values, k, dilation=dilation, padding=padding, stride=stride)
        rows = QT(rows.transpose(1, 2).reshape(B * ho * wo, -1), None, xq.fmt)
        wm = QT(wq.values.reshape(Fo, -1).t(), None, wq.fmt)
        z = qs.matmul(f"{site}:forward", rows, wm, f"{site}.z", bq)
        ctx.qs, ctx.site, ctx.rows, ctx.wq = qs, site, rows, wq
        ctx.geom = (tuple(x.shape), stride, padding, dilation, ho, wo)
        ctx.dtypes = (x.dtype, w.dtype, None if b is None else b.dtype)
        return z.values.reshape(B, ho, wo, Fo).permute(0, 3, 1, 2).to(x.dtype).contiguous()

    @staticmethod
    def backward(ctx, g):
        qs, site, wq = ctx.qs, ctx.site, ctx.wq
        (Bn, C, H, W), stride, padding, dilation, ho, wo = ctx.geom
        Fo, kh, kw = wq.values.shape[0], wq.values.shape[2], wq.values.shape[3]
        dimg = qs.quantize(f"{site}.dEdz", g.detach())
        dq = QT(dimg.values.permute(0, 2, 3, 1).reshape(-1, Fo), None, dimg.fmt)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dx = None
        if need_x:
            dx = _conv_input_grad(qs, site, dimg, wq, (H, W), stride, padding, dilation).to(ctx.dtypes[0])
        dw, db = _grads(qs, site, ctx.rows, dq, need_w, need_b)
        if dw is not None:
            dw = dw.t().reshape(Fo, C, kh, kw).to(ctx.dtypes[1])
        if db is not None:
            db = db.to(ctx.dtypes[2])
        return dx, dw, db, None, None, None, None, None


def _conv_input_grad(qs, site, dimg: QT, wq: QT, hw, stride, padding, dilation) -> torch.Tensor:
    """``dEdx`` as one MAC per element: the zero-stuffed ``dEdz`` (stride), padded by
    ``d*(k-1) - p`` (negative: cropped), correlated with the flipped filters."""
    d = dimg.values
    Bn, Fo, ho, wo = d.shape
    C, kh, kw = wq.values.shape[1:]
    if stride != (1, 1):
        z = d.new_zeros(Bn, Fo, (ho - 1) * stride[0] + 1, (wo - 1) * stride[1] + 1)
        z[:, :, ::stride[0], ::stride[1]] = d
        d = z
    pads = []
    for n, k, p, dil, L in ((hw[1], kw, padding[1], dilation[1], d.shape[3]),
                            (hw[0], kh, padding[0], dilation[0], d.shape[2])):
        left = dil * (k - 1) - p
        pads += [left, n + dil * (k - 1) - left - L]
    d = F.pad(d, pads)
    rows = F.unfold(d, (kh, kw), dilation=dilation)
    rows = QT(rows.transpose(1, 2).reshape(-1, Fo * kh * kw), None, dimg.fmt)
    wf = QT(wq.values.flip(2, 3).permute(0, 2, 3, 1).reshape(Fo * kh * kw, C), None, wq.fmt)
    dx = qs.matmul(f"{site}:input_grad", rows, wf, f"{site}.dEdx")
    return dx.values.reshape(Bn, hw[0], hw[1], C).permute(0, 3, 1, 2).contiguous()
