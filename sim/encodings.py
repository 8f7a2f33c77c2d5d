"""The named float encodings and the accepted format strings: one table, as cvfpu's ``fpnew_pkg`` keeps them.

Why a table of plain data: the format classes print themselves through it and the parser
reads through it, so neither module needs the other (no import cycle in ``sim``).
"""

from __future__ import annotations

from .modes import Special

# alias -> (exponent bits, mantissa bits, special-value encoding); bias 2**(E-1)-1, with subnormals
FLOAT_ALIASES = {
    "fp64": (11, 52, Special.IEEE),
    "fp32": (8, 23, Special.IEEE),
    "fp16": (5, 10, Special.IEEE),
    "bf16": (8, 7, Special.IEEE),
    "fp8_e5m2": (5, 2, Special.IEEE),
    "fp8_e4m3": (4, 3, Special.FN),  # OCP E4M3: no infinities, max 448
}

ACCEPTED = (
    "accepted: fixed:W:F, ufixed:W:F, dfixed:W[:F], udfixed:W[:F], float:E:M, acc:W:F, "
    + "|".join(FLOAT_ALIASES)
    + "; options after commas: round=rne|rna|rtz|rdn, overflow=sat|wrap, symmetric, "
    "bias=N, subnormals=on|off, special=ieee|fn|sat, chunk=N (a float accumulator: fp32,chunk=4)"
)
