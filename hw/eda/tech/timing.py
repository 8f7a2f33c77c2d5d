"""Timing for a fewbits-characterized Liberty in Yosys: abc's delay-driven mapping and its delay.

Why: ``stat -liberty`` gives area only.  With ``-D`` and a constraint file (driving cell, output
load) Yosys's abc script ends with ``stime -p``, which prints the mapped netlist's critical-path
delay from the Liberty's NLDM tables; that delay (ps) gives the maximum clock.  A Liberty built
by ``build`` has a ``tech.json`` beside it naming the model, the driving cell and the load.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

SIDECAR = "tech.json"
CONSTR = "abc.constr"
TARGET_PS = 1          # ask abc for the fastest mapping it finds (then it sizes gates down again)


def sidecar(liberty) -> dict | None:
    p = Path(liberty).with_name(SIDECAR)
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def constraints(liberty) -> bytes:
    """The ``abc.constr`` beside the Liberty (b"" without one)."""
    try:
        return Path(liberty).with_name(CONSTR).read_bytes()
    except OSError:
        return b""


def abc_lines(liberty, meta: dict) -> list[str]:
    constr = Path(liberty).with_name(CONSTR)
    return [f'abc -D {meta.get("target_ps", TARGET_PS)} -constr "{constr}" -liberty "{liberty}"']


_DELAY = re.compile(r"Delay\s*=\s*([\d.]+)\s*ps")


def parse_delay_ps(log: str) -> float | None:
    """The last ``stime`` delay in a Yosys log (ps), or None."""
    found = _DELAY.findall(log)
    return float(found[-1]) if found else None


def clock(log: str, tech: dict, cells_by_type: dict) -> dict:
    """``delay_ps`` (abc's critical combinational path), the clock period (plus a flip-flop's
    clock-to-Q and setup when the netlist has flip-flops and the library a ``register_ps``) and
    ``fmax_mhz`` = 1/period; {} when the log has no ``stime`` delay."""
    d = parse_delay_ps(log)
    if not d:
        return {}
    ffs = sum(n for t, n in cells_by_type.items() if "__df" in t)
    reg = tech.get("register_ps") if ffs else None
    period = d + (reg or 0.0)
    return {"delay_ps": d, "register_ps": reg, "clock_ps": round(period, 1), "fmax_mhz": round(1e6 / period, 1)}
