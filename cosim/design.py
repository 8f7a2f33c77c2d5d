"""A generated design as the co-simulation sees it: the Verilog file plus what its manifest says.

Everything a testbench needs (port names, widths, element packing, latency,
formats) comes from ``<top>.json``, written by ``fewbits.hw.export``; nothing
here knows the port names of a particular generator version beyond the roles.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

ROLES_IN = ("reset", "valid", "first", "last", "a", "b", "bias", "shift", "bias_shift")
ROLES_OUT = ("out_valid", "z", "ovf")


class DesignError(ValueError):
    """A design folder or manifest that cannot be co-simulated (one-line message)."""


@dataclasses.dataclass(frozen=True)
class Port:
    name: str
    direction: str
    width: int
    role: str
    element_width: int
    element_count: int
    format: str | None = None


@dataclasses.dataclass(frozen=True)
class Design:
    """A Verilog file and its manifest; ``port(role)`` finds a port by what it does."""

    verilog: Path
    manifest_path: Path
    manifest: dict

    @property
    def top(self) -> str:
        return self.manifest["top"]

    @property
    def rows(self) -> int:
        return int(self.manifest["rows"])

    @property
    def cols(self) -> int:
        return int(self.manifest["cols"])

    @property
    def k_max(self) -> int:
        return int(self.manifest["k_max"])

    @property
    def latency(self) -> int:
        return int(self.manifest["latency"])

    @property
    def dynamic(self) -> bool:
        return bool(self.manifest.get("dynamic_shift"))

    @property
    def ports(self) -> list[Port]:
        keep = {f.name for f in dataclasses.fields(Port)}
        return [Port(**{k: v for k, v in p.items() if k in keep}) for p in self.manifest["ports"]]

    def port(self, role: str) -> Port | None:
        for p in self.ports:
            if p.role == role:
                return p
        return None

    @property
    def spec(self):
        from fewbits.sim import MacSpec

        return MacSpec.from_dict(self.manifest["spec"])

    def formats(self) -> dict:
        return dict(self.manifest["formats"])

    def key(self) -> str:
        """Hash of the Verilog text and manifest: one build folder per distinct design."""
        h = hashlib.sha256()
        h.update(self.verilog.read_bytes())
        h.update(json.dumps(self.manifest, sort_keys=True).encode())
        return h.hexdigest()[:16]


def load_design(path) -> Design:
    """The design in folder ``path`` (one ``<top>.json`` + ``<top>.v``) or given by its manifest file."""
    p = Path(path)
    if p.is_dir():
        cands = sorted(j for j in p.glob("*.json") if j.with_suffix(".v").is_file())
        if len(cands) != 1:
            raise DesignError(f"bad design folder {p}: accepted a folder written by `fewbits verilog` "
                              f"(one <top>.json manifest next to its <top>.v), found {len(cands)}")
        p = cands[0]
    if not p.is_file():
        raise DesignError(f"bad design {p}: no such file or folder; accepted a `fewbits verilog` output folder")
    try:
        man = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise DesignError(f"bad manifest {p}: {e.msg} at line {e.lineno}") from None
    need = ("top", "rows", "cols", "latency", "ports", "spec", "formats")
    missing = [k for k in need if k not in man]
    if missing:
        raise DesignError(f"bad manifest {p}: missing {missing}; accepted the <top>.json of fewbits.hw.export")
    v = p.with_name(man["top"] + ".v")
    if not v.is_file():
        v = p.with_suffix(".v")
    if not v.is_file():
        raise DesignError(f"bad design {p}: no Verilog file {p.with_suffix('.v').name} next to the manifest")
    d = Design(v.resolve(), p.resolve(), man)
    roles = {q.role for q in d.ports}
    lack = [r for r in ("clock", "reset", "valid", "first", "last", "a", "b", "out_valid", "z", "ovf")
            if r not in roles]
    if lack:
        raise DesignError(f"bad manifest {p}: no port with role(s) {lack}")
    return d
