"""Just enough Liberty (.lib) to simulate a mapped netlist and weight its toggles (model ``liberty``).

Why: with ``--liberty`` the user's library knows its cells better than
``fewbits-45nm-v1`` does: the input pin capacitances and the internal energy
tables replace the model's constants.  Read here: cell pins (direction,
capacitance, function), simple flip-flops (``ff`` with ``clocked_on`` and
``next_state``, no set/reset), ``internal_power`` rise/fall tables of output
pins (their mean over the table = internal energy per output toggle), the
library's ``nom_voltage`` and ``capacitive_load_unit``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from fewbits.hw.eda.synth_tools import SynthError

_TOK = re.compile(r'\s+|/\*.*?\*/|//[^\n]*|\\\n|"(?:[^"\\]|\\.)*"|[(){};:,]|[^\s(){};:,"]+', re.S)


def _tokens(text: str):
    for m in _TOK.finditer(text):
        t = m.group(0)
        if t.isspace() or t.startswith("/*") or t.startswith("//") or t == "\\\n":
            continue
        yield t


def _unq(t: str) -> str:
    return t[1:-1] if t.startswith('"') else t


def parse(text: str) -> dict:
    """Liberty text -> nested {'name', 'args', 'attrs', 'groups'} dicts."""
    toks = list(_tokens(text))
    pos = 0

    def group(name):
        nonlocal pos
        args = []
        assert toks[pos] == "("
        pos += 1
        while toks[pos] != ")":
            if toks[pos] != ",":
                args.append(_unq(toks[pos]))
            pos += 1
        pos += 1
        g = {"name": name, "args": args, "attrs": {}, "groups": []}
        if pos < len(toks) and toks[pos] == ";":   # complex attribute: name (args) ;
            pos += 1
            return g, False
        assert toks[pos] == "{", f"expected '{{' after {name}"
        pos += 1
        while toks[pos] != "}":
            key = toks[pos]
            pos += 1
            if toks[pos] == ":":
                pos += 1
                vals = []
                while toks[pos] not in (";", "}"):
                    vals.append(_unq(toks[pos]))
                    pos += 1
                if toks[pos] == ";":
                    pos += 1
                g["attrs"][key] = " ".join(vals)
            elif toks[pos] == "(":
                sub, is_group = group(key)
                if is_group:
                    g["groups"].append(sub)
                else:
                    g["attrs"][key] = sub["args"]
            else:
                raise SynthError(f"Liberty parse error near {key!r}")
        pos += 1
        return g, True

    try:
        while toks[pos] != "library":
            pos += 1
        pos += 1
        lib, _ = group("library")
    except (IndexError, AssertionError) as e:
        raise SynthError(f"unreadable Liberty file ({e or 'unexpected end'})") from e
    return lib


@dataclass
class Cell:
    name: str
    area: float
    inputs: dict = field(default_factory=dict)     # pin -> capacitance (fF)
    outputs: dict = field(default_factory=dict)    # pin -> function (Liberty syntax)
    internal_fj: dict = field(default_factory=dict)  # output pin -> mean internal energy per toggle (fJ)
    ff: tuple | None = None                          # (state, state_n, clocked_on, next_state)
    unsupported: str = ""                            # why this cell cannot be simulated here


@dataclass
class Library:
    name: str
    vdd: float
    cells: dict
    path: str = ""


def _cap_scale_ff(lib: dict) -> float:
    u = lib["attrs"].get("capacitive_load_unit")
    if isinstance(u, list) and len(u) == 2:
        return float(u[0]) * {"ff": 1.0, "pf": 1000.0}.get(u[1].lower(), 1.0)
    return 1.0


def _mean_table(g: dict) -> float | None:
    vals = g["attrs"].get("values")
    if not vals:
        return None
    nums = [float(x) for v in (vals if isinstance(vals, list) else [vals]) for x in re.split(r"[,\s]+", v) if x]
    return sum(nums) / len(nums) if nums else None


def load(path) -> Library:
    p = Path(path)
    try:
        lib = parse(p.read_text(errors="replace"))
    except OSError as e:
        raise SynthError(f"{p}: cannot read the Liberty file ({e.strerror})") from e
    scale = _cap_scale_ff(lib)
    vdd = float(lib["attrs"].get("nom_voltage", 1.0))
    # internal power values are energies in voltage_unit x capacitive_load_unit (1 V x 1 fF = 1 fJ)
    cells = {}
    for g in lib["groups"]:
        if g["name"] != "cell":
            continue
        c = Cell(g["args"][0], float(g["attrs"].get("area", 0) or 0))
        for sub in g["groups"]:
            if sub["name"] == "ff":
                c.ff = (sub["args"][0], sub["args"][1] if len(sub["args"]) > 1 else None,
                        sub["attrs"].get("clocked_on", ""), sub["attrs"].get("next_state", ""))
                if any(k in sub["attrs"] for k in ("clear", "preset")):
                    c.unsupported = "a flip-flop with clear/preset"
            if sub["name"] in ("latch", "ff_bank", "latch_bank", "statetable"):
                c.unsupported = f"a {sub['name']} cell"
            if sub["name"] != "pin":
                continue
            d = sub["attrs"].get("direction")
            for pin in sub["args"]:
                if d == "input":
                    c.inputs[pin] = float(sub["attrs"].get("capacitance", 0) or 0) * scale
                elif d == "output":
                    c.outputs[pin] = sub["attrs"].get("function", "")
                    e = [m for ip in sub["groups"] if ip["name"] == "internal_power"
                         for t in ip["groups"] if t["name"] in ("rise_power", "fall_power")
                         for m in [_mean_table(t)] if m is not None]
                    if e:
                        c.internal_fj[pin] = sum(e) / len(e) * scale
        cells[c.name] = c
    return Library(lib["args"][0] if lib["args"] else p.stem, vdd, cells, str(p))


def to_verilog(func: str, net) -> str:
    """A Liberty boolean function as a Verilog expression; ``net(pin)`` names the pin's net."""
    toks = re.findall(r"[A-Za-z_][\w\[\]]*|[01]|[!'&*|+^()]", func)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def primary():
        t = take()
        if t == "!":
            v = f"~({primary()})"
        elif t == "(":
            v = expr()
            take()
        elif t in ("0", "1"):
            v = f"1'b{t}"
        else:
            v = net(t)
        while peek() == "'":
            take()
            v = f"~({v})"
        return v

    def conj():
        v = primary()
        while peek() is not None and peek() not in ("|", "+", "^", ")"):
            if peek() in ("&", "*"):
                take()
            v = f"({v} & {primary()})"
        return v

    def xor():
        v = conj()
        while peek() == "^":
            take()
            v = f"({v} ^ {conj()})"
        return v

    def expr():
        v = xor()
        while peek() in ("|", "+"):
            take()
            v = f"({v} | {xor()})"
        return v

    try:
        out = expr()
    except IndexError as e:
        raise SynthError(f"cannot read Liberty function {func!r}") from e
    return out
