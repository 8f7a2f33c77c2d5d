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

from . import fastfloat, fastq
from .qcore import QT, QuantState


@torch.no_grad()
def apply_update(qs: QuantState, layer, lr: float, momentum: float) -> None:
    """The rule on ``layer`` (``name``, the K x N ``weight``, ``bias``, ``update_w``, ``update_b``,
    ``lr_scale``, ``max_col_norm``): ``lowp.SGD``'s unfused path."""
    name = layer.name
    gw = layer.weight.grad
    gb = layer.bias.grad
    if gw is None or gb is None:
        raise RuntimeError(f"{name}: no gradient (call backward first)")
    if not _fused_weight_update(qs, layer, lr, momentum, gw):
        uw = qs.quantize(f"{name}.update_w", momentum * layer.update_w - (lr * layer.lr_scale) * gw).values
        w = qs.quantize(f"{name}.w_stored", layer.weight + uw, width="update").values
        if layer.max_col_norm is not None:
            w = qs.quantize(f"{name}.w_stored", w * _norm_factor(_column_norms(w), layer.max_col_norm),
                            width="update").values
        else:
            w = qs.quantize(f"{name}.w_stored", w, width="update").values
        layer.update_w.copy_(uw)
        layer.weight.copy_(w)
    ub = qs.quantize(f"{name}.update_b", momentum * layer.update_b - (lr * layer.lr_scale) * gb).values
    b = qs.quantize(f"{name}.b_stored", layer.bias + ub, width="update").values
    layer.update_b.copy_(ub)
    layer.bias.copy_(b)
    layer.weight.grad = None
    layer.bias.grad = None


def _column_norms(w: torch.Tensor) -> torch.Tensor:
    return torch.sqrt((w * w).sum(dim=0))


def _norm_factor(norms: torch.Tensor, max_col_norm: float) -> torch.Tensor:
    return norms.clamp(0, max_col_norm) / (1e-7 + norms)


def _fused_weight_update(qs: QuantState, layer, lr: float, momentum: float, gw: torch.Tensor) -> bool:
    """The weight update as two passes of compiled loops (``fastq``), in place; False if not applicable."""
    return fused_weight_update(qs, layer.name, layer.weight.data, layer.update_w, gw, lr * layer.lr_scale, momentum,
                               layer.max_col_norm)


def fused_weight_update(qs: QuantState, name: str, w: torch.Tensor, u: torch.Tensor, gw: torch.Tensor, lr: float,
                        momentum: float, max_col_norm: float | None, unit_rows: bool = False) -> bool:
    """``apply_update``'s weight rule on ``w`` and its momentum ``u`` in place, as two passes of
    compiled loops (``fastq``); False (nothing done) if not applicable.

    The same rule and the same quantization points as the unfused path, counted the
    same way; it needs set ranges (a dynamic group is set from its first tensor) and
    formats ``fastq`` handles.  Point hooks (tests) see each point's values too, as K x N.
    ``unit_rows``: ``w``, ``u`` and ``gw`` are N x K (a row per output unit: an ``nn.Linear``'s
    or a flattened ``nn.Conv2d``'s weight), which changes no value (per-unit sums keep their order).
    """
    gu, gs = f"{name}.update_w", f"{name}.w"  # stored weights share the range of w
    fp, fu = qs.fmt(gu), qs.fmt(gs, "update")
    if fastfloat.supports(fp) and fastfloat.supports(fu) and max_col_norm is None:
        return _fused_float_update(qs, name, w, u, gw, lr, momentum, fp, fu, unit_rows)
    if not (fastq.supports(fp) and fastq.supports(fu)) or not qs.training:
        return False
    if any(f.kind == "dfixed" and not qs.controller.state(g).set for f, g in ((fp, gu), (fu, gs))):
        return False
    if not (w.is_contiguous() and u.is_contiguous() and w.dtype == u.dtype == torch.float64):
        return False
    g = gw.detach().to(torch.float64).contiguous()
    units = w.shape[0] if unit_rows else w.shape[1]
    sumsq = torch.zeros(units, dtype=torch.float64)
    col_narrower = torch.zeros(units, dtype=torch.int64)
    step = fastq.momentum_step_kernel(fp.round.value, fu.round.value, unit_rows, max_col_norm is not None)
    po, pn, wo = step(w.numpy(), u.numpy(), g.numpy(), float(momentum), float(lr),
                      *fastq.grid(fp), *fastq.grid(fu), sumsq.numpy(), col_narrower.numpy())
    wn = int(col_narrower.sum())
    ctl, n, track = qs.controller, w.numel(), qs.controller.tracking
    ctl.observe_counts(gu, n, po, pn, float(u.abs().max()) if track else 0.0, fp)
    ctl.observe_counts(gs, n, wo, wn, float(w.abs().max()) if track else 0.0, fu)
    kn = (lambda t: t.t()) if unit_rows else (lambda t: t)
    _hooks(qs, gu, kn(u), fp)
    _hooks(qs, f"{name}.w_stored", kn(w), fu)
    o, nn = 0, wn  # re-quantizing values already on the grid: nothing moves, the counts repeat
    if max_col_norm is not None:
        factor = _norm_factor(torch.sqrt(sumsq), max_col_norm)
        active = ~_rescale_is_identity(factor, fu)
        if bool(active.any()):
            o, nn = fastq.column_scale_kernel(fu.round.value, unit_rows)(w.numpy(), factor.numpy(), active.numpy(),
                                                                         *fastq.grid(fu))
            nn += int(col_narrower[~active].sum())
    ctl.observe_counts(gs, n, o, nn, float(w.abs().max()) if track else 0.0, fu)
    _hooks(qs, f"{name}.w_stored", kn(w), fu)
    return True


def _fused_float_update(qs: QuantState, name: str, w, u, gw, lr: float, momentum: float, fp, fu,
                        unit_rows: bool) -> bool:
    """``fused_weight_update`` for float formats (no max-norm constraint): one compiled pass.

    The unfused rule then quantizes the stored weights once more (``w = Q_update(w)``); that
    pass changes nothing and counts no overflow, so only its counts and hooks are repeated
    here: ``fastfloat.element`` returns a value already on the grid unchanged and unflagged
    (its rounding of ``r * 2**-q`` is exact, ``|r| <= vmax``), as it does an IEEE infinity, a
    kept NaN and the saturated ``±vmax`` of FN/SAT; SAT turns NaN into an (unflagged) +0 the
    first time.  tests/training/test_update.py checks values and counts against the unfused rule.
    """
    if not qs.training or not (w.is_contiguous() and u.is_contiguous() and w.dtype == u.dtype == torch.float64):
        return False
    g = gw.detach().to(torch.float64).contiguous()
    wn, un = w.numpy(), u.numpy()
    step = fastfloat.momentum_step_kernel(fp.round.value, fu.round.value)
    po, wo = step(wn, wn.view("int64"), un, un.view("int64"), g.numpy(), float(momentum), float(lr),
                  fastfloat.pow2_table(), *fastfloat.params(fp), *fastfloat.params(fu))
    ctl, n = qs.controller, w.numel()
    gu, gs = f"{name}.update_w", f"{name}.w"
    ctl.observe_counts(gu, n, int(po), int(po), 0.0, fp)
    ctl.observe_counts(gs, n, int(wo), int(wo), 0.0, fu)
    kn = (lambda t: t.t()) if unit_rows else (lambda t: t)
    _hooks(qs, gu, kn(u), fp)
    _hooks(qs, f"{name}.w_stored", kn(w), fu)
    ctl.observe_counts(gs, n, 0, 0, 0.0, fu)  # the unfused rule's second w_stored quantization
    _hooks(qs, f"{name}.w_stored", kn(w), fu)
    return True


def _rescale_is_identity(factor: torch.Tensor, fmt) -> torch.Tensor:
    """Columns whose requantization after ``* factor`` gives back every code: a code ``c`` moves by
    at most ``|c| * (1 - factor)`` (plus float64 rounding), under a quarter ulp, and nearest
    rounding returns ``c``.  (Directed rounding would step it down: never skipped.)"""
    from fewbits.sim import Rounding

    if fmt.round not in (Rounding.RNE, Rounding.RNA):
        return factor == 1.0
    top = max(-fmt.min_code, fmt.max_code)
    return (factor <= 1.0) & ((1.0 - factor) * top < 0.25)


def _hooks(qs: QuantState, group: str, values: torch.Tensor, fmt) -> None:
    for h in qs.point_hooks:
        h(group, QT(values.clone(), None, fmt))
