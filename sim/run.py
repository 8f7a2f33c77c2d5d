"""``RunSpec``: everything about the numbers of one training run, decided once.

Why: a bit width enters once, at the CLI or in a sweep file, and is never
re-derived.  A run has one *propagation* format (every w, b, z, y, dEdy, dEdz,
dEdw, dEdb and momentum value) and one wider *update* format (the stored
parameters after ``W + update``); ``fp32`` means "no quantization at all" (the
float32 baseline, held as ``None``).  The paper's bit-counting convention is
applied here, once, by ``parse.paper_convention``; training, the hardware
stages and the report all take the resulting spec.  Its ``mac(kind)`` is the
``MacSpec`` of each of the three matmuls of a layer that the hardware of this
run must build.

A dynamic fixed point format gives each tensor group its own range; its
``frac`` is derived from the group's number of integer bits
(``group_format``), so a group shared by both widths (``w``, ``b``) keeps one
range, as in the paper's code (``NOIB``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json

from .errors import FormatError, json_object
from .floating import fp32
from .parse import paper_convention, paper_width, parse_format

NO_QUANT = "fp32"
#: the three matmuls of a layer and step: forward ``x@W``, input gradient ``dEdz@W.T``, weight gradient ``x.T@dEdz``
MATMULS = ("forward", "input_grad", "weight_grad")
_RUN_KINDS = ("fixed", "dfixed", "float")
_ACCEPTED = "accepted fixed:W:F, dfixed:W, float:E:M, aliases, or fp32"


def run_format(text, paper_bits: bool = False):
    """A ``fewbits.sim`` format for ``text`` (a string or a format), or ``None`` for fp32 (no quantization).

    With ``paper_bits`` the widths of ``fixed``/``dfixed`` count no sign bit (``paper_convention``).
    Raises ``FormatError`` on a malformed string or a kind a run cannot use.
    """
    if isinstance(text, str) and text.strip().lower() == NO_QUANT:
        return None
    fmt = parse_format(text)
    if fmt.kind == "float" and fmt.exp == 8 and fmt.man == 23 and fmt.bias == 127:
        return None  # float32 products of float32 values: the unquantized baseline
    if fmt.kind not in _RUN_KINDS:
        raise FormatError(f"bad run format {text!r}: {_ACCEPTED}")
    return paper_convention(fmt) if paper_bits else fmt


EXACT_ACC = "exact"


def run_accumulator(text):
    """The accumulator of a run: ``None`` for ``exact`` (the MAC contract's exact accumulator), else a
    ``FloatAccumulator`` (``fp32``, ``float:8:10,chunk=4``); a fixed ``acc:W:F`` is not a run setting."""
    from .accumulator import FloatAccumulator, as_accumulator

    if text is None or isinstance(text, FloatAccumulator):
        return text
    if isinstance(text, str) and text.strip().lower() == EXACT_ACC:
        return None
    acc = as_accumulator(parse_format(text))
    if not isinstance(acc, FloatAccumulator):
        raise FormatError(f"bad run accumulator {text!r}: accepted exact, or a float format with an optional "
                          "chunk=N (fp32, bf16, float:8:10,chunk=4)")
    return acc


def fmt_str(fmt) -> str:
    return NO_QUANT if fmt is None else str(fmt)


def _check(ok: bool, what: str, value, accepted: str):
    if not ok:
        raise FormatError(f"bad {what} {value!r}: accepted {accepted}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Formats (``None`` = unquantized float32), range-controller settings and MAC array shape of a run."""

    prop: object = None
    update: object = None
    max_overflow: float = 1e-4  # dynamic fixed point: maximum overflow rate per group
    range_every: int | None = None  # batches between range updates (None: the trainer's default)
    range_warmup: int = 0  # epochs at high precision to find the initial ranges
    warmup_width: int = 21  # high-precision width (with sign) of the warm-up: 21+21+log2(K) <= 53
    rows: int = 1  # the MAC array the hardware of this run builds
    cols: int = 1
    k_max: int = 1024
    acc: object = None  # None: the exact accumulator; else a float accumulator (``run_accumulator``)
    multiplier: str = "yosys"  # the array's product architecture (``MacSpec.multiplier`` checks it)

    def __post_init__(self):
        for name in ("prop", "update"):
            v = getattr(self, name)
            object.__setattr__(self, name, None if v is None else run_format(v))
        object.__setattr__(self, "acc", run_accumulator(self.acc))
        from .spec import MULTIPLIERS

        _check(self.multiplier in MULTIPLIERS, "multiplier", self.multiplier, ", ".join(MULTIPLIERS))
        if self.acc is not None and self.prop is not None and self.prop.kind == "dfixed":
            raise FormatError(f"bad accumulator {str(self.acc)!r} for dynamic fixed point {self.prop}: a float "
                              "accumulator takes no runtime shift; accepted exact, or fixed or float formats")
        mo = self.max_overflow
        _check(isinstance(mo, (int, float)) and not isinstance(mo, bool) and 0 <= mo <= 1,
               "max_overflow", mo, "a number in 0..1")
        object.__setattr__(self, "max_overflow", float(mo))
        _check(self.range_every is None or (_is_int(self.range_every) and self.range_every >= 1),
               "range_every", self.range_every, "an integer >= 1 or null")
        for name, lo in (("range_warmup", 0), ("warmup_width", 2), ("rows", 1), ("cols", 1), ("k_max", 1)):
            v = getattr(self, name)
            _check(_is_int(v) and v >= lo, name, v, f"an integer >= {lo}")

    @classmethod
    def parse(cls, prop: str = NO_QUANT, update: str = NO_QUANT, paper_bits: bool = False, **settings) -> "RunSpec":
        """The spec of format strings as a user gives them (``paper_bits``: the paper's bit counting)."""
        return cls(run_format(prop, paper_bits), run_format(update, paper_bits), **settings)

    # ---- views -------------------------------------------------------------
    @property
    def quantized(self) -> bool:
        return self.prop is not None

    @property
    def dynamic(self) -> bool:
        return any(f is not None and f.kind == "dfixed" for f in (self.prop, self.update))

    @property
    def prop_fmt(self):
        """The propagation format as a number format (fp32 for an unquantized run)."""
        return fp32 if self.prop is None else self.prop

    @property
    def update_fmt(self):
        return fp32 if self.update is None else self.update

    @property
    def prop_paper_bits(self) -> int:
        """The propagation width as the paper counts it (no sign bit)."""
        return paper_width(self.prop_fmt)

    @property
    def update_paper_bits(self) -> int:
        return paper_width(self.update_fmt)

    def widened(self, width: int) -> "RunSpec":
        """The same spec with every dynamic fixed point width set to ``width`` (range warm-up)."""

        def wide(f):
            return dataclasses.replace(f, width=width) if f is not None and f.kind == "dfixed" else f

        return dataclasses.replace(self, prop=wide(self.prop), update=wide(self.update))

    def describe(self) -> dict:
        d = {"prop": fmt_str(self.prop), "update": fmt_str(self.update)}
        if self.acc is not None:
            d["acc"] = str(self.acc)
        return d

    def mac(self, kind: str = "forward"):
        """The ``MacSpec`` of one matmul kind (``MATMULS``): every operand, bias and output of the
        three matmuls is a propagation value, so all three multiply and round in the propagation format."""
        from .spec import MacSpec

        if kind not in MATMULS:
            raise FormatError(f"bad matmul {kind!r}: accepted {', '.join(MATMULS)}")
        f = self.prop_fmt
        return MacSpec(f, f, f, acc_fmt=self.acc, rows=self.rows, cols=self.cols, k_max=self.k_max,
                       multiplier=self.multiplier)

    # ---- serialization -----------------------------------------------------
    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d.update(prop=fmt_str(self.prop), update=fmt_str(self.update))
        if self.multiplier == "yosys":
            del d["multiplier"]  # the default product: the same keys (and store digests) as before architectures
        if self.acc is None:
            del d["acc"]  # the exact accumulator: the same keys (and store digests) as before accumulators
        else:
            d["acc"] = str(self.acc)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(d, dict):
            raise FormatError("bad RunSpec: not an object; accepted the output of to_dict()")
        unknown = set(d) - known
        if unknown:
            raise FormatError(f"bad RunSpec key(s) {sorted(unknown)}: accepted {sorted(known)}")
        return cls(**{k: (run_format(v) if k in ("prop", "update") else v) for k, v in d.items()})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "RunSpec":
        return cls.from_dict(json_object(text, "RunSpec"))

    def key(self) -> str:
        """sha256 of the canonical JSON: the same in every process and on every machine."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()


@functools.lru_cache(maxsize=4096)  # formats are immutable; every quantization asks for one
def group_format(base, int_bits: int | None):
    """The format of one tensor group: ``base`` itself, or for dynamic fixed point
    ``base`` at ``frac = width - sign - int_bits``."""
    if base is None or base.kind != "dfixed":
        return base
    sign = 1 if base.signed else 0
    return base.with_frac(base.width - sign - int(int_bits))


def int_bits_of(fmt) -> int:
    """Inverse of ``group_format``: integer bits (excluding the sign) of a fixed format."""
    sign = 1 if fmt.signed else 0
    return fmt.width - sign - fmt.frac


def frac_for_int_bits(width: int, int_bits: int, paper_bits: bool = False) -> int:
    """The ``F`` of ``fixed:width:F`` whose radix point has ``int_bits`` integer bits above the sign,
    with ``width`` counted as the user gave it (``paper_bits``: without the sign)."""
    from .fixed import Fixed

    fmt = paper_convention(Fixed(width, 0)) if paper_bits else Fixed(width, 0)
    return fmt.width - 1 - int_bits
