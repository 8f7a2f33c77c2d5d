"""Sweep files (TOML): strict validation, then expansion into experiment points.

Why strict: a sweep runs for hours; a typo (``epoch = 3``, ``fixd:8:4``) must be
rejected before any work, in one line naming the key and its line number.
``tomllib`` reports line numbers only for syntax errors, so the line of a key is
found by scanning the text for its table header and ``key =``.

A sweep file::

    datasets = ["digits"]            # digits | fashion-mnist | mnist | cifar10 | svhn
    networks = ["mlp-small"]
    epochs = 3
    seeds = [0]

    [train]                          # optional trainer knobs
    limit_train = 600                # first N training examples only
    batch_size = 100
    range_every = 100                # dynamic fixed point: batches between range updates (default: the trainer's)
    range_warmup = 0
    paper_bits = false               # widths count no sign bit (the paper's convention)

    [hardware]                       # the MAC array generated for every point
    rows = 2
    cols = 2
    k_max = 256

    [cosim]
    vectors = 200                    # random vectors besides the capture
    simulator = "icarus"

    [synth]
    targets = ["cmos", "ice40"]

    [[grid]]                         # one table per format family; their union is the grid
    family = "fixed"                 # fp32 | float | fixed | dfixed
    widths = [8, 12, 16]             # propagation widths (sign included unless paper_bits)
    update_offsets = [4]             # update width = propagation width + offset (or update_widths)
    int_bits = [3]                   # fixed: radix position = integer bits above the sign

    [[grid]]
    family = "dfixed"
    widths = [8, 10]
    update_widths = [12]             # cross product with widths
    max_overflow = [1e-4, 1e-3]

    [[grid]]
    family = "float"
    formats = ["fp16", "bf16", "float:5:4"]   # update_formats defaults to the same

    [[grid]]
    family = "fp32"
"""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DATASETS = ("digits", "fashion-mnist", "mnist", "cifar10", "svhn")
FAMILIES = ("fp32", "float", "fixed", "dfixed")
SYNTH_TARGETS = ("cmos", "ice40", "xilinx", "ecp5")
SIMULATORS = ("icarus", "verilator")

TOP = {"datasets", "networks", "epochs", "seeds", "name", "train", "hardware", "cosim", "synth", "power", "grid"}
TABLES = {
    "train": {"limit_train", "batch_size", "lr", "range_every", "range_warmup", "paper_bits", "data_dir",
              "capture_step"},
    "hardware": {"rows", "cols", "k_max"},
    "cosim": {"vectors", "simulator", "seed", "matmuls", "max_tiles", "enabled"},
    "synth": {"targets", "parts", "timeout"},
    "power": {"enabled", "max_cycles"},
}
GRID = {
    "fp32": {"family"},
    "float": {"family", "formats", "update_formats"},
    "fixed": {"family", "widths", "update_widths", "update_offsets", "int_bits", "round"},
    "dfixed": {"family", "widths", "update_widths", "update_offsets", "max_overflow", "round"},
}
ROUNDINGS = ("rne", "rna", "rtz", "rdn")


class SweepConfigError(ValueError):
    """One line: ``FILE:LINE: key: what is wrong (what is accepted)``."""


@dataclass
class SweepConfig:
    """A validated sweep: shared settings plus the expanded list of points."""

    name: str
    points: list[dict]
    source: str = ""
    raw: dict = field(default_factory=dict)


# ---------------------------------------------------------------- line finding

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")


def find_line(text: str, table: str | None, key: str | None, index: int | None = None) -> int | None:
    """1-based line of ``key`` inside ``[table]`` (or the ``index``-th ``[[table]]``), or of the header.

    ``table=None`` means the top level (before any header).
    """
    current, count, header_line = None, {}, None
    want_header = None
    for n, line in enumerate(text.splitlines(), 1):
        m = _HEADER.match(line)
        if m and not line.lstrip().startswith("#"):
            name = m.group(2).strip().strip("\"'")
            if m.group(1) == "[[":
                count[name] = count.get(name, -1) + 1
                current = (name, count[name])
            else:
                current = (name, None)
            if current == (table, index):
                header_line = n
                if key is None:
                    want_header = n
                    break
            continue
        here = (None, None) if current is None else current
        if here != (table, index):
            continue
        if key is not None and re.match(rf"^\s*(\"{re.escape(key)}\"|'{re.escape(key)}'|{re.escape(key)})\s*=", line):
            return n
    return want_header or header_line


# ---------------------------------------------------------------- validation helpers

class _Checker:
    def __init__(self, text: str, source: str):
        self.text, self.source = text, source

    def fail(self, where: tuple, key: str | None, message: str):
        table, index = where
        line = find_line(self.text, table, key, index)
        path = ".".join(p for p in [table and (f"{table}[{index}]" if index is not None else table), key] if p)
        loc = f"{self.source}:{line}" if line else self.source
        raise SweepConfigError(f"{loc}: {path or 'file'}: {message}")

    def known(self, where, d: dict, allowed: set, what: str):
        for k in d:
            if k not in allowed:
                self.fail(where, k, f"unknown key (accepted in {what}: {', '.join(sorted(allowed))})")

    def int_list(self, where, d, key, lo=1, hi=None, default=None, allow_empty=False):
        v = d.get(key, default)
        if v is None:
            return None
        if isinstance(v, int) and not isinstance(v, bool):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
            self.fail(where, key, f"{v!r}: accepted a list of integers")
        if not v and not allow_empty:
            self.fail(where, key, "empty list: the grid would have no points (give at least one value)")
        for x in v:
            if x < lo or (hi is not None and x > hi):
                self.fail(where, key, f"{x}: accepted integers {lo}..{hi if hi is not None else ''}")
        return v

    def int_value(self, where, d, key, default, lo=0, hi=None):
        v = d.get(key, default)
        if v is None:
            return None
        if not isinstance(v, int) or isinstance(v, bool) or v < lo or (hi is not None and v > hi):
            rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            self.fail(where, key, f"{v!r}: accepted an integer {rng}")
        return v

    def str_list(self, where, d, key, choices=None, default=None, allow_empty=False):
        v = d.get(key, default)
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            self.fail(where, key, f"{v!r}: accepted a list of strings")
        if not v and not allow_empty:
            self.fail(where, key, "empty list: the grid would have no points (give at least one value)")
        if choices is not None:
            for x in v:
                if x not in choices:
                    self.fail(where, key, f"{x!r}: accepted {', '.join(choices)}")
        return v

    def fmt(self, where, key, s: str, paper_bits: bool = False) -> str:
        from fewbits.sim import FormatError

        try:
            from fewbits.training.precision import parse_run_format

            parse_run_format(s, paper_bits)
        except ImportError:  # training not installed: the format grammar alone
            from fewbits.sim import parse_format

            try:
                parse_format(s)
            except FormatError as e:
                self.fail(where, key, f"bad format string: {e}")
        except FormatError as e:
            self.fail(where, key, f"bad format string: {e}")
        return s


def _num_list(chk: _Checker, where, d, key, default):
    v = d.get(key, default)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        chk.fail(where, key, f"{v!r}: accepted a list of numbers")
    if not v:
        chk.fail(where, key, "empty list: the grid would have no points (give at least one value)")
    for x in v:
        if not (0 < x < 1):
            chk.fail(where, key, f"{x}: accepted overflow rates between 0 and 1 (exclusive)")
    return [float(x) for x in v]


# ---------------------------------------------------------------- the grid

def _fixed_formats(chk, where, g, family, paper_bits) -> list[dict]:
    """Points of one fixed / dfixed grid table: (prop, update, knobs)."""
    widths = chk.int_list(where, g, "widths", 2, 62)
    if widths is None:
        chk.fail(where, None, "missing key 'widths' (a list of propagation widths)")
    if "update_widths" in g and "update_offsets" in g:
        chk.fail(where, "update_offsets", "give either update_widths or update_offsets, not both")
    upd_w = chk.int_list(where, g, "update_widths", 2, 62)
    offs = chk.int_list(where, g, "update_offsets", 0, 40, default=[0])
    rnd = g.get("round", "rne")
    if rnd not in ROUNDINGS:
        chk.fail(where, "round", f"{rnd!r}: accepted {', '.join(ROUNDINGS)}")
    suffix = "" if rnd == "rne" else f",round={rnd}"
    sign = 0 if paper_bits else 1
    out = []
    if family == "fixed":
        ibs = chk.int_list(where, g, "int_bits", -30, 60, default=[3])
        knob_lists = [("int_bits", ib) for ib in ibs]
    else:
        mos = _num_list(chk, where, g, "max_overflow", [1e-4])
        knob_lists = [("max_overflow", mo) for mo in mos]
    for w in widths:
        updates = upd_w if upd_w is not None else [w + o for o in offs]
        for u in updates:
            if u > 62:
                chk.fail(where, "update_offsets", f"update width {u} > 62 (accepted widths 2..62)")
            for knob, val in knob_lists:
                if family == "fixed":
                    pf, uf = f"fixed:{w}:{w - sign - val}{suffix}", f"fixed:{u}:{u - sign - val}{suffix}"
                else:
                    pf, uf = f"dfixed:{w}{suffix}", f"dfixed:{u}{suffix}"
                chk.fmt(where, "widths", pf, paper_bits)
                chk.fmt(where, "widths", uf, paper_bits)
                pt = {"family": family, "prop": pf, "update": uf, "prop_width": w, "update_width": u,
                      "int_bits": None, "max_overflow": None}
                pt[knob] = val
                out.append(pt)
    return out


def _float_formats(chk, where, g, paper_bits) -> list[dict]:
    from fewbits.sim import parse_format

    props = chk.str_list(where, g, "formats")
    ups = chk.str_list(where, g, "update_formats", default=None) if "update_formats" in g else None
    out = []
    for p in props:
        chk.fmt(where, "formats", p)
        if parse_format(p).kind != "float":
            chk.fail(where, "formats", f"{p!r} is not a float format (accepted float:E:M, fp16, bf16, fp8_e5m2, fp8_e4m3)")
        for u in (ups or [p]):
            chk.fmt(where, "update_formats", u)
            if parse_format(u).kind != "float":
                chk.fail(where, "update_formats", f"{u!r} is not a float format")
            out.append({"family": "float", "prop": p, "update": u, "prop_width": parse_format(p).width,
                        "update_width": parse_format(u).width, "int_bits": None, "max_overflow": None})
    return out


def parse_sweep(text: str, source: str = "<sweep>") -> SweepConfig:
    """Validate a sweep file's text and expand it into points (raises SweepConfigError)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        loc = f"{source}:{m.group(1)}" if m else source
        raise SweepConfigError(f"{loc}: not valid TOML: {e}") from None
    chk = _Checker(text, source)
    top = (None, None)
    chk.known(top, raw, TOP, "the top level")
    datasets = chk.str_list(top, raw, "datasets", DATASETS, default=["digits"])
    from_nets = None
    try:
        from fewbits.training.nets import NETS

        from_nets = tuple(sorted(NETS))
    except ImportError:
        pass
    networks = chk.str_list(top, raw, "networks", from_nets, default=["mlp-small"])
    epochs = raw.get("epochs", 3)
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        chk.fail(top, "epochs", f"{epochs!r}: accepted a positive integer (epochs of training)")
    seeds = chk.int_list(top, raw, "seeds", 0, 2**31 - 1, default=[0])
    name = raw.get("name", Path(source).stem if source else "sweep")
    if not isinstance(name, str):
        chk.fail(top, "name", f"{name!r}: accepted a string")

    sections = {}
    for t, allowed in TABLES.items():
        d = raw.get(t, {})
        if not isinstance(d, dict):
            chk.fail(top, t, f"accepted a table [{t}]")
        chk.known((t, None), d, allowed, f"[{t}]")
        sections[t] = d
    tr, hw, co, sy, pw = (sections[k] for k in ("train", "hardware", "cosim", "synth", "power"))
    train = {
        "limit_train": chk.int_value(("train", None), tr, "limit_train", None, lo=1),
        "batch_size": chk.int_value(("train", None), tr, "batch_size", None, lo=1),
        "range_every": chk.int_value(("train", None), tr, "range_every", None, lo=1),  # None: the trainer's
        "range_warmup": chk.int_value(("train", None), tr, "range_warmup", 0, lo=0),
        "capture_step": chk.int_value(("train", None), tr, "capture_step", 0, lo=0),
        "paper_bits": tr.get("paper_bits", False),
        "lr": tr.get("lr"),
        "data_dir": tr.get("data_dir"),
    }
    if not isinstance(train["paper_bits"], bool):
        chk.fail(("train", None), "paper_bits", f"{train['paper_bits']!r}: accepted true or false")
    if train["lr"] is not None and (not isinstance(train["lr"], (int, float)) or train["lr"] <= 0):
        chk.fail(("train", None), "lr", f"{train['lr']!r}: accepted a positive number")
    if train["data_dir"] is not None and not isinstance(train["data_dir"], str):
        chk.fail(("train", None), "data_dir", "accepted a path string")
    hardware = {
        "rows": chk.int_value(("hardware", None), hw, "rows", 2, lo=1, hi=32),
        "cols": chk.int_value(("hardware", None), hw, "cols", 2, lo=1, hi=32),
        "k_max": chk.int_value(("hardware", None), hw, "k_max", 256, lo=1),
    }
    cosim = {
        "enabled": co.get("enabled", True),
        "vectors": chk.int_value(("cosim", None), co, "vectors", 200, lo=0),
        "seed": chk.int_value(("cosim", None), co, "seed", 1, lo=0),
        "max_tiles": chk.int_value(("cosim", None), co, "max_tiles", 64, lo=1),
        "simulator": co.get("simulator", "icarus"),
        "matmuls": chk.str_list(("cosim", None), co, "matmuls", ("forward", "input_grad", "weight_grad"),
                                default=["forward"]),
    }
    if cosim["simulator"] not in SIMULATORS:
        chk.fail(("cosim", None), "simulator", f"{cosim['simulator']!r}: accepted {', '.join(SIMULATORS)}")
    if not isinstance(cosim["enabled"], bool):
        chk.fail(("cosim", None), "enabled", "accepted true or false")
    synth = {
        "targets": chk.str_list(("synth", None), sy, "targets", SYNTH_TARGETS, default=["cmos", "ice40"],
                                allow_empty=True),  # [] = no synthesis
        "parts": sy.get("parts", []),
        "timeout": chk.int_value(("synth", None), sy, "timeout", 1800, lo=1),
    }
    if not isinstance(synth["parts"], list) or not all(p in ("multiplier", "mac_unit") for p in synth["parts"]):
        chk.fail(("synth", None), "parts", f"{synth['parts']!r}: accepted a list of multiplier, mac_unit")
    power = {"enabled": pw.get("enabled", True),
             "max_cycles": chk.int_value(("power", None), pw, "max_cycles", 2000, lo=1)}
    if not isinstance(power["enabled"], bool):
        chk.fail(("power", None), "enabled", "accepted true or false")

    grid = raw.get("grid")
    if grid is None:
        chk.fail(top, None, "no [[grid]] table: the grid of formats is empty (add e.g. [[grid]] family = \"fp32\")")
    if not isinstance(grid, list) or not grid:
        chk.fail(top, "grid", "empty grid: accepted one or more [[grid]] tables")
    formats: list[dict] = []
    for i, g in enumerate(grid):
        where = ("grid", i)
        fam = g.get("family")
        if fam not in FAMILIES:
            chk.fail(where, "family" if "family" in g else None,
                     f"{fam!r}: accepted family = {' | '.join(FAMILIES)}")
        chk.known(where, g, GRID[fam], f"a {fam} [[grid]] table")
        if fam == "fp32":
            formats.append({"family": "fp32", "prop": "fp32", "update": "fp32", "prop_width": 32,
                            "update_width": 32, "int_bits": None, "max_overflow": None})
        elif fam == "float":
            formats += _float_formats(chk, where, g, train["paper_bits"])
        else:
            formats += _fixed_formats(chk, where, g, fam, train["paper_bits"])

    points, seen = [], set()
    for ds, net, seed, f in itertools.product(datasets, networks, seeds, formats):
        pt = {"dataset": ds, "net": net, "epochs": epochs, "seed": seed, "hw_seed": seeds[0], **f,
              "train": train, "hardware": hardware, "cosim": cosim, "synth": synth, "power": power}
        from fewbits.flow.store import canonical

        c = canonical(pt)
        if c not in seen:
            seen.add(c)
            points.append(pt)
    return SweepConfig(name=name, points=points, source=source, raw=raw)


def load_sweep(path) -> SweepConfig:
    """Read and validate a sweep file (raises SweepConfigError with file:line)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise SweepConfigError(f"{p}: cannot read the sweep file ({e.strerror})") from None
    return parse_sweep(text, str(p))
