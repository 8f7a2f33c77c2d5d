"""The cost axes of a report: what each costs column means, where it comes from, which way is better.

Why one table: the report's columns, Pareto fronts, plots, the recommendation's ``--cost``
choice (on ``report``, ``sweep`` and ``demo``) and its error messages all read it, so a new axis
is one row here.  Imports nothing heavy: the CLI reads the names for ``--help``.
"""

from __future__ import annotations

import dataclasses

SKY130_SOURCE = "sky130_fd_sc_hd tt 1.8V 25C, characterized by fewbits"


@dataclasses.dataclass(frozen=True)
class Cost:
    field: str      # the row / summary column
    label: str      # the axis label (with its unit)
    name: str       # how a sentence says it ("cheapest by sky130 area")
    source: str     # the model or tool that produced the number
    target: str | None = None   # the sweep's [synth] target that provides it (None: none needed)
    power: bool = False         # needs the power stage ([power] enabled)
    higher_is_better: bool = False   # a maximum clock: the fastest, not the smallest

    def rank(self, value: float) -> float:
        """The number to minimize."""
        return -value if self.higher_is_better else value

    def provider(self) -> str:
        """What in a sweep file provides this axis (for an error message)."""
        parts = [f'the synthesis target "{self.target}" ([synth] targets)'] if self.target else []
        if self.power:
            parts.append("the power stage ([power] enabled = true, the default"
                         + ("; and [power] sky130 = true, the default" if self.target == "sky130" else "") + ")")
        return " with ".join(parts)

    def provided_by(self, point: dict) -> bool:
        """Whether a sweep point (``flow.config``) computes this axis."""
        synth, power = point.get("synth") or {}, point.get("power") or {}
        return ((self.target is None or self.target in synth.get("targets", ()))
                and (not self.power or (power.get("enabled", True)
                                        and (self.target != "sky130" or power.get("sky130", True)))))


#: every cost axis, in the order the report shows them; with no ``--cost`` the recommendation ranks
#: by the first one every result has (so the generic axes stay the default)
COSTS: tuple[Cost, ...] = (
    Cost("transistors", "transistors per MAC unit (Yosys generic CMOS)", "transistors",
         "Yosys 0.23 abc -g, stat -tech cmos transistor estimate", target="cmos"),
    Cost("luts", "iCE40 LUTs per MAC unit", "iCE40 LUTs", "Yosys 0.23 synth_ice40", target="ice40"),
    Cost("energy_pj", "energy per MAC (pJ, gate-level toggles)", "energy (fewbits-45nm-v1)",
         "fewbits-45nm-v1 switching-energy model on generic gates, captured vectors", power=True),
    Cost("area_um2", "sky130 area per MAC unit (µm²)", "sky130 area", SKY130_SOURCE, target="sky130"),
    Cost("energy_sky130_pj", "sky130 energy per MAC (pJ)", "sky130 energy",
         SKY130_SOURCE + "; gate-level toggles on captured vectors", target="sky130", power=True),
    Cost("fmax_mhz", "sky130 maximum clock (MHz)", "sky130 maximum clock", SKY130_SOURCE + "; static timing",
         target="sky130", higher_is_better=True),
)
BY_FIELD: dict[str, Cost] = {c.field: c for c in COSTS}
NAMES: tuple[str, ...] = tuple(BY_FIELD)


class CostError(ValueError):
    """A ``--cost`` the results (or the sweep) cannot rank by: one line, what is accepted."""


def get(field: str) -> Cost:
    """The axis called ``field``; a ``CostError`` naming every accepted one otherwise."""
    if field not in BY_FIELD:
        raise CostError(f"--cost {field!r}: not a cost axis (accepted: {', '.join(NAMES)})")
    return BY_FIELD[field]


def check_sweep(field: str | None, points: list[dict]) -> None:
    """Refuse, before any work, a ``--cost`` that no point of a sweep computes."""
    if field is None:
        return
    c = get(field)
    if points and not any(c.provided_by(p) for p in points):
        raise CostError(f"--cost {field}: this sweep computes no {c.name} (it comes from {c.provider()}); "
                        f"add it to the sweep file or choose another axis (accepted: {', '.join(NAMES)})")


def check_results(field: str | None, rows: list[dict]) -> None:
    """Refuse a ``--cost`` that no finished result has (say which stage would give it)."""
    if field is None:
        return
    c = get(field)
    if not any(isinstance(r.get(field), (int, float)) for r in rows):
        have = [x.field for x in COSTS if any(isinstance(r.get(x.field), (int, float)) for r in rows)]
        raise CostError(f"--cost {field}: no result has {c.name} (it comes from {c.provider()}); "
                        f"axes these results have: {', '.join(have) or 'none'}")
