"""Any PyTorch model at low precision: ``convert`` puts its matmuls under the MAC contract.

``convert(model, prop, update)`` swaps every ``nn.Linear``/``nn.Conv1d``/``nn.Conv2d``
for a MAC-contract version of itself (the same object and parameters: its class
changes, so ``state_dict`` keys and user code that reads ``model.fc.weight``
keep working) and, while the model's ``forward`` runs, a ``TorchFunctionMode``
catches the matmuls a module swap cannot see: ``F.linear``, ``F.conv1d``,
``F.conv2d``, ``torch.matmul``/``mm``/``bmm`` and ``@`` called inside a
``forward()``.  Each of those *sites* computes its forward, input-gradient and
weight-gradient matmuls through ``QuantState.matmul`` with the paper's
quantization points (``fewbits.training.lowp_ops`` lists them), each point a
range group of the paper's controller for dynamic fixed point.

Everything else (activations, pooling, batch norm, residual additions,
softmax, the loss) runs in float -- float64 in a quantized run, so no value
is rounded twice -- and is quantized to the propagation format where it
enters the next matmul: what an accelerator's vector unit between two MAC
array passes would do.  An operation that cannot be put under the contract
(recurrent layers, attention modules, grouped or transposed convolutions,
``einsum``/``addmm`` in a ``forward()``) is one ``LowpError`` naming its module
path, unless that module is listed in ``keep_float``: it then runs in float
and ``describe(model)`` says so.

``SGD`` is the paper's update (``fewbits.training.update``); ``capture`` records
one step's matmuls of named sites in the capture format ``fewbits cosim
--capture`` reads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import types

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .lowp_ops import Conv2dFn, MatmulFn
from fewbits.sim.run import RunSpec, fmt_str
from .qcore import QuantState
from .ranges import RangeController

SUPPORTED = ("nn.Linear, nn.Conv1d and nn.Conv2d (groups=1, zero padding; any stride, padding, dilation), "
             "and F.linear, F.conv1d, F.conv2d, torch.matmul, torch.mm, torch.bmm and @ inside forward()")
#: modules whose arithmetic cannot be put under the MAC contract here
UNSUPPORTED = (nn.RNNBase, nn.RNNCellBase, nn.MultiheadAttention, nn.Conv3d, nn.Bilinear,
               nn.modules.conv._ConvTransposeNd)


class LowpError(ValueError):
    """A model (or a call) ``convert``/``SGD``/``capture`` cannot handle; the message is one line."""


# ---- the state of a converted model ----------------------------------------------
class LowpState:
    """Formats, range state and sites of one converted model (``model._fewbits_lowp``)."""

    def __init__(self, precision: RunSpec, qs: QuantState, keep_float: tuple, track_steps: int):
        self.precision, self.qs, self.keep_float = precision, qs, tuple(keep_float)
        self.track_steps = int(track_steps)
        self.sites: dict[str, str] = {}  # site -> kind ("linear", "conv1d", "conv2d", "matmul")
        self.shapes: dict[str, tuple] = {}  # site -> (K, N) of its forward matmul, once it has run
        self.passthrough = 0  # > 0: inside a site or a keep_float module: the mode lets calls through
        self.path: list[str] = [""]  # module path stack while forward runs (names functional sites)
        self.calls: dict[str, int] = {}
        self.options: dict[str, SiteOptions] = {}  # site -> its ``configure`` settings
        self.paper_float: set[str] = set()  # sites whose fp32 matmuls use the paper's K x N layout
        self.mode = _Intercept(self)

    @contextlib.contextmanager
    def inside(self):
        self.passthrough += 1
        try:
            yield
        finally:
            self.passthrough -= 1

    def functional_site(self, kind: str) -> str:
        owner = self.path[-1]
        n = self.calls.get(owner + kind, 0)
        self.calls[owner + kind] = n + 1
        site = f"{owner}.{kind}{n}" if owner else f"{kind}{n}"
        self.sites.setdefault(site, kind)
        return site


def state_of(model: nn.Module) -> LowpState:
    st = getattr(model, "_fewbits_lowp", None)
    if st is None:
        raise LowpError("this model was not converted: call fewbits.training.lowp.convert(model, ...) first")
    return st


# ---- the site arithmetic shared by swapped modules and the intercepting mode ------------
def _float32(st: LowpState, fn, *tensors, **kw):
    """An unquantized run's matmul: plain float32 PyTorch (every quantization point is the identity),
    back to the caller's dtype (float64 when only the update is quantized)."""
    t32 = [None if t is None else t.to(torch.float32) for t in tensors]
    out = fn(*t32, **kw)
    return out.to(tensors[0].dtype)


def _eval_scaled(st: LowpState, site: str, weight, bias):
    """An unquantized site's weight and bias times its ``configure(eval_scale=)`` when not training
    (a quantized run scales the quantized operands: ``QuantState.eval_scale``)."""
    s = None if st.qs.training else st.qs.eval_scale.get(f"{site}.w")
    if s is None:
        return weight, bias
    return weight * s, None if bias is None else bias * s


def _linear(st: LowpState, site: str, input, weight, bias=None):  # noqa: A002 (F.linear's names)
    st.shapes[site] = (int(weight.shape[1]), int(weight.shape[0]))  # also unquantized: the array follows them
    if not st.precision.quantized:
        weight, bias = _eval_scaled(st, site, weight, bias)
        if site in st.paper_float:
            return _float32(st, _PaperFloatLinear.apply, input, weight, bias)
        return _float32(st, F.linear, input, weight, bias)
    rows = input.reshape(-1, input.shape[-1])
    z = MatmulFn.apply(rows, weight.t(), bias, st.qs, site)
    return z.reshape(*input.shape[:-1], weight.shape[0])


def _pair(v, n=2):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def _padding(padding, kernel, dilation, where: str):
    if padding == "valid":
        return (0,) * len(kernel)
    if padding == "same":
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        if any(t % 2 for t in total):
            raise LowpError(f"{where}: padding='same' with an even kernel pads asymmetrically; "
                            f"supported are {SUPPORTED}")
        return tuple(t // 2 for t in total)
    return _pair(padding, len(kernel))


def _conv(st: LowpState, site: str, nd: int, input, weight, bias=None, stride=1, padding=0, dilation=1,  # noqa: A002
          groups=1):
    x, w, b = input, weight, bias
    if groups == 1:
        st.shapes[site] = (int(w[0].numel()), int(w.shape[0]))  # K = C_in x kernel, N = C_out
    if not st.precision.quantized and groups == 1:
        w, b = _eval_scaled(st, site, w, b)
        if site in st.paper_float:
            return _float32(st, lambda x_, w_, b_: _PaperFloatConv2d.apply(x_, w_, b_, _pair(padding)[0]), x, w, b)
        fn = F.conv1d if nd == 1 else F.conv2d
        return _float32(st, lambda x_, w_, b_: fn(x_, w_, b_, stride, padding, dilation), x, w, b)
    if groups != 1:
        raise LowpError(f"{site}: a convolution with groups={groups} cannot be put under the MAC contract; "
                        f"supported are {SUPPORTED}")
    k = tuple(w.shape[2:])
    stride, dilation = _pair(stride, nd), _pair(dilation, nd)
    padding = _padding(padding, k, dilation, site)
    unbatched = x.dim() == nd + 1
    if unbatched:
        x = x.unsqueeze(0)
    if nd == 1:  # a 1-D convolution is a 2-D one of height 1
        x, w = x.unsqueeze(2), w.unsqueeze(2)
        stride, padding, dilation = (1, *stride), (0, *padding), (1, *dilation)
    z = Conv2dFn.apply(x, w, b, st.qs, site, stride, padding, dilation)
    if nd == 1:
        z = z.squeeze(2)
    return z.squeeze(0) if unbatched else z


def _matmul(st: LowpState, site: str, a, b):
    """``torch.matmul`` semantics (1-D operands, broadcast batch dimensions) as 2-D MACs."""
    va, vb = a.dim() == 1, b.dim() == 1
    st.shapes[site] = (int(a.shape[-1]), int(b.shape[-1]) if b.dim() > 1 else 1)
    a2 = a.unsqueeze(0) if va else a
    b2 = b.unsqueeze(-1) if vb else b
    if a2.dim() == 2 and b2.dim() == 2:
        z = MatmulFn.apply(a2, b2, None, st.qs, site)
    else:
        batch = torch.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        ae = a2.expand(*batch, *a2.shape[-2:]).reshape(-1, *a2.shape[-2:])
        be = b2.expand(*batch, *b2.shape[-2:]).reshape(-1, *b2.shape[-2:])
        z = torch.stack([MatmulFn.apply(ae[i], be[i], None, st.qs, site) for i in range(ae.shape[0])])
        z = z.reshape(*batch, *z.shape[-2:])
    if vb:
        z = z.squeeze(-1)
    if va:
        z = z.squeeze(-2)
    return z


# ---- swapped modules (the same objects, a new class) --------------------------------------
class LowpLinear(nn.Linear):
    """``nn.Linear`` whose matmuls follow the MAC contract (``y = x @ W.T + b``; the MAC's B is ``W.T``)."""

    def forward(self, x):
        st = self._fewbits_lowp
        with st.inside():
            return _linear(st, self._fewbits_site, x, self.weight, self.bias)


class LowpConv1d(nn.Conv1d):
    """``nn.Conv1d`` (groups 1, zero padding) as MAC-contract im2col matmuls."""

    def forward(self, x):
        st = self._fewbits_lowp
        with st.inside():
            return _conv(st, self._fewbits_site, 1, x, self.weight, self.bias, self.stride, self.padding,
                         self.dilation)


class LowpConv2d(nn.Conv2d):
    """``nn.Conv2d`` (groups 1, zero padding) as MAC-contract im2col matmuls."""

    def forward(self, x):
        st = self._fewbits_lowp
        with st.inside():
            return _conv(st, self._fewbits_site, 2, x, self.weight, self.bias, self.stride, self.padding,
                         self.dilation)


SWAPS = {nn.Linear: (LowpLinear, "linear"), nn.Conv1d: (LowpConv1d, "conv1d"), nn.Conv2d: (LowpConv2d, "conv2d")}


# ---- the intercepting mode ---------------------------------------------------------------
def _functional_handlers():
    T = torch.Tensor
    h = {F.linear: lambda st, a, k: _linear(st, st.functional_site("linear"), *a, **k),
         torch.conv1d: lambda st, a, k: _conv(st, st.functional_site("conv"), 1, *a, **k),
         torch.conv2d: lambda st, a, k: _conv(st, st.functional_site("conv"), 2, *a, **k)}
    for f in (torch.matmul, T.matmul, T.__matmul__, torch.mm, T.mm, torch.bmm, T.bmm):
        h[f] = lambda st, a, k: _matmul(st, st.functional_site("matmul"), a[0], k.get("other", a[1] if len(a) > 1
                                                                                    else k.get("mat2")))
    h[T.__rmatmul__] = lambda st, a, k: _matmul(st, st.functional_site("matmul"), a[1], a[0])
    return h


_HANDLERS = _functional_handlers()
_REFUSED = {torch.addmm: "torch.addmm", torch.Tensor.addmm: "Tensor.addmm", torch.baddbmm: "torch.baddbmm",
            torch.addbmm: "torch.addbmm", torch.einsum: "torch.einsum", torch.tensordot: "torch.tensordot",
            torch.mv: "torch.mv", torch.dot: "torch.dot", torch.conv3d: "F.conv3d",
            torch.conv_transpose1d: "F.conv_transpose1d", torch.conv_transpose2d: "F.conv_transpose2d",
            torch.conv_transpose3d: "F.conv_transpose3d", F.bilinear: "F.bilinear",
            F.scaled_dot_product_attention: "F.scaled_dot_product_attention"}


class _Intercept(TorchFunctionMode):
    """Routes the matmuls called inside a converted model's ``forward()`` to MAC-contract sites."""

    def __init__(self, state: LowpState):
        super().__init__()
        self.st = state

    def __torch_function__(self, func, types_, args=(), kwargs=None):
        kwargs = kwargs or {}
        st = self.st
        if st.passthrough:
            return func(*args, **kwargs)
        handler = _HANDLERS.get(func)
        if handler is not None:
            return handler(st, args, kwargs)
        if func in _REFUSED:
            where = st.path[-1] or "the model's own forward()"
            raise LowpError(f"{where}: {_REFUSED[func]} cannot be put under the MAC contract; supported are "
                            f"{SUPPORTED}; list the module in keep_float=[...] to run it in float")
        return func(*args, **kwargs)


# ---- convert -----------------------------------------------------------------------------
def _unsupported(m: nn.Module) -> str | None:
    if isinstance(m, UNSUPPORTED):
        return type(m).__name__
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        if m.groups != 1:
            return f"{type(m).__name__} with groups={m.groups}"
        if m.padding_mode != "zeros":
            return f"{type(m).__name__} with padding_mode={m.padding_mode!r}"
        if m.padding == "same" and any(d * (k - 1) % 2 for k, d in zip(m.kernel_size, m.dilation)):
            return f"{type(m).__name__} with asymmetric 'same' padding"
    return None


def _under(path: str, roots) -> bool:
    return any(path == r or path.startswith(r + ".") for r in roots)


def convert(model: nn.Module, prop: str = "fp32", update: str | None = None, paper_bits: bool = False,
            acc=None, max_overflow: float = 1e-4, keep_float=(), range_every: int = 100,
            track_steps: int = 0, spec: RunSpec | None = None) -> nn.Module:
    """Put ``model``'s matmuls under the MAC contract at ``prop`` (propagation) and ``update``
    (stored parameters; default ``prop``) formats; returns ``model`` itself, converted in place.

    ``paper_bits``: widths count no sign bit (the paper's convention).  ``max_overflow`` and
    ``range_every`` (batches between range moves) drive the range controller of dynamic fixed
    point; for the first ``track_steps`` ``SGD`` steps ranges follow the data every batch (the
    trainer's first epoch).  ``keep_float``: module paths (as in ``named_modules()``) left in
    float.  ``acc``: the accumulator of every matmul, ``None`` (or ``"exact"``) the exact one of the
    MAC contract, else a float one (``"fp32"``, ``"bf16,chunk=4"``; not with dynamic fixed point).
    ``spec``: a ``RunSpec`` instead of the format arguments (the trainer's: paper bits already
    resolved); its ``range_every`` of None means 100.  In a quantized run the model's parameters and buffers
    become float64 and floating inputs are cast to it.
    """
    if getattr(model, "_fewbits_lowp", None) is not None:
        raise LowpError("this model is already converted")
    if spec is not None:
        precision = spec
        max_overflow, range_every = spec.max_overflow, spec.range_every or range_every
    else:
        precision = RunSpec.parse(prop, prop if update is None else update, paper_bits, max_overflow=max_overflow,
                                  range_every=range_every, acc=acc)
    keep_float = tuple(keep_float)
    names = dict(model.named_modules())
    missing = [k for k in keep_float if k not in names or k == ""]
    if missing:
        raise LowpError(f"keep_float names no module: {', '.join(map(repr, missing))} "
                        f"(module paths as in named_modules(), e.g. {', '.join(list(names)[1:4])})")
    bad = [f"{p} ({why})" for p, m in names.items()
           if not _under(p, keep_float) and (why := _unsupported(m)) is not None]
    if bad:
        raise LowpError(f"cannot put {', '.join(bad)} under the MAC contract: supported are {SUPPORTED}; "
                        "list such modules in keep_float=[...] to run them in float")
    qs = QuantState(precision, RangeController(max_overflow, range_every))
    st = LowpState(precision, qs, keep_float, track_steps)
    qs.controller.tracking = precision.dynamic and st.track_steps > 0
    if precision.quantized or precision.update is not None:
        model.to(torch.float64)
    for path, m in names.items():
        if _under(path, keep_float):
            continue
        swap = SWAPS.get(type(m))
        if swap is not None:
            m.__class__ = swap[0]
            m._fewbits_site, m._fewbits_lowp = path, st
            st.sites[path] = swap[1]
        if isinstance(m, Point):
            m._fewbits_lowp = st
        if path:
            m.register_forward_pre_hook(lambda _m, _a, p=path: st.path.append(p))
            m.register_forward_hook(lambda _m, _a, _o: _pop(st.path), always_call=True)
    for path in keep_float:
        names[path].register_forward_pre_hook(lambda _m, _a: _enter_float(st))
        names[path].register_forward_hook(lambda _m, _a, _o: _leave_float(st), always_call=True)
    dtype = torch.float64 if precision.quantized or precision.update is not None else None
    model.register_forward_pre_hook(lambda m, a: _enter(st, m, a, dtype))
    model.register_forward_hook(lambda m, a, o: _leave(st), always_call=True)
    model._fewbits_lowp = st
    return model


def _pop(stack) -> None:
    stack.pop()  # a forward hook's return value would replace the module's output


def _enter_float(st):
    st.passthrough += 1


def _leave_float(st):
    st.passthrough -= 1


def _enter(st: LowpState, model, args, dtype):
    st.qs.training = model.training
    st.calls.clear()
    st.mode.__enter__()
    if dtype is not None:
        return tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)
    return None


def _leave(st: LowpState):
    st.mode.__exit__(None, None, None)


def describe(model: nn.Module) -> dict:
    """What a report says about a converted model: formats, its sites, what stayed in float."""
    st = state_of(model)
    return {"formats": st.precision.describe(), "sites": dict(st.sites), "keep_float": list(st.keep_float),
            "elementwise": "float64 between matmuls, quantized at the next matmul's input"
            if st.precision.quantized else "float32"}


# ---- the paper's update ------------------------------------------------------------------------
class SGD:
    """The paper's update (``fewbits.training.update``) for a converted model.

    Site weights (``nn.Linear``/``nn.Conv*``): momentum at the propagation width,
    stored weights at the update width, then ``max_norm`` on each output unit's
    weights (the paper's column norms of its K x N matrix; a conv filter's norm).
    Every other parameter (batch norm, parameters used by ``@`` in ``forward()``)
    gets the same momentum rule at the same formats, without the norm.
    Parameters of ``keep_float`` modules are updated in float.  ``step()`` also
    ends the batch for the range controller.
    """

    def __init__(self, model: nn.Module, lr: float, momentum: float = 0.0, max_norm: float | None = None):
        self.model, self.st = model, state_of(model)
        self.lr, self.momentum, self.max_norm = float(lr), float(momentum), max_norm
        self.steps = 0
        self.site_modules = {m._fewbits_site: m for m in model.modules() if hasattr(m, "_fewbits_site")}
        owned = {id(p) for m in self.site_modules.values() for p in m.parameters(recurse=False)}
        floats = {id(p) for k in self.st.keep_float for p in model.get_submodule(k).parameters()}
        self.others = [(n, p) for n, p in model.named_parameters() if id(p) not in owned]
        self.float_ids = floats
        self.buf: dict[str, torch.Tensor] = {}

    def zero_grad(self) -> None:
        for p in self.model.parameters():
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        from .update import apply_update, fused_weight_update

        qs = self.st.qs
        for site, m in self.site_modules.items():
            if m.weight.grad is None:
                continue  # the site did not run in this step
            w, n = m.weight, m.weight.shape[0]
            u = self._momentum(site, w)
            opt = self._options(site)
            # in place on the N x K rows of the layer's own weight (no copies); else the unfused rule
            if not fused_weight_update(qs, site, w.data.view(n, -1), u, w.grad.reshape(n, -1),
                                       self.lr * opt.lr_scale, self.momentum, opt.max_norm, unit_rows=True):
                layer = self._paper_layer(site, m)
                apply_update(qs, layer, self.lr, self.momentum)
                if layer.weight.data_ptr() != w.data_ptr():
                    w.copy_(layer.weight.detach().t().reshape(w.shape))
            else:
                self._bias_update(site, m)
            m.weight.grad = None
        for name, p in self.others:
            if p.grad is not None:
                self._other_update(name, p)
        ctl = qs.controller
        ctl.end_batch()
        self.steps += 1
        ctl.tracking = self.st.precision.dynamic and self.steps < self.st.track_steps

    def _options(self, site: str) -> SiteOptions:
        """The site's max-norm and learning-rate scale: its ``configure`` settings, else this optimizer's."""
        opt = self.st.options.get(site)
        if opt is None:
            return SiteOptions(max_norm=self.max_norm)
        return opt if opt.max_norm is not _DEFAULT else dataclasses.replace(opt, max_norm=self.max_norm)

    def _momentum(self, site: str, w: torch.Tensor) -> torch.Tensor:
        """The site's weight momentum, N x K (a row per output unit); ``buf[site.update_w]`` is its K x N view."""
        key = site + ".update_w"
        if key not in self.buf:
            u = torch.zeros(w.shape[0], w[0].numel(), dtype=w.dtype)
            self.buf[key] = u.t()
        return self.buf[key].t()

    def _bias_momentum(self, site: str, n: int, dtype) -> torch.Tensor:
        key = site + ".update_b"
        if key not in self.buf:
            self.buf[key] = torch.zeros(n, dtype=dtype)
        return self.buf[key]

    def _bias_update(self, site: str, m: nn.Module) -> None:
        """``apply_update``'s bias rule (the weights done by the fused kernel)."""
        b = m.bias
        if b is None:
            return
        qs = self.st.qs
        ub = self._bias_momentum(site, b.shape[0], b.dtype)
        lr = self.lr * self._options(site).lr_scale
        ub.copy_(qs.quantize(f"{site}.update_b", self.momentum * ub - lr * b.grad).values)
        b.copy_(qs.quantize(f"{site}.b_stored", b + ub, width="update").values)
        b.grad = None

    def _paper_layer(self, site: str, m: nn.Module):
        """The site's weights as the paper's K x N matrix: a view of the layer's own weight, or a
        contiguous copy when the column norms are needed (their float sum order is the K x N one)."""
        w = m.weight
        n = w.shape[0]
        opt = self._options(site)
        if opt.max_norm is None:
            wt = w.view(n, -1).t()
            wt.grad = w.grad.reshape(n, -1).t().to(wt.dtype)
        else:
            wt = nn.Parameter(w.detach().reshape(n, -1).t().contiguous(), requires_grad=True)
            wt.grad = w.grad.detach().reshape(n, -1).t().contiguous().to(wt.dtype)
        if m.bias is not None:
            b = m.bias
        else:
            b = nn.Parameter(torch.zeros(n, dtype=w.dtype))
            b.grad = torch.zeros(n, dtype=w.dtype)
        uw = self.buf[site + ".update_w"]
        ub = self._bias_momentum(site, n, w.dtype)
        return types.SimpleNamespace(name=site, weight=wt, bias=b, update_w=uw, update_b=ub, lr_scale=opt.lr_scale,
                                     max_col_norm=opt.max_norm)

    def _other_update(self, name: str, p: torch.Tensor) -> None:
        qs = self.st.qs
        key = name + ".update"
        if key not in self.buf:
            self.buf[key] = torch.zeros_like(p)
        u = self.buf[key]
        step = self.momentum * u - self.lr * p.grad
        if id(p) in self.float_ids:
            u.copy_(step)
            p.add_(u)
        else:
            u.copy_(qs.quantize(f"{name}.update", step).values)
            p.copy_(qs.quantize(f"{name}.stored", p + u, width="update").values)
        p.grad = None


# ---- explicit points and per-site settings (what the paper's networks need) ------------------------
class _PointFn(torch.autograd.Function):
    """Forward: ``fn(x)`` quantized at ``group``; backward: the gradient passed to ``x`` as it is
    (the paper's straight-through view of a quantization point), quantized at ``grad_group`` if given."""

    @staticmethod
    def forward(ctx, x, qs, group, grad_group, fn):
        ctx.qs, ctx.grad_group = qs, grad_group
        v = x.detach() if fn is None else fn(x.detach())
        return qs.quantize(group, v).values.to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        if ctx.grad_group is not None:
            g = ctx.qs.quantize(ctx.grad_group, g).values.to(g.dtype)
        return g, None, None, None, None


class Point(nn.Module):
    """An explicit quantization point of a converted model: the input quantized at range group
    ``group`` (counted for the range controller; a site reading this output takes the group's
    format without counting it again when ``configure``'d with ``input_group=group``).

    The paper's networks quantize a layer's output ``y`` *before* its dropout; a site only
    quantizes where a value enters it, after the dropout, so they need this point.  ``fn``: an
    elementwise function applied before quantizing whose gradient is taken as the identity
    (``paper_softmax``); ``grad_group``: the gradient is quantized there on its way back.
    """

    def __init__(self, group: str, grad_group: str | None = None, fn=None):
        super().__init__()
        self.group, self.grad_group, self.fn = group, grad_group, fn

    def forward(self, x):
        st = getattr(self, "_fewbits_lowp", None)
        if st is None:
            raise LowpError(f"point {self.group!r}: its model was not converted: call "
                            "fewbits.training.lowp.convert(model, ...) first")
        with st.inside():
            return _PointFn.apply(x, st.qs, self.group, self.grad_group, self.fn)


def _softmax64(z: torch.Tensor) -> torch.Tensor:
    return torch.softmax(z.to(torch.float64), dim=1)


def paper_softmax(name: str) -> Point:
    """The paper's output layer: the softmax of the logits (in float64) quantized at ``name.y``;
    backward takes the gradient it is given as the logits' gradient, quantized at ``name.dEdy``:
    the paper's combined softmax + NLL gradient, ``(p - onehot(t)) / n_classes``, is what the
    trainer gives it (``out.backward((p - t) / n_classes)``)."""
    return Point(f"{name}.y", f"{name}.dEdy", _softmax64)


_DEFAULT = object()  # SiteOptions.max_norm: the optimizer's own


@dataclasses.dataclass(frozen=True)
class SiteOptions:
    """``SGD`` settings of one site: ``max_norm`` (None: no constraint) and a learning-rate factor."""

    max_norm: object = _DEFAULT
    lr_scale: float = 1.0


class _PaperFloatLinear(torch.autograd.Function):
    """An unquantized linear site as the paper's float32 matmuls of its K x N weight matrix
    (``configure(paper_float=True)``): forward ``x @ W + b``, input gradient ``dEdz @ W.T``, weight
    gradient ``x.T @ dEdz``, bias gradient ``ones @ dEdz``.  Float32 BLAS sums in an order that
    depends on the operands' layout: this is the order the built-in networks had on their own
    layer classes, kept so their fp32 baseline is unchanged bit for bit (a K x N copy of the
    weights per step; ``F.linear``'s N x K layout and column sums round differently)."""

    @staticmethod
    def forward(ctx, x, w, b):
        rows = x.reshape(-1, x.shape[-1])
        wkn = w.t().contiguous()
        z = rows @ wkn
        if b is not None:
            z = z + b
        ctx.save_for_backward(rows, wkn)
        ctx.x_shape, ctx.has_b = x.shape, b is not None
        return z.reshape(*x.shape[:-1], w.shape[0])

    @staticmethod
    def backward(ctx, g):
        rows, wkn = ctx.saved_tensors
        dq = g.reshape(-1, g.shape[-1])
        dx = (dq @ wkn.t()).reshape(ctx.x_shape) if ctx.needs_input_grad[0] else None
        dw = (rows.t() @ dq).t() if ctx.needs_input_grad[1] else None
        db = (torch.ones(1, dq.shape[0], dtype=dq.dtype) @ dq).reshape(-1) if ctx.has_b else None
        return dx, dw, db


def _unfold_rows(img: torch.Tensor, k: int, padding: int) -> torch.Tensor:
    """(B*L) x (C*k*k) im2col rows of an image (the order of the paper's K x N convolution matrix)."""
    u = F.unfold(img, k, padding=padding)
    return u.transpose(1, 2).reshape(-1, u.shape[1])


class _PaperFloatConv2d(torch.autograd.Function):
    """An unquantized stride-1 convolution site as the paper's float32 im2col matmuls of its
    (C*k*k) x F weight matrix (``configure(paper_float=True)``): forward ``rows @ W + b``, weight
    gradient ``rows.T @ dEdz``, bias gradient ``ones @ dEdz``, input gradient the full correlation
    of ``dEdz`` with the flipped filters as one im2col matmul -- the built-in networks' rounding
    before they were defined on ``lowp`` (``F.conv2d`` sums in another order)."""

    @staticmethod
    def forward(ctx, x, w, b, padding):
        B, C, H, W = x.shape
        Fo, k = w.shape[0], w.shape[-1]
        rows = _unfold_rows(x, k, padding)
        wkn = w.reshape(Fo, -1).t().contiguous()
        z = rows @ wkn
        if b is not None:
            z = z + b
        ho, wo = H + 2 * padding - k + 1, W + 2 * padding - k + 1
        ctx.save_for_backward(rows, wkn)
        ctx.geom, ctx.has_b = (B, C, H, W, ho, wo, k, padding), b is not None
        return z.reshape(B, ho, wo, Fo).permute(0, 3, 1, 2).contiguous()

    @staticmethod
    def backward(ctx, g):
        rows, wkn = ctx.saved_tensors
        B, C, H, W, ho, wo, k, padding = ctx.geom
        Fo = wkn.shape[1]
        dq = g.permute(0, 2, 3, 1).reshape(-1, Fo)
        dx = dw = db = None
        if ctx.needs_input_grad[1]:
            dw = (rows.t() @ dq).t().reshape(Fo, C, k, k)
        if ctx.has_b:
            db = (torch.ones(1, dq.shape[0], dtype=dq.dtype) @ dq).reshape(-1)
        if ctx.needs_input_grad[0]:
            dimg = dq.reshape(B, ho, wo, Fo).permute(0, 3, 1, 2).contiguous()
            wf = wkn.reshape(C, k, k, Fo).flip(1, 2).permute(3, 1, 2, 0).reshape(Fo * k * k, C)
            dx = (_unfold_rows(dimg, k, k - 1 - padding) @ wf).reshape(B, H, W, C).permute(0, 3, 1, 2).contiguous()
        return dx, dw, db, None


def _paper_float_fits(m: nn.Module) -> bool:
    """A site ``_PaperFloatLinear``/``_PaperFloatConv2d`` can compute: a linear layer, or a square
    stride-1 2-D convolution with equal zero padding on every side."""
    if isinstance(m, nn.Linear):
        return True
    return (isinstance(m, nn.Conv2d) and m.stride == (1, 1) and m.dilation == (1, 1) and not isinstance(m.padding, str)
            and m.padding[0] == m.padding[1] and m.kernel_size[0] == m.kernel_size[1])


def configure(model: nn.Module, site: str, *, input_group: str | None = None, grad_group: str | None = None,
              max_norm=_DEFAULT, lr_scale: float = 1.0, eval_scale: float = 1.0, paper_float: bool = False) -> None:
    """Per-site settings of a converted model (the paper's networks are defined with them).

    ``input_group``: the site's input is the output of the ``Point`` of that group (possibly
    through exact operations: dropout masks, reshapes): quantized at its format and range, not
    counted again.  ``grad_group``: the range group of the site's input gradient (default
    ``site.dEdx``; the paper names it after the layer below, ``L0.dEdy``).  ``max_norm`` and
    ``lr_scale``: ``SGD``'s column-norm constraint and learning-rate factor for this site
    (default: the optimizer's ``max_norm``, factor 1).  ``eval_scale``: a power of two the
    site's quantized weights and bias are multiplied by when the model is not training (the
    paper's dropout compensation; fixed point re-labels the codes, exactly).  ``paper_float``:
    an unquantized (fp32) run computes the site's matmuls on the paper's K x N weight matrix
    (``_PaperFloatLinear``, ``_PaperFloatConv2d``: the built-in networks' float32 rounding,
    slower than ``F.linear``/``F.conv2d``)."""
    st = state_of(model)
    if site not in st.sites:
        raise LowpError(f"configure: no site {site!r} (sites: {', '.join(st.sites) or 'none'})")
    if not (eval_scale > 0 and math.log2(eval_scale) == int(math.log2(eval_scale))):
        raise LowpError(f"configure: eval_scale {eval_scale} of {site!r} is not a power of two")
    if not lr_scale > 0:
        raise LowpError(f"configure: lr_scale {lr_scale} of {site!r} is not positive")
    qs = st.qs
    if input_group is not None:
        qs.aliases[f"{site}.x"] = input_group
        qs.uncounted.add(f"{site}.x")
    if grad_group is not None:
        qs.aliases[f"{site}.dEdx"] = grad_group
    for p in ("w", "b"):
        if eval_scale != 1.0:
            qs.eval_scale[f"{site}.{p}"] = float(eval_scale)
        else:
            qs.eval_scale.pop(f"{site}.{p}", None)
    st.options[site] = SiteOptions(max_norm, float(lr_scale))
    if paper_float:
        if not _paper_float_fits(model.get_submodule(site)):
            raise LowpError(f"configure: paper_float is for nn.Linear and square stride-1 nn.Conv2d sites "
                            f"(symmetric padding); {site!r} is a {st.sites[site]} of another kind")
        st.paper_float.add(site)
    else:
        st.paper_float.discard(site)


# ---- capture -------------------------------------------------------------------------------------
@contextlib.contextmanager
def capture(model: nn.Module, layers, out, meta: dict | None = None):
    """Record the matmuls of ``layers`` (site names: module paths, or ``path.matmul0`` for a call
    inside a ``forward()``) run inside the ``with`` block -- one training step -- and write them to
    ``out`` in the capture format of ``fewbits cosim --capture``.  Yields the ``Recorder``."""
    from .capture import Recorder

    st = state_of(model)
    if not st.precision.quantized:
        raise LowpError("capture needs a quantized run: an fp32 model has no codes to record")
    cap = Recorder(list(layers), acc=st.precision.acc)
    st.qs.mac_hooks.append(cap.hook)
    try:
        yield cap
    finally:
        st.qs.mac_hooks.remove(cap.hook)
    seen = {m.layer for m in cap.matmuls.values()}
    missing = sorted(set(layers) - seen)
    if missing:
        raise LowpError(f"capture: no matmul of {', '.join(missing)} ran inside the block "
                        f"(sites: {', '.join(sorted(st.sites)) or 'none yet'})")
    cap.save(out, {"source": "fewbits.training.lowp", "formats": {"prop": fmt_str(st.precision.prop),
                                                                  "update": fmt_str(st.precision.update)},
                   **(meta or {})}, run_spec=hardware_spec(model))


def hardware_spec(model: nn.Module) -> RunSpec:
    """The model's ``RunSpec`` with the MAC array of its largest site (``hardware_shape``): the spec
    a capture records, from which ``fewbits cosim --capture DIR`` generates the design."""
    import dataclasses

    st = state_of(model)
    return dataclasses.replace(st.precision, **hardware_shape(st.shapes))


#: the array side ``hardware_shape`` proposes: a sweep's default array (any layer is tiled onto it; a
#: 4 x 4 fp32 array took 5 minutes to elaborate and longer to synthesize here, per sweep point)
ARRAY_SIDE = 2


def hardware_shape(shapes: dict) -> dict:
    """``rows``, ``cols`` and ``k_max`` of a MAC array for sites of forward shapes ``{site: (K, N)}``:
    ``k_max`` the longest dot product of the largest layer (the one with the largest K; the longer
    gradient sums are split into chunks of at most ``k_max``), ``rows = cols = ARRAY_SIDE``, columns
    no more than that layer's outputs."""
    if not shapes:
        raise LowpError("no matmul has run yet: the MAC array follows from the sites' shapes")
    k, n = max(shapes.values(), key=lambda kn: kn[0])
    return {"rows": ARRAY_SIDE, "cols": max(1, min(ARRAY_SIDE, n)), "k_max": int(k)}


def largest_site(model: nn.Module) -> str:
    """The site with the longest forward dot product (the first of equals): the layer a sweep captures."""
    shapes = state_of(model).shapes
    if not shapes:
        raise LowpError("no matmul has run yet: run the model once to find its sites")
    return max(shapes, key=lambda s: shapes[s][0])
