"""The paper's parameter update: momentum at the propagation width, stored
parameters at the update width, then the max column norm constraint.

    update_w = Q_prop(M * update_w - LR * dEdw)
    W        = Q_update(W + update_w)
    W        = Q_update(W * min(norm, max_col_norm) / (1e-7 + norm))   (column norms)

(``parameter_updates`` of ``layer.py`` in the paper's code; biases alike,
without the norm constraint.)
"""

from __future__ import annotations

import torch

from .layers import QLayer
from .qcore import QuantState


@torch.no_grad()
def apply_update(qs: QuantState, layer: QLayer, lr: float, momentum: float) -> None:
    name = layer.name
    gw = layer.weight.grad
    gb = layer.bias.grad
    if gw is None or gb is None:
        raise RuntimeError(f"{name}: no gradient (call backward first)")
    uw = qs.quantize(f"{name}.update_w", momentum * layer.update_w - (lr * layer.lr_scale) * gw).values
    ub = qs.quantize(f"{name}.update_b", momentum * layer.update_b - (lr * layer.lr_scale) * gb).values
    w = qs.quantize(f"{name}.w_stored", layer.weight + uw, width="update").values
    b = qs.quantize(f"{name}.b_stored", layer.bias + ub, width="update").values
    if layer.max_col_norm is not None:
        norms = torch.sqrt((w * w).sum(dim=0))
        desired = norms.clamp(0, layer.max_col_norm)
        w = qs.quantize(f"{name}.w_stored", w * (desired / (1e-7 + norms)), width="update").values
    else:
        w = qs.quantize(f"{name}.w_stored", w, width="update").values
    layer.update_w.copy_(uw)
    layer.update_b.copy_(ub)
    layer.weight.copy_(w)
    layer.bias.copy_(b)
    layer.weight.grad = None
    layer.bias.grad = None
