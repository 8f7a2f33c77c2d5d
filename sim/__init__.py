"""fewbits.sim: number formats, rounding and the bit-exact MAC reference model.

The single source of truth for every bit width: training, hardware,
co-simulation and reports all take these format objects.
"""

from .accumulator import Accumulator
from .errors import FormatError
from .fixed import DynamicFixed, Fixed
from .floating import Float, bf16, fp8_e4m3, fp8_e5m2, fp16, fp32, fp64
from .mac import default_accumulator, mac_reference
from .modes import FN, IEEE, RDN, RNA, RNE, RTZ, SAT, WRAP, Overflow, Rounding, Special
from .parse import format_to_string, paper_convention, paper_format, paper_width, parse_format
from .run import RunSpec
from .spec import MacSpec

__all__ = [
    "Accumulator", "DynamicFixed", "Fixed", "Float", "FormatError", "MacSpec", "RunSpec",
    "Overflow", "Rounding", "Special", "RNE", "RNA", "RTZ", "RDN", "SAT", "WRAP", "IEEE", "FN",
    "bf16", "fp8_e4m3", "fp8_e5m2", "fp16", "fp32", "fp64",
    "default_accumulator", "mac_reference", "format_to_string", "paper_convention", "paper_width", "paper_format",
    "parse_format",
]
