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

import itertools
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


def _fold(func: str, var, const, inv, and_, xor, or_):
    """Read a Liberty boolean function (``!``/``'`` not, ``&``/``*``/juxtaposition and, ``^``, ``|``/``+``),
    combining its parts with the given operations (Verilog text, or a value)."""
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
            v = inv(primary())
        elif t == "(":
            v = expr()
            take()
        elif t in ("0", "1"):
            v = const(int(t))
        else:
            v = var(t)
        while peek() == "'":
            take()
            v = inv(v)
        return v

    def conj():
        v = primary()
        while peek() is not None and peek() not in ("|", "+", "^", ")"):
            if peek() in ("&", "*"):
                take()
            v = and_(v, primary())
        return v

    def xor_():
        v = conj()
        while peek() == "^":
            take()
            v = xor(v, conj())
        return v

    def expr():
        v = xor_()
        while peek() in ("|", "+"):
            take()
            v = or_(v, xor_())
        return v

    try:
        out = expr()
    except IndexError as e:
        raise SynthError(f"cannot read Liberty function {func!r}") from e
    return out


def to_verilog(func: str, net) -> str:
    """A Liberty boolean function as a Verilog expression; ``net(pin)`` names the pin's net."""
    return _fold(func, net, lambda c: f"1'b{c}", lambda a: f"~({a})", lambda a, b: f"({a} & {b})",
                 lambda a, b: f"({a} ^ {b})", lambda a, b: f"({a} | {b})")


def evaluate(func: str, values: dict) -> int:
    """The function's value (0/1) for 0/1 ``values`` of its pins (a pin not given is 0, as unconnected)."""
    return _fold(func, lambda p: values.get(p, 0), lambda c: c, lambda a: 1 - a, lambda a, b: a & b,
                 lambda a, b: a ^ b, lambda a, b: a | b)


def pins(func: str) -> list[str]:
    """The pin names a function reads, in order of first use."""
    seen: list[str] = []
    _fold(func, lambda p: seen.append(p) if p not in seen else None, lambda c: None, lambda a: None,
          lambda a, b: None, lambda a, b: None, lambda a, b: None)
    return seen


def udp(name: str, func: str, ins: list[str]) -> str:
    """A combinational user-defined primitive computing ``func`` of ``ins``: one table-lookup node per cell
    output in the simulator, where the function's expression is a tree of gates (a sum of minterms for the
    fewbits-characterized cells: 75 gates for a nand4).  Rows for every 0/1/x input whose completions all
    give the same output, so an unknown input the output does not depend on stays masked, as in the cell."""
    rows = []
    for vec in itertools.product("01x", repeat=len(ins)):
        xs = [i for i, v in enumerate(vec) if v == "x"]
        outs = set()
        for fill in itertools.product((0, 1), repeat=len(xs)):
            vals = {p: int(v) for p, v in zip(ins, vec) if v != "x"}
            vals.update({ins[i]: f for i, f in zip(xs, fill)})
            outs.add(evaluate(func, vals))
        if len(outs) == 1:
            rows.append(f"    {' '.join(vec)} : {outs.pop()};")
    ports = ", ".join(f"i{j}" for j in range(len(ins)))
    return "\n".join([f"primitive {name} (y, {ports});", "  output y;", f"  input {ports};", "  table", *rows,
                      "  endtable", "endprimitive"])
