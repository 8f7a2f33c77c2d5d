"""Glue between fewbits.sim objects and the exact models in oracles.py (tests only)."""
from __future__ import annotations

import torch

from . import oracles as O


def name(enum_or_str) -> str:
    """Rounding/Overflow/Special member (or plain string) -> lower-case name."""
    v = getattr(enum_or_str, "value", enum_or_str)
    return str(v).lower()


def model_of(fmt):
    """The oracle model of a sim format, read from its documented attributes."""
    kind = fmt.kind
    if kind == "dfixed":
        fmt = fmt.fixed
        kind = fmt.kind
    if kind == "fixed":
        return O.FixedModel(fmt.width, fmt.frac, bool(fmt.signed), name(fmt.round),
                            name(fmt.overflow), bool(fmt.symmetric))
    if kind == "float":
        return O.FloatModel(fmt.exp, fmt.man, fmt.bias, bool(fmt.subnormals),
                            name(fmt.special), name(fmt.round))
    raise AssertionError(f"unknown kind {kind!r}")


def f64(values) -> torch.Tensor:
    return torch.tensor([float(v) for v in values], dtype=torch.float64)


def i64(values) -> torch.Tensor:
    return torch.tensor([int(v) for v in values], dtype=torch.int64)


def hexes(values):
    """Floats (tensor or iterable) -> float.hex strings: exact, sign of zero kept, NaN == NaN."""
    if isinstance(values, torch.Tensor):
        values = values.to(torch.float64).reshape(-1).tolist()
    return [float(v).hex() for v in values]


def ints(t) -> list:
    return [int(v) for v in (t.reshape(-1).tolist() if isinstance(t, torch.Tensor) else t)]


def bools(t) -> list:
    return [bool(v) for v in (t.reshape(-1).tolist() if isinstance(t, torch.Tensor) else t)]


def first_mismatch(xs, got, want):
    """A readable first mismatching element for assertion messages."""
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            x = xs[i] if xs is not None else i
            return f"first mismatch at input {x!r}: got {g!r}, want {w!r}"
    return "lengths differ" if len(got) != len(want) else "no mismatch"
