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
``site.dEdb``  the bias-gradient MAC's output (a ones-row matmul, as the paper's code)
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

from . import fastconv, fastmac
from .qcore import QT, QuantState, ones_qt as _ones_qt


def _quantize_operands(qs: QuantState, site: str, x, w, b):
    xq = qs.quantize(f"{site}.x", x.detach())
    wq = qs.quantize(f"{site}.w", w.detach())
    bq = None if b is None else qs.quantize(f"{site}.b", b.detach())
    return xq, wq, bq


def _grads(qs: QuantState, site: str, rows: QT, dq: QT, want_w: bool, want_b: bool, col_major: bool = False):
    """The weight-gradient (``rows.T @ dq``) and bias-gradient (``1 @ dq``) MACs of a site."""
    dw = qs.matmul(f"{site}:weight_grad", rows.t(), dq, f"{site}.dEdw", col_major=col_major).values if want_w \
        else None
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
        # column-major: w is usually a Linear's weight.t(), whose gradient then needs no copy
        dw, db = _grads(qs, site, ctx.xq, dq, need_w, need_b, col_major=not ctx.wq.values.is_contiguous())
        cast = [None if t is None else t.to(d) for t, d in zip((dx, dw, db), ctx.dtypes)]
        return (*cast, None, None)


def conv_geometry(x_shape, w_shape, stride, padding, dilation):
    """Output size (Ho, Wo) of a 2-D convolution with per-dimension tuples."""
    H, W = x_shape[-2:]
    kh, kw = w_shape[-2:]
    ho = (H + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (W + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return ho, wo


def _conv_rows(xq: QT, k, stride, padding, dilation) -> QT:
    """The im2col rows (B*Ho*Wo x C*kh*kw) of a quantized image: the MAC's ``A`` operand."""
    B = xq.values.shape[0]
    rows = F.unfold(xq.values, k, dilation=dilation, padding=padding, stride=stride)
    return QT(rows.transpose(1, 2).reshape(-1, rows.shape[1]), None, xq.fmt)


def _fast_conv(qs: QuantState, *fmts) -> bool:
    """The float32 convolution path (``fastconv``) for these operand formats: fixed point, the exact
    accumulator, no MAC hooks (a capture records the im2col matmuls themselves)."""
    return not qs.mac_hooks and qs.spec.acc is None and fastconv.applies(*fmts) and fastconv.available()


def _exact_out(qs: QuantState, tag: str, group: str, sums: torch.Tensor, a_fmt, b_fmt, bias: QT | None = None) -> QT:
    """Integer sums of code products (exact) scaled onto their grid, plus the bias, requantized once."""
    v = sums * 2.0 ** -(a_fmt.frac + b_fmt.frac)  # a power of two: exact
    if bias is not None:
        v = v + bias.values.reshape(1, -1, *([1] * (v.dim() - 2)))  # exact (``exact_fixed_sum``)
    qt, ovf = qs.requantize_exact(group, v)
    return qs._after_matmul(tag, None, None, bias, qt, ovf, group)


def _float_conv_out(qs: QuantState, kind: str, site: str, a: QT, b: QT, bias: QT | None, shape, k: int, stride,
                    padding, dilation) -> QT | None:
    """One convolution product of float operands through a float64 convolution, its rounding checked
    by an error bound (``fastconv.float_conv``, ``fastmac.filtered_float_round``); None (nothing
    recorded) when the bound leaves an element undecided or the formats do not allow it: the caller
    then runs the im2col MAC-contract matmul."""
    tag, group = {"forward": (f"{site}:forward", f"{site}.z"), "input_grad": (f"{site}:input_grad", f"{site}.dEdx"),
                  "weight_grad": (f"{site}:weight_grad", f"{site}.dEdw")}[kind]
    out_fmt = qs.fmt(group)
    if qs.mac_hooks or qs.spec.acc is not None or not fastconv.float_applies(a.fmt, b.fmt, out_fmt) \
            or not fastconv.available() or bias is not None and bias.fmt.kind != "float":
        return None
    s, t = fastconv.float_conv(kind, a.values, b.values, shape, stride, padding, dilation)
    t = fastconv.bound32(t, k)
    if bias is not None:
        s = s + bias.values.reshape(1, -1, 1, 1)  # one more float64 addition: the bound counts k + 1 terms
        t = t + bias.values.abs().reshape(1, -1, 1, 1)
    r = fastmac.filtered_float_round(s, t, k, a.fmt, b.fmt, None if bias is None else bias.fmt, out_fmt)
    if r is None:
        return None
    v, ovf = r
    return qs.rounded_out(tag, None, None, bias, group, v, out_fmt, ovf, None)


class Conv2dFn(torch.autograd.Function):
    """A 2-D convolution (groups 1, zero padding, any stride/dilation) as im2col MAC-contract matmuls.

    ``w`` is the layer's ``F x C x kh x kw`` weight; the MAC's ``B`` operand is
    its ``(C*kh*kw) x F`` matrix (the column norms are the filter norms).  For fixed-point
    operands the same exact sums come from float32 convolutions of the split codes
    (``fastconv``), when its bound allows; else from the im2col matmuls.
    """

    @staticmethod
    def forward(ctx, x, w, b, qs, site, stride, padding, dilation):
        xq, wq, bq = _quantize_operands(qs, site, x, w, b)
        B = x.shape[0]
        Fo, C, k = w.shape[0], w.shape[1], tuple(w.shape[-2:])
        ho, wo = conv_geometry(x.shape, w.shape, stride, padding, dilation)
        ctx.qs, ctx.site, ctx.xq, ctx.wq, ctx.rows, ctx.x32 = qs, site, xq, wq, None, None
        ctx.geom = (tuple(x.shape), stride, padding, dilation, ho, wo)
        ctx.dtypes = (x.dtype, w.dtype, None if b is None else b.dtype)
        if _fast_conv(qs, xq.fmt, wq.fmt):
            kk = C * k[0] * k[1]
            sw = fastconv.forward_plan(kk, fastconv.max_code(xq.fmt), fastconv.max_code(wq.fmt))
            if sw is not None and fastmac.exact_fixed_sum(kk, xq.fmt, wq.fmt, None if bq is None else bq.fmt):
                ctx.x32 = fastconv.codes32(xq.values, xq.fmt)
                ctx.w32 = fastconv.codes32(wq.values, wq.fmt)
                sums = fastconv.conv_forward(ctx.x32, ctx.w32, sw, stride, padding, dilation)
                z = _exact_out(qs, f"{site}:forward", f"{site}.z", sums, xq.fmt, wq.fmt, bq)
                return z.values.to(x.dtype)
        z = _float_conv_out(qs, "forward", site, xq, wq, bq, None, C * k[0] * k[1], stride, padding, dilation)
        if z is not None:
            return z.values.to(x.dtype)
        rows = ctx.rows = _conv_rows(xq, k, stride, padding, dilation)
        wm = QT(wq.values.reshape(Fo, -1).t(), None, wq.fmt)
        z = qs.matmul(f"{site}:forward", rows, wm, f"{site}.z", bq)
        return z.values.reshape(B, ho, wo, Fo).permute(0, 3, 1, 2).to(x.dtype).contiguous()

    @staticmethod
    def backward(ctx, g):
        qs, site, wq, xq = ctx.qs, ctx.site, ctx.wq, ctx.xq
        (Bn, C, H, W), stride, padding, dilation, ho, wo = ctx.geom
        Fo, kh, kw = wq.values.shape[0], wq.values.shape[2], wq.values.shape[3]
        dimg = qs.quantize(f"{site}.dEdz", g.detach())
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        fast = _fast_conv(qs, xq.fmt, wq.fmt, dimg.fmt)
        d32 = fastconv.codes32(dimg.values, dimg.fmt) if fast else None
        dq = None
        dx = dw = db = None
        if need_x:
            kk = Fo * kh * kw
            sw = fastconv.forward_plan(kk, fastconv.max_code(dimg.fmt), fastconv.max_code(wq.fmt)) if fast else None
            fz = None if fast else _float_conv_out(qs, "input_grad", site, dimg, wq, None, (Bn, C, H, W), kk, stride,
                                                   padding, dilation)
            if fz is not None:
                dx = fz.values
            elif sw is not None and fastmac.exact_fixed_sum(kk, dimg.fmt, wq.fmt):
                w32 = ctx.w32 if ctx.x32 is not None else fastconv.codes32(wq.values, wq.fmt)
                sums = fastconv.conv_input_grad(d32, w32, (Bn, C, H, W), sw, stride, padding, dilation)
                dx = _exact_out(qs, f"{site}:input_grad", f"{site}.dEdx", sums, dimg.fmt, wq.fmt).values
            else:
                dx = _conv_input_grad(qs, site, dimg, wq, (H, W), stride, padding, dilation)
            dx = dx.to(ctx.dtypes[0])
        if need_w:
            plan = fastconv.weight_grad_plan(ho * wo, Bn, fastconv.max_code(xq.fmt),
                                             fastconv.max_code(dimg.fmt)) if fast else None
            fz = None if fast else _float_conv_out(qs, "weight_grad", site, xq, dimg, None, tuple(wq.values.shape),
                                                   Bn * ho * wo, stride, padding, dilation)
            if fz is not None:
                dw = fz.values
            elif plan is not None and fastmac.exact_fixed_sum(Bn * ho * wo, xq.fmt, dimg.fmt):
                x32 = ctx.x32 if ctx.x32 is not None else fastconv.codes32(xq.values, xq.fmt)
                sums = fastconv.conv_weight_grad(x32, d32, wq.values.shape, *plan, stride, padding, dilation)
                dw = _exact_out(qs, f"{site}:weight_grad", f"{site}.dEdw", sums, xq.fmt, dimg.fmt).values
            else:
                rows = ctx.rows if ctx.rows is not None else _conv_rows(xq, (kh, kw), stride, padding, dilation)
                dq = QT(dimg.values.permute(0, 2, 3, 1).reshape(-1, Fo), None, dimg.fmt)
                dw, _ = _grads(qs, site, rows, dq, True, False)
                dw = dw.t().reshape(Fo, C, kh, kw)
            dw = dw.to(ctx.dtypes[1])
        if need_b:
            if dq is None:
                dq = QT(dimg.values.permute(0, 2, 3, 1).reshape(-1, Fo), None, dimg.fmt)
            _, db = _grads(qs, site, None, dq, False, True)
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
