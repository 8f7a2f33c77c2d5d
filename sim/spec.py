"""``MacSpec``: the one object a bit width enters through, from the CLI to the report."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from .accumulator import Accumulator, FloatAccumulator, as_accumulator
from .errors import FormatError, json_object
from .fixed import DynamicFixed, Fixed
from .floating import Float
from .mac import default_accumulator, mac_reference, sum_bounds
from .modes import Overflow
from .parse import format_to_string, parse_format

MAX_SIDE = 32
_FORMATS = ("a_fmt", "b_fmt", "out_fmt", "acc_fmt", "bias_fmt")
MULTIPLIERS = ("yosys", "booth", "dadda")   # kept equal to fewbits.hw.multipliers.ARCHS (sim imports no hw)


def runtime_shifts(fa: int, fb: int, fo: int, fbias: int | None = None) -> tuple[int, int | None]:
    """The runtime shifts of dynamic fixed point from the current fracs: ``in_shift = fa + fb - fo``
    (products onto the output grid) and ``in_bias_shift = fa + fb - fbias`` (the bias's own range onto
    the products' grid; None without a bias range).  The one place these are derived: the test
    tiles, the co-simulation vectors and the power vectors all ask here."""
    prod = int(fa) + int(fb)
    return prod - int(fo), (None if fbias is None else prod - int(fbias))


@dataclasses.dataclass(frozen=True)
class MacSpec:
    """Formats and shape of one MAC array; ``compute()`` is its golden model, ``create()`` its hardware."""

    a_fmt: object
    b_fmt: object
    out_fmt: object
    acc_fmt: object = None
    bias_fmt: object = None
    rows: int = 1
    cols: int = 1
    k_max: int = 1024
    multiplier: str = "yosys"   # fixed-point product architecture: yosys | booth | dadda (fewbits.hw.multipliers)

    def __post_init__(self):
        if self.multiplier not in MULTIPLIERS:
            raise FormatError(f"bad multiplier {self.multiplier!r}: accepted {', '.join(MULTIPLIERS)}")
        for name in ("a_fmt", "b_fmt", "out_fmt"):
            fmt = parse_format(getattr(self, name))
            if not isinstance(fmt, (Fixed, DynamicFixed, Float)):
                raise FormatError(f"bad {name[:-4]} format {fmt}: accepted fixed, ufixed, dfixed or float formats")
            object.__setattr__(self, name, fmt)
        for name, value in (("rows", self.rows), ("cols", self.cols)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIDE:
                raise FormatError(f"bad {name} {value!r}: accepted 1..{MAX_SIDE}")
        if isinstance(self.k_max, bool) or not isinstance(self.k_max, int) or self.k_max < 1:
            raise FormatError(f"bad k_max {self.k_max!r}: accepted an integer >= 1")
        bias = self.out_fmt if self.bias_fmt is None else parse_format(self.bias_fmt)
        if not isinstance(bias, (Fixed, DynamicFixed, Float)):
            raise FormatError(f"bad bias format {bias}: accepted fixed, ufixed, dfixed or float formats")
        object.__setattr__(self, "bias_fmt", bias)
        if self.acc_fmt is None:
            acc = default_accumulator(self.a_fmt, self.b_fmt, self.k_max, bias)
        else:
            acc = as_accumulator(parse_format(self.acc_fmt))
            if isinstance(acc, FloatAccumulator):
                self._check_float_accumulator(acc)
            else:
                self._check_accumulator(acc, bias)
        object.__setattr__(self, "acc_fmt", acc)

    def _check_accumulator(self, acc: Accumulator, bias):
        frac, lo, hi = sum_bounds(self.a_fmt, self.b_fmt, self.k_max, bias, acc_frac=acc.frac)
        if acc.overflow is Overflow.SAT and not acc.holds(lo, hi):
            need = default_accumulator(self.a_fmt, self.b_fmt, self.k_max, bias)
            raise FormatError(
                f"bad accumulator {acc}: too narrow for k_max={self.k_max} (sums reach [{lo}, {hi}] on its grid); "
                f"accepted: at least {need.width} bits here, or an explicit overflow=wrap")

    def _check_float_accumulator(self, acc: FloatAccumulator):
        if self.dynamic:
            raise FormatError(f"bad accumulator {acc}: a float accumulator with dynamic fixed point (a runtime "
                              "shift) is not defined; accepted fixed or float formats with it")
        if acc.chunk > self.k_max:
            raise FormatError(f"bad accumulator {acc}: chunk={acc.chunk} exceeds k_max={self.k_max} (the chunk "
                              f"adder would never fill); accepted chunk=1..{self.k_max}")

    # ---- the golden model --------------------------------------------
    def compute(self, a_codes, b_codes, bias_codes=None, shift=None, bias_shift=None):
        """``mac_reference`` with these formats (``shift``, ``bias_shift``: the runtime shifts of
        dynamic fixed point, the hardware's ``in_shift`` and ``in_bias_shift``)."""
        return mac_reference(a_codes, b_codes, self.a_fmt, self.b_fmt, self.acc_fmt, self.out_fmt,
                             bias_codes=bias_codes, bias_fmt=self.bias_fmt, shift=shift, bias_shift=bias_shift)

    def create(self):
        """The ``fewbits.hw`` MacArray for this spec (hardware is imported only here)."""
        from fewbits.hw import create_mac_array

        return create_mac_array(self)

    @property
    def dynamic(self) -> bool:
        return any(isinstance(f, DynamicFixed) for f in (self.a_fmt, self.b_fmt, self.out_fmt, self.bias_fmt))

    # ---- serialization -----------------------------------------------
    def to_dict(self) -> dict:
        d = {name: format_to_string(getattr(self, name)) for name in _FORMATS}
        d.update(rows=self.rows, cols=self.cols, k_max=self.k_max)
        if self.multiplier != "yosys":      # omitted when default: every existing key and hash stays the same
            d["multiplier"] = self.multiplier
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "MacSpec":
        known = set(_FORMATS) | {"rows", "cols", "k_max", "multiplier"}
        unknown = set(d) - known
        if unknown:
            raise FormatError(f"bad MacSpec key(s) {sorted(unknown)}: accepted {sorted(known)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "MacSpec":
        return cls.from_dict(json_object(text, "MacSpec"))

    def key(self) -> str:
        """A stable hash of the canonical JSON (same in every process and on every machine)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()
