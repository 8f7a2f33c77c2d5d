"""The manifest ``<top>.json``: one writer (generated from a MacArray's signature), one schema, one reader.

Why: a testbench, the synthesis and power drivers and a user all drive the
exported module from this file, never from Python objects.  As Amaranth's
``ComponentMetadata.as_json()`` is generated from a component's
``lib.wiring`` signature and checked against a JSON schema, ``describe()``
walks ``array.signature`` (every port's direction and width come from it),
annotates each port with its role and packing (``hw.ports``), and ``validate()``
checks any manifest against the one ``SCHEMA``.  ``load_manifest()`` is the
only reader: it validates, then returns a typed, frozen ``Manifest``; a
missing or mistyped field is one ``ManifestError`` line naming the file and
the field.  Every name that reaches a tool script or a generated testbench
(the top, the port names) must be a plain Verilog identifier that is not a
keyword, so a manifest cannot smuggle text into a Yosys script or a Verilog
harness.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from fewbits.sim import FormatError

MANIFEST_VERSION = 1

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# IEEE 1364-2005 keywords plus the SystemVerilog ones a -sv read would trip over
VERILOG_KEYWORDS = frozenset("""
always and assign automatic begin buf bufif0 bufif1 case casex casez cell cmos config deassign default
defparam design disable edge else end endcase endconfig endfunction endgenerate endmodule endprimitive
endspecify endtable endtask event for force forever fork function generate genvar highz0 highz1 if
ifnone incdir include initial inout input instance integer join large liblist library localparam
macromodule medium module nand negedge nmos nor noshowcancelled not notif0 notif1 or output parameter
pmos posedge primitive pull0 pull1 pulldown pullup pulsestyle_ondetect pulsestyle_onevent rcmos real
realtime reg release repeat rnmos rpmos rtran rtranif0 rtranif1 scalared showcancelled signed small
specify specparam strong0 strong1 supply0 supply1 table task time tran tranif0 tranif1 tri tri0 tri1
triand trior trireg unsigned use uwire vectored wait wand weak0 weak1 while wire wor xnor xor
bit byte logic int shortint longint string class endclass interface endinterface package endpackage
program endprogram typedef enum struct union void return break continue do import export
""".split())


# module names the tools add beside a design (cosim's generated testbench): a design may not take them
TB_TOP = "fewbits_tb"
RESERVED_MODULES = frozenset({TB_TOP})


class ManifestError(FormatError):
    """A manifest that is not one ``fewbits verilog`` writes (one line: the file, the field, the problem)."""


def check_identifier(name, what: str = "name") -> str:
    """``name`` if it is a plain Verilog identifier and not a keyword, else a one-line ``FormatError``."""
    if not isinstance(name, str) or not _IDENT.fullmatch(name) or name in VERILOG_KEYWORDS:
        raise FormatError(f"bad {what} {name!r}: accepted a plain Verilog identifier ([A-Za-z_][A-Za-z0-9_]*) "
                          "that is not a Verilog keyword")
    return name


def check_module_name(name, what: str = "top name") -> str:
    """``check_identifier`` for a module name, which also may not be one the tools add beside it."""
    check_identifier(name, what)
    if name in RESERVED_MODULES:
        raise FormatError(f"bad {what} {name!r}: reserved for the co-simulation testbench (accepted any other "
                          "plain Verilog identifier)")
    return name


# ---- the schema (JSON Schema, draft 2020-12 subset: type, enum, minimum, required, properties, items) ----
_INT1 = {"type": "integer", "minimum": 1}
_STR = {"type": "string"}
_OPT_STR = {"type": ["string", "null"]}
_IDENT_S = {"type": "string", "format": "verilog-identifier"}
_PORT = {
    "type": "object",
    "required": ["name", "direction", "width", "role", "element_width", "element_count"],
    "properties": {
        "name": _IDENT_S, "direction": {"enum": ["input", "output"]}, "width": _INT1, "role": _STR,
        "element_width": _INT1, "element_count": _INT1, "order": _OPT_STR, "index": _OPT_STR,
        "signed": {"type": "boolean"}, "format": _OPT_STR,
        "sampled_with": {"type": ["string", "null"], "format": "verilog-identifier"}, "description": _STR,
    },
}
_FORMATS = {"type": "object", "required": ["a", "b", "acc", "bias", "out"],
            "properties": {k: _STR for k in ("a", "b", "acc", "bias", "out")}}
_SPEC = {"type": "object", "required": ["a_fmt", "b_fmt", "out_fmt"],
         "properties": {**{k: _STR for k in ("a_fmt", "b_fmt", "out_fmt", "acc_fmt", "bias_fmt")},
                        "rows": _INT1, "cols": _INT1, "k_max": _INT1}}
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "fewbits MacArray manifest",
    "type": "object",
    "required": ["manifest_version", "top", "rows", "cols", "k_max", "latency", "dynamic_shift", "formats",
                 "spec", "ports"],
    "properties": {
        "manifest_version": {"type": "integer", "minimum": 1, "maximum": MANIFEST_VERSION},
        "top": {"type": "string", "format": "verilog-module"}, "rows": _INT1, "cols": _INT1, "k_max": _INT1,
        "latency": {"type": "integer", "minimum": 0}, "dynamic_shift": {"type": "boolean"},
        "formats": _FORMATS, "spec": _SPEC, "spec_key": _STR,
        "ports": {"type": "array", "items": _PORT},
        "lint_waivers": {"type": "array", "items": _STR},
        "generator": {"type": "object"},
    },
}
REQUIRED_ROLES = ("clock", "reset", "valid", "first", "last", "a", "b", "bias", "out_valid", "z", "ovf")

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _is(value, t: str) -> bool:
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, _TYPES[t])


def _problem(value, schema: dict, at: str):
    """(field, problem) of the first place ``value`` breaks ``schema``, or None."""
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(_is(value, t) for t in types):
            return at, f"{json.dumps(value)[:40]} is not {' or '.join(types)}"
    if "enum" in schema and value not in schema["enum"]:
        return at, f"{json.dumps(value)[:40]} is not one of {schema['enum']}"
    if "minimum" in schema and _is(value, "integer") and value < schema["minimum"]:
        return at, f"{value} is below {schema['minimum']}"
    if "maximum" in schema and _is(value, "integer") and value > schema["maximum"]:
        return at, f"{value} is above {schema['maximum']} (this fewbits reads manifest_version <= {MANIFEST_VERSION})"
    check = {"verilog-identifier": check_identifier, "verilog-module": check_module_name}.get(schema.get("format"))
    if check is not None and isinstance(value, str):
        try:
            check(value, "name")
        except FormatError as e:
            return at, str(e)
    if isinstance(value, dict):
        for key in schema.get("required", ()):
            if key not in value:
                return (f"{at}.{key}" if at else key), "missing"
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                found = _problem(value[key], sub, f"{at}.{key}" if at else key)
                if found:
                    return found
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found = _problem(item, schema["items"], f"{at}[{i}]")
            if found:
                return found
    return None


def validate(obj, where="manifest") -> dict:
    """``obj`` if it satisfies ``SCHEMA`` and the cross-field rules, else one ``ManifestError`` line."""
    found = _problem(obj, SCHEMA, "")
    if found is None:
        roles = {p["role"] for p in obj["ports"]}
        lack = [r for r in REQUIRED_ROLES if r not in roles]
        if obj["dynamic_shift"]:
            lack += [r for r in ("shift", "bias_shift") if r not in roles]
        found = ("ports", f"no port with role(s) {lack}") if lack else None
    if found is None:
        bad = [p["name"] for p in obj["ports"] if p["element_width"] * p["element_count"] != p["width"]]
        found = ("ports", f"element_width * element_count != width for {bad}") if bad else None
    if found is not None:
        field, problem = found
        raise ManifestError(f"bad manifest {where}: field {field or '(top level)'}: {problem}; "
                            "accepted the <top>.json written by `fewbits verilog`")
    return obj


# ---- the typed view --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Port:
    """One port as the manifest describes it (``hw.ports.PortInfo``, read back)."""

    name: str
    direction: str
    width: int
    role: str
    element_width: int
    element_count: int
    signed: bool = False
    format: str | None = None
    index: str | None = None
    order: str | None = None
    sampled_with: str | None = None
    description: str = ""


@dataclasses.dataclass(frozen=True)
class Manifest:
    """A validated manifest: what a testbench or tool script may rely on."""

    top: str
    rows: int
    cols: int
    k_max: int
    latency: int
    dynamic: bool
    spec: object                      # fewbits.sim.MacSpec
    ports: tuple[Port, ...]
    spec_key: str | None = None
    version: int = MANIFEST_VERSION
    path: Path | None = None
    data: dict = dataclasses.field(default_factory=dict, compare=False, hash=False, repr=False)

    def port(self, role: str) -> Port | None:
        return next((p for p in self.ports if p.role == role), None)

    def formats(self) -> dict:
        return dict(self.data["formats"])

    @property
    def verilog(self) -> Path | None:
        return None if self.path is None else self.path.with_name(self.top + ".v")


def from_dict(obj, path=None) -> Manifest:
    """Validate ``obj`` and return its typed view (``path``: where it was read from, for messages)."""
    from fewbits.sim import MacSpec

    where = str(path) if path is not None else "manifest"
    validate(obj, where)
    try:
        spec = MacSpec.from_dict(obj["spec"])
    except FormatError as e:
        raise ManifestError(f"bad manifest {where}: field spec: {e}") from None
    for key in ("rows", "cols", "k_max"):
        if getattr(spec, key) != obj[key]:
            raise ManifestError(f"bad manifest {where}: field {key}: {obj[key]} but the spec says "
                                f"{getattr(spec, key)}")
    keep = {f.name for f in dataclasses.fields(Port)}
    ports = tuple(Port(**{k: v for k, v in p.items() if k in keep}) for p in obj["ports"])
    return Manifest(obj["top"], obj["rows"], obj["cols"], obj["k_max"], obj["latency"], obj["dynamic_shift"],
                    spec, ports, obj.get("spec_key"), obj["manifest_version"],
                    None if path is None else Path(path).resolve(), obj)


def is_manifest_file(path: Path) -> bool:
    """A JSON object with a ``manifest_version``: what a folder scan takes for a manifest (records and
    other JSON files beside a design are not)."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(obj, dict) and "manifest_version" in obj


def load_manifest(folder_or_path) -> Manifest:
    """The manifest at ``folder_or_path``: a ``<top>.json`` file, or a folder holding exactly one."""
    p = Path(folder_or_path)
    if p.is_dir():
        found = [j for j in sorted(p.glob("*.json")) if is_manifest_file(j)]
        if len(found) != 1:
            raise ManifestError(f"bad design folder {p}: accepted a folder written by `fewbits verilog` "
                                f"(one <top>.json manifest next to its <top>.v), found {len(found)}")
        p = found[0]
    if not p.is_file():
        raise ManifestError(f"bad manifest {p}: no such file or folder; accepted a `fewbits verilog` output")
    try:
        obj = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ManifestError(f"bad manifest {p}: {e.msg} at line {e.lineno}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"bad manifest {p}: unreadable ({e})") from None
    return from_dict(obj, p)


# ---- the writer --------------------------------------------------------------------------------
def _port_json(info, direction: str, width: int, latency: int) -> dict:
    return {"name": info.name, "direction": direction, "width": width, "role": info.role,
            "element_width": info.element_width, "element_count": info.element_count, "order": info.order,
            "index": info.index, "signed": info.signed, "format": info.format,
            "sampled_with": info.sampled_with,
            "description": info.description.replace("`latency`", str(latency))}


def describe(array, top: str, lint_waivers=()) -> dict:
    """The manifest of ``array`` exported as module ``top``, generated from ``array.signature``.

    Each signature member gives a port's direction and width; ``hw.ports`` its role and packing.
    The clock and reset come from the ``sync`` domain the Verilog back end adds.
    """
    import amaranth
    from amaranth.hdl import Shape
    from amaranth.lib.wiring import In
    from fewbits.hw.ports import array_ports

    check_module_name(top, "top name")
    s = array.spec
    info = {p.name: p for p in array_ports(s)}
    lat = array.latency
    ports = [_port_json(info[n], "input", 1, lat) for n in ("clk", "rst")]
    for path, member in array.signature.members.flatten():
        name = "__".join(path)
        ports.append(_port_json(info[name], "input" if member.flow is In else "output",
                                Shape.cast(member.shape).width, lat))
    obj = {
        "manifest_version": MANIFEST_VERSION,
        "top": top,
        "rows": s.rows,
        "cols": s.cols,
        "k_max": s.k_max,
        "latency": lat,
        "dynamic_shift": s.dynamic,
        "formats": {"a": str(s.a_fmt), "b": str(s.b_fmt), "acc": str(s.acc_fmt),
                    "bias": str(s.bias_fmt), "out": str(s.out_fmt)},
        "spec": s.to_dict(),
        "spec_key": s.key(),
        "ports": ports,
        "lint_waivers": list(lint_waivers),
        "generator": {"fewbits_hw": "fewbits.hw.export", "amaranth": amaranth.__version__},
    }
    return validate(obj, f"generated for {top}")
