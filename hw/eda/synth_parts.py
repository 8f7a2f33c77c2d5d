"""Bare parts of a MAC array (the multiplier, one MacUnit) as Designs of their own.

Why: the array's figures divided by its PE count hide what the multiplier
costs; synthesizing the bare ``Multiplier``/``FloatMultiplier`` and a bare
``MacUnit`` of the same formats puts the multiplier's share next to the PE's.
Verilog goes to the cache folder, keyed by the spec, never the cwd.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from fewbits.hw.design import Design
from fewbits.hw.eda.synth import cache_dir

from fewbits.files import atomic_write_text

PARTS = ("multiplier", "mac_unit")


def sweep_format(kind: str, width: int) -> str:
    """The format of a width in a part sweep: ``fixed:W:W//2`` (half the bits fractional) or ``dfixed:W``.

    The one place of this rule: the sweep's points and the report's lookups both call it."""
    return f"fixed:{width}:{width // 2}" if kind == "fixed" else f"dfixed:{width}"


def sweep_spec(fmt_text: str, multiplier: str = "yosys"):
    """The MacSpec of a part-sweep point: ``a = b = out = FORMAT``, one PE, K up to 1024."""
    from fewbits.sim import MacSpec, parse_format

    f = parse_format(fmt_text)
    return MacSpec(f, f, f, rows=1, cols=1, k_max=1024, multiplier=multiplier)


def _spec_of(design_or_spec):
    from fewbits.sim import MacSpec

    if isinstance(design_or_spec, MacSpec):
        return design_or_spec
    return design_or_spec.spec


def component(spec, part: str):
    """The Amaranth component of ``part`` for ``spec`` (bare, no registers around it)."""
    from fewbits.hw.fmul import FloatMultiplier
    from fewbits.hw.mac import make_pe
    from fewbits.hw.multiplier import Multiplier

    if part == "multiplier":
        a, b = (f.fixed if f.kind == "dfixed" else f for f in (spec.a_fmt, spec.b_fmt))
        if spec.a_fmt.kind == "float":
            return FloatMultiplier(a, b)
        return Multiplier(a, b, spec.multiplier)   # the spec's architecture, as in its PEs
    if part == "mac_unit":
        return make_pe(spec)
    raise ValueError(f"unknown part {part!r}: accepted {', '.join(PARTS)}")


def generator_sources() -> list[Path]:
    """Every source a part export can depend on: the ``hw`` package (the generators: ``multiplier``,
    ``multipliers``, ``mac``, ...; ``hw/eda`` included) and ``sim`` (the formats they read)."""
    return sorted({p for r in _roots() for p in r.rglob("*.py")})


def _roots() -> tuple[Path, Path]:
    import fewbits.sim

    return Path(__file__).resolve().parent.parent, Path(fewbits.sim.__file__).resolve().parent


@functools.cache
def generator_digest() -> str:
    """Amaranth's version and the generator sources: a cached export is only as good as these."""
    import amaranth

    h = hashlib.sha256(amaranth.__version__.encode())
    for src in generator_sources():   # named relative to its package: the same digest in every checkout
        root = next(r for r in _roots() if src.is_relative_to(r))
        h.update(f"{root.name}/{src.relative_to(root)}".encode() + src.read_bytes())
    return h.hexdigest()[:12]


def part_design(design_or_spec, part: str, name: str | None = None) -> Design | None:
    """A Design for ``part`` of a manifest design (None when the design has no spec)."""
    from amaranth.back import verilog

    spec = _spec_of(design_or_spec)
    if spec is None:
        return None
    top = {"multiplier": "multiplier", "mac_unit": "mac_unit"}[part]
    d = cache_dir() / "parts" / f"{spec.key()}-{generator_digest()}"
    d.mkdir(parents=True, exist_ok=True)
    v = d / f"{top}.v"
    if not v.exists():
        text = verilog.convert(component(spec, part), name=top, emit_src=False)
        atomic_write_text(v, text)
    base = name or getattr(design_or_spec, "name", None) or spec.key()
    return Design(top, (Path(v),), label=f"{base}:{part}", part_spec=spec)
