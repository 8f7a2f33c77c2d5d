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
TARGET_PS = 1          # ask abc for the fastest mapping it finds (then it sizes gates down again)


def sidecar(liberty) -> dict | None:
    p = Path(liberty).with_name(SIDECAR)
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def abc_lines(liberty, meta: dict) -> list[str]:
    constr = Path(liberty).with_name("abc.constr")
    return [f'abc -D {meta.get("target_ps", TARGET_PS)} -constr "{constr}" -liberty "{liberty}"']


_DELAY = re.compile(r"Delay\s*=\s*([\d.]+)\s*ps")


def parse_delay_ps(log: str) -> float | None:
    """The last ``stime`` delay in a Yosys log (ps), or None."""
    found = _DELAY.findall(log)
    return float(found[-1]) if found else None
