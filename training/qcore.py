"""Quantization points and MAC-contract matmuls of one network, with their range state.

Every value of a quantized run lives on the grid of a named *group* format
(``L1.z``, ``L1.dEdw``, ...).  ``QuantState`` is the single place that turns a
float tensor into a group's values (``fastq``/``fastfloat``, tested equal to
``fmt.encode_ovf``) and multiplies two groups under the MAC contract
(``fastmac``'s float64 paths, exact by proof or by a checked bound, else
``fewbits.sim.mac_reference``).  With ``prop=None`` (fp32) every point is the
identity and matmuls are plain float32 ``torch.matmul``.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from fewbits.sim.run import RunSpec, group_format

from . import fastfloat, fastmac, fastq
from .ranges import RangeController

#: the paper's quantization points, in the order of one training step
FORWARD_POINTS = ("w", "b", "z", "y")
BACKWARD_POINTS = ("dEdy", "dEdz", "dEdw", "dEdb")
UPDATE_POINTS = ("update_w", "update_b", "w_stored", "b_stored")
ALL_POINTS = FORWARD_POINTS + BACKWARD_POINTS + UPDATE_POINTS


class QT:
    """A quantized tensor: float64 values on ``fmt``'s grid, and their int64 codes.

    ``fmt is None`` means unquantized (float32 values, no codes).  The codes
    are derived from the values when first asked for (captures, hooks, the
    exact MAC path): the fast paths never need them.
    """

    __slots__ = ("values", "fmt", "_codes")

    def __init__(self, values: torch.Tensor, codes: torch.Tensor | None = None, fmt=None):
        self.values, self._codes, self.fmt = values, codes, fmt

    @property
    def codes(self) -> torch.Tensor | None:
        if self._codes is None and self.fmt is not None:
            self._codes = self.fmt.encode(self.values.detach())  # exact: the values are on the grid
        return self._codes

    def with_values(self, values: torch.Tensor) -> "QT":
        """The same codes and format carried by another tensor of the same values (autograd)."""
        return QT(values, self._codes, self.fmt)

    def t(self) -> "QT":
        return QT(self.values.t(), None if self._codes is None else self._codes.t(), self.fmt)

    def __repr__(self):
        return f"QT({tuple(self.values.shape)}, {self.fmt})"


def scale_format(fmt, scale: float):
    """``fmt`` whose codes mean ``scale`` times as much (a power of two), or None if not a shift."""
    if fmt is None or fmt.kind == "float":
        return None
    k = -math.log2(scale)
    if k != int(k):
        raise ValueError(f"weight scale {scale} must be a power of two for fixed point")
    if fmt.kind == "dfixed":
        return fmt.with_frac(fmt.frac + int(k))
    return dataclasses.replace(fmt, frac=fmt.frac + int(k))


def scaled(q: QT, scale: float) -> QT:
    """``scale * q`` (a power of two) exactly: fixed point re-labels the codes (the paper's weights
    scaled by the dropout probability at inference)."""
    if scale == 1.0:
        return q
    if q.fmt is None:
        return QT(q.values * scale)
    f = scale_format(q.fmt, scale)
    if f is not None:
        return QT(q.values * scale, None, f)
    v = q.values * scale
    return QT(v, q.fmt.encode(v), q.fmt)


def ones_qt(n: int, like: QT) -> QT:
    """A 1 x n row of ones in a format whose product with ``like`` is exact (for ``dEdb``)."""
    if like.fmt is None:
        return QT(torch.ones(1, n, dtype=torch.float32))
    from fewbits.sim import Fixed

    return QT(torch.ones(1, n, dtype=torch.float64), None, like.fmt if like.fmt.kind == "float" else Fixed(2, 0))


class QuantState:
    """Formats, range controller, observation hooks and capture hook of one network."""

    def __init__(self, spec: RunSpec, controller: RangeController | None = None):
        self.spec = spec
        self.controller = controller or RangeController()
        self.training = True  # record overflow statistics only while training
        self.width_override = None  # range warm-up: RunSpec.widened(...)
        #: ``fn(group, QT)`` called at every quantization point (tests instrument with it)
        self.point_hooks: list = []
        #: ``fn(tag, a, b, bias, out, ovf, acc_fmt)`` called after every MAC-contract matmul
        self.mac_hooks: list = []
        #: group -> the group whose format and range statistics it uses instead (``lowp.configure``:
        #: a site's input that is an explicit point's output, a site's input gradient named after
        #: the layer below)
        self.aliases: dict[str, str] = {}
        #: groups quantized without being counted: values already counted at the point they alias
        self.uncounted: set[str] = set()
        #: group -> power-of-two scale applied to its values when not training (the paper's weights
        #: times the dropout probability at inference), after quantizing
        self.eval_scale: dict[str, float] = {}

    # ---- formats -------------------------------------------------------
    @property
    def active(self) -> RunSpec:
        return self.width_override or self.spec

    def base(self, width: str):
        p = self.active
        return p.update if width == "update" else p.prop

    def fmt(self, group: str, width: str = "prop"):
        """The current format of ``group`` at the ``prop`` or ``update`` width (None = fp32)."""
        base = self.base(width)
        if base is None or base.kind != "dfixed":
            return base
        return group_format(base, self.controller.int_bits(group))

    def _range_group(self, group: str) -> str:
        group = self.aliases.get(group, group)
        # stored parameters share the range of their propagation group (paper: w_range)
        if group.endswith(".w_stored"):
            return group[: -len("_stored")]
        if group.endswith(".b_stored"):
            return group[: -len("_stored")]
        return group

    # ---- quantization points ---------------------------------------------
    def quantize(self, group: str, x: torch.Tensor, width: str = "prop", record: bool = True) -> QT:
        """Quantize ``x`` at ``group``'s format; counts overflow for the range controller."""
        rgroup = self._range_group(group)
        record = record and group not in self.uncounted
        base = self.base(width)
        if base is None:
            qt = QT(x.to(torch.float32) if x.dtype != torch.float32 else x)
        else:
            if base.kind == "dfixed" and self.training:
                self.controller.maybe_init(rgroup, x, base)
            qt = self._requantize(rgroup, x, self.fmt(rgroup, width), record)[0]
        for h in self.point_hooks:
            h(group, qt)
        if not self.training and group in self.eval_scale:
            qt = scaled(qt, self.eval_scale[group])
        return qt

    def _requantize(self, rgroup: str, x: torch.Tensor, fmt, record: bool, want_mask: bool = False):
        """``(QT, overflow flags or None)`` of ``x`` on ``fmt``, counted in ``rgroup``'s statistics
        (a transposed contiguous matrix, e.g. ``weight.t()``, is quantized in its own layout: no copy)."""
        if x.dim() == 2 and not x.is_contiguous() and x.t().is_contiguous():
            qt, mask = self._requantize(rgroup, x.t(), fmt, record, want_mask)
            return qt.t(), None if mask is None else mask.t()
        q = None
        if fastq.supports(fmt):
            q = fastq.quantize_fixed(x, fmt, want_mask, want_max=self.controller.tracking)
        elif fastfloat.supports(fmt):
            q = fastfloat.quantize_float(x, fmt, want_mask)
        if q is None:
            codes, ovf = fmt.encode_ovf(x)
            if record and self.training:
                self.controller.observe(rgroup, codes, ovf, fmt)
            return QT(fmt.decode(codes), codes, fmt), ovf
        if record and self.training:
            self.controller.observe_counts(rgroup, q.n, q.overflow, q.narrower, q.max_abs, fmt)
        return QT(q.values, None, fmt), q.mask

    def encode_on_grid(self, x: torch.Tensor, fmt) -> QT:
        """Codes of values known to be on ``fmt``'s grid (after dropout masks, max, pooling)."""
        return QT(x) if fmt is None else QT(x, None, fmt)

    # ---- MAC-contract matmul ------------------------------------------------
    def matmul(self, tag: str, a: QT, b: QT, out_group: str, bias: QT | None = None, record: bool = True,
               col_major: bool = False) -> QT:
        """``requant(a @ b + bias)`` to ``out_group``'s prop format under the MAC contract: by a
        float64 path that is exact by proof or checked bound (``fastmac``), else ``mac_reference``.
        ``col_major``: the exact fixed-point path returns the result column-major (its ``.t()``
        contiguous; the same values), e.g. a weight gradient for an N x K ``nn.Linear`` weight."""
        out_group = self.aliases.get(out_group, out_group)
        if a.fmt is None or b.fmt is None or self.base("prop") is None:
            v = a.values.to(torch.float32) @ b.values.to(torch.float32)
            if bias is not None:
                v = v + bias.values.to(torch.float32)
            return self.quantize(out_group, v, record=record) if self.base("prop") is not None else QT(v)
        out_fmt = self.fmt(out_group)
        if self.spec.acc is not None:
            return self._float_acc_matmul(tag, a, b, bias, out_group, out_fmt, record)
        if fastmac.filtered_float_applies(a, b, bias, out_fmt):
            v, o, ovf = fastmac.filtered_float_mac_counts(a, b, bias, out_fmt, want_flags=bool(self.mac_hooks),
                                                          col_major=col_major)
            return self.rounded_out(tag, a, b, bias, out_group, v, out_fmt, o, ovf, record)
        exact = fastmac.exact_float64_sum(a, b, bias)
        if exact:
            # every partial sum is an integer below 2**53 on the finest grid: the float64 matmul
            # *is* the exact accumulator, and requantizing it is quantizing at the output format
            if col_major and bias is None:
                v = (b.values.t() @ a.values.t()).t()  # exact whatever the order: the same sums
            else:
                v = a.values @ b.values if bias is None else torch.addmm(bias.values, a.values, b.values)
        # an unset output range is set from the (exact, or float64 estimate of the) result first
        out_fmt = self._init_output(out_group, out_fmt, (lambda: v) if exact else
                                    (lambda: a.values @ b.values + (0 if bias is None else bias.values)))
        if exact and fastq.supports(out_fmt):
            qt, ovf = self._requantize(out_group, v, out_fmt, record, want_mask=bool(self.mac_hooks))
        else:
            from fewbits.sim import mac_reference

            z, ovf = mac_reference(
                a.codes, b.codes, a.fmt, b.fmt, None, out_fmt,
                None if bias is None else bias.codes, None if bias is None else bias.fmt,
            )
            if record and self.training:
                self.controller.observe(out_group, z, ovf, out_fmt)
            qt = QT(out_fmt.decode(z), z, out_fmt)
        return self._after_matmul(tag, a, b, bias, qt, ovf, out_group)

    def _init_output(self, out_group: str, out_fmt, estimate):
        """``out_group``'s format, its dynamic range first set from ``estimate()`` (the exact result
        or a float64 estimate of it) if it is unset."""
        if out_fmt.kind == "dfixed" and self.training and not self.controller.state(out_group).set:
            self.controller.maybe_init(out_group, estimate(), out_fmt)
            out_fmt = self.fmt(out_group)
        return out_fmt

    def requantize_exact(self, out_group: str, v: torch.Tensor, record: bool = True):
        """``(QT, flags or None)``: the exact sums ``v`` of a MAC-contract matmul (float64, bias included)
        requantized once to ``out_group``'s format (its range set from ``v`` if unset), as ``matmul``
        does; the caller runs ``_after_matmul`` (or, for a convolution, the point hooks alone)."""
        out_group = self.aliases.get(out_group, out_group)
        out_fmt = self._init_output(out_group, self.fmt(out_group), lambda: v)
        return self._requantize(out_group, v, out_fmt, record, want_mask=bool(self.mac_hooks))

    def _float_acc_matmul(self, tag, a, b, bias, out_group, out_fmt, record) -> QT:
        """The matmul with the run's float accumulator: its running sums ``s`` (``fastmac``, exact,
        else ``mac_reference`` onto the accumulator's own format), then one rounding to the output."""
        acc = self.spec.acc
        if fastmac.float_acc_applies(a, b, bias, acc):
            s = fastmac.float_acc_sums(a, b, bias, acc)
        else:
            from fewbits.sim import mac_reference

            z, _ = mac_reference(a.codes, b.codes, a.fmt, b.fmt, acc, acc.fmt,
                                 None if bias is None else bias.codes, None if bias is None else bias.fmt)
            s = acc.fmt.decode(z)
        qt, ovf = self._requantize(out_group, s, out_fmt, record, want_mask=bool(self.mac_hooks))
        if ovf is not None:
            ovf = ovf | ~torch.isfinite(s)  # the contract flags a non-finite running sum too
        return self._after_matmul(tag, a, b, bias, qt, ovf, out_group)

    def rounded_out(self, tag, a, b, bias, out_group: str, v: torch.Tensor, out_fmt, overflows: int, ovf,
                    record: bool = True) -> QT:
        """A MAC-contract result already rounded to ``out_fmt`` by a float fast path (a filtered matmul or
        convolution): its ``overflows`` counted in ``out_group``'s range (through its alias), then the hooks."""
        out_group = self.aliases.get(out_group, out_group)
        if record and self.training:
            self.controller.observe_counts(out_group, v.numel(), overflows, overflows, 0.0, out_fmt)
        return self._after_matmul(tag, a, b, bias, QT(v, None, out_fmt), ovf, out_group)

    def _after_matmul(self, tag, a, b, bias, qt, ovf, out_group) -> QT:
        out_group = self.aliases.get(out_group, out_group)
        for h in self.mac_hooks:
            h(tag, a, b, bias, qt, ovf)
        for h in self.point_hooks:
            h(out_group, qt)
        return qt

