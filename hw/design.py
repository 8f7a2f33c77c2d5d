"""A generated design as every tool sees it: Verilog sources, a top module and, when there is one, its manifest.

One class for the co-simulation (which needs the manifest: ports by role,
latency, spec) and the synthesis and power drivers (which also take any
Verilog file with a top, or a bare part such as the multiplier of a spec).
The manifest is read only through ``hw.manifest.load_manifest``; the top that
reaches a Yosys script is a checked Verilog identifier in every case.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from fewbits.hw.manifest import Manifest, ManifestError, check_module_name, is_manifest_file, load_manifest


class DesignError(ValueError):
    """A design folder or file that cannot be used (one-line message)."""


def sha_parts(*parts: bytes | str) -> str:
    """sha256 of ``parts`` separated by NUL bytes (the design hash and the synthesis record key)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class Design:
    """Verilog ``sources`` + ``top`` (+ the validated ``manifest`` of ``fewbits verilog``, or for a bare
    part only the ``part_spec`` it was generated from)."""

    top: str
    sources: tuple[Path, ...]
    manifest: Manifest | None = field(default=None, compare=False, hash=False)
    label: str = ""
    part_spec: object = field(default=None, compare=False, hash=False)

    # ---- identity -----------------------------------------------------
    @property
    def hash(self) -> str:
        """Hash of the top and the Verilog text: the synthesis cache key."""
        return sha_parts(self.top, *(p.read_bytes() for p in self.sources))[:16]

    def key(self) -> str:
        """Hash of the Verilog text and manifest: one co-simulation build folder per distinct design."""
        h = hashlib.sha256()
        h.update(self.verilog.read_bytes())
        h.update(json.dumps(self.manifest.data if self.manifest else None, sort_keys=True).encode())
        return h.hexdigest()[:16]

    @property
    def name(self) -> str:
        return self.label or self.top

    # ---- what the manifest says ----------------------------------------
    @property
    def verilog(self) -> Path:
        return self.sources[0]

    @property
    def manifest_path(self) -> Path | None:
        return self.manifest.path if self.manifest else None

    def _need(self) -> Manifest:
        if self.manifest is None:
            raise DesignError(f"{self.name}: needs a design manifest (a folder written by `fewbits verilog`)")
        return self.manifest

    @property
    def rows(self) -> int:
        return self._need().rows

    @property
    def cols(self) -> int:
        return self._need().cols

    @property
    def k_max(self) -> int:
        return self._need().k_max

    @property
    def latency(self) -> int:
        return self._need().latency

    @property
    def dynamic(self) -> bool:
        return self._need().dynamic

    @property
    def ports(self):
        return list(self._need().ports)

    def port(self, role: str):
        return self._need().port(role)

    @property
    def spec(self):
        """The ``MacSpec`` (from the manifest, or the part's), None for a plain Verilog file."""
        return self.manifest.spec if self.manifest else self.part_spec

    def formats(self) -> dict | None:
        if self.manifest:
            return self.manifest.formats()
        s = self.part_spec
        return None if s is None else {"a": str(s.a_fmt), "b": str(s.b_fmt), "acc": str(s.acc_fmt),
                                       "bias": str(s.bias_fmt), "out": str(s.out_fmt)}

    @property
    def pe_count(self) -> int:
        return self.manifest.rows * self.manifest.cols if self.manifest else 1


def _with_verilog(man: Manifest) -> Design:
    v = man.verilog
    if not v.is_file():
        raise DesignError(f"bad design {man.path}: manifest names top {man.top!r} but {v} is missing")
    return Design(man.top, (v.resolve(),), man)


def load_design(path) -> Design:
    """The design in folder ``path`` (one ``<top>.json`` + ``<top>.v``) or given by its manifest file."""
    return _with_verilog(load_manifest(path))


def load_designs(path, top: str | None = None) -> list[Design]:
    """A design folder (every ``<top>.json`` manifest with its ``<top>.v``) or one Verilog file."""
    p = Path(path)
    if not p.exists():
        raise DesignError(f"{p}: no such file or directory (accepted: a design directory from "
                          "`fewbits verilog` or a Verilog file with --top)")
    if top is not None:
        check_module_name(top, "top")
    if p.is_dir():
        out = [_with_verilog(m) for m in (load_manifest(j) for j in sorted(p.glob("*.json")) if is_manifest_file(j))
               if top is None or m.top == top]
        if not out:
            raise DesignError(f"{p}: no design manifest (<top>.json + <top>.v from `fewbits verilog`)"
                              + (f" with top {top!r}" if top else "") + " in this directory")
        return out
    if p.suffix not in (".v", ".sv"):
        raise DesignError(f"{p}: not a Verilog file (accepted: *.v, *.sv or a design directory)")
    j = p.with_suffix(".json")
    man = load_manifest(j) if is_manifest_file(j) else None
    if top is None and man is not None:
        top = man.top
    if top is None:
        mods = re.findall(r"^\s*module\s+([A-Za-z_][\w$]*)", p.read_text(errors="replace"), re.M)
        if len(mods) != 1:
            raise DesignError(f"{p}: {len(mods)} modules, pass --top NAME (one of: {', '.join(mods[:8]) or 'none'})")
        top = check_module_name(mods[0], "top")
    return [Design(top, (p.resolve(),), man if man and man.top == top else None)]


__all__ = ["Design", "DesignError", "ManifestError", "load_design", "load_designs"]
