"""ngspice transient decks for one standard cell, and their measurements.

Why our own harness: ``lctime`` (the maintained open characterizer) needs a hand-written
template Liberty, klayout and PySpice and is AGPL; the few numbers fewbits needs fit one deck
per cell: every (input pin, output, (input slew, output load, edge) is its own instance of the cell in
the same transient, each with its own supply source so that its energy is measured alone.
Loading the sky130 models dominates an ngspice run, hence one deck for many instances.

Conventions (recorded in the Liberty header): delays 50 %→50 %, transitions 20 %→80 %, input
ramps linear over slew/0.6; internal energy = supply energy − C·V² for a rising output (that
part is the load's switching energy, which power tools add themselves), leakage subtracted.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field

from fewbits.hw.eda.tech.pdk import CellInfo, models

T0 = 0.1     # ns: first input edge (the operating point settles the initial state)
SETTLE = 4.0  # ns after the last edge


@dataclass
class Deck:
    text: list = field(default_factory=list)
    meas: list = field(default_factory=list)
    n: int = 0

    def add(self, line: str) -> None:
        self.text.append(line)

    def inst(self, info: CellInfo, nets: dict) -> int:
        """One cell instance with its own supply ``vp<i>``; ``nets`` maps signal pins to nodes."""
        i = self.n
        self.n += 1
        self.add(f"Vp{i} vp{i} 0 {{vdd}}")
        conn = {"VGND": "0", "VNB": "0", "VPB": f"vp{i}", "VPWR": f"vp{i}", **nets}
        self.add(f"X{i} {' '.join(conn[p] for p in info.ports)} {info.name}")
        return i

    def render(self, info: CellInfo, vdd: float, temp: float, tstop: float, tstep: float = 0.01,
               lib=None) -> str:
        """The deck; ``lib``: a models file with a ``tt`` section (default the PDK's combined one)."""
        head = [f"* fewbits characterization of {info.name}",
                f".lib \"{lib or models()}\" tt", f".include \"{info.spice}\"",
                ".option scale=1e-6", f".param vdd={vdd}", f".temp {temp}"]
        return "\n".join([*head, *self.text, f".tran {tstep * 1000:g}p {tstop:.4f}n", *self.meas, ".end", ""])


def ramp(t0: float, slew: float, v0: float, v1: float, vdd: float) -> str:
    """PWL of a linear edge starting at ``t0`` (ns) whose 20–80 % time is ``slew`` (ns)."""
    full = slew / 0.6
    return f"PWL(0 {v0 * vdd} {t0}n {v0 * vdd} {t0 + full:.6f}n {v1 * vdd})"


def sensitize(info: CellInfo, pin: str, out: str):
    """Side-input values that make ``out`` follow ``pin``, and whether it inverts (first found)."""
    k = info.inputs.index(pin)
    for vec, y in sorted(info.table[out].items()):
        if vec[k]:
            continue
        hi = vec[:k] + (1,) + vec[k + 1:]
        if info.table[out][hi] != y:
            return dict(zip(info.inputs, vec)), bool(y)   # inverting when y(pin=0)=1
    return None, False


def unateness(info: CellInfo, pin: str, out: str) -> str:
    k = info.inputs.index(pin)
    senses = set()
    for vec, y in info.table[out].items():
        if not vec[k]:
            y1 = info.table[out][vec[:k] + (1,) + vec[k + 1:]]
            if y1 != y:
                senses.add("positive_unate" if y1 > y else "negative_unate")
    return senses.pop() if len(senses) == 1 else "non_unate"


# ngspice reads .spiceinit from its working folder.  One thread: Debian's ngspice evaluates devices
# with OpenMP, and on a shared machine the threads spin waiting for each other (a 40-instance nand2
# deck: 17 s of device evaluation with two threads, 0.7 s with one).  ng_nomodcheck, as the PDK's own
# combined_models/spinit recommends, skips the model-card checks that make loading the sky130 models
# (48 bins per device type, copied into every transistor instance) the slowest part of a run; the
# measured values are unchanged (checked on that deck, every .meas equal).
SPICEINIT = "set num_threads=1\nset ng_nomodcheck\n"

_MEAS = re.compile(r"^\s*(\w+)\s*=\s*([-+]?[\d.]+(?:e[-+]?\d+)?)", re.M | re.I)


def run(deck_text: str, workdir, timeout: float = 3600) -> dict:
    """Run one deck in ngspice (niced: the machine is shared) and return {measure: value}."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "deck.sp"
    path.write_text(deck_text)
    (workdir / ".spiceinit").write_text(SPICEINIT)
    p = subprocess.run(["nice", "-n", "10", "ngspice", "-b", str(path)], cwd=workdir,
                       capture_output=True, text=True, timeout=timeout)
    (workdir / "ngspice.log").write_text(p.stdout + p.stderr)
    if p.returncode != 0:
        raise RuntimeError(f"ngspice failed on {path} (exit {p.returncode}; log {workdir / 'ngspice.log'})")
    return {k.lower(): float(v) for k, v in _MEAS.findall(p.stdout)}
