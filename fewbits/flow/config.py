"""Sweep files (TOML): strict validation, then expansion into experiment points.

Why strict: a sweep runs for hours; a typo (``epoch = 3``, ``fixd:8:4``) must be
rejected before any work, in one line naming the key and its line number.
``tomllib`` reports line numbers only for syntax errors, so the line of a key is
found by scanning the text for its table header and ``key =``.

A sweep file::

    datasets = ["digits"]            # digits | fashion-mnist | mnist | cifar10 | svhn
    networks = ["mlp-small", "lenet.py:lenet"]   # built-in, or FILE.py:FUNCTION (your model; see below)
    epochs = 3
    seeds = [0]

    [train]                          # optional trainer knobs
    limit_train = 600                # first N training examples only
    limit_eval = 2000                # first N validation and N test examples only (default: all)
    batch_size = 100
    range_every = 100                # dynamic fixed point: batches between range updates (default: the trainer's)
    range_warmup = 0
    paper_bits = false               # widths count no sign bit (the paper's convention)
    keep_float = ["rnn"]             # model files only: modules left in float, outside the MAC contract

    [hardware]                       # the MAC array generated for every point
    rows = 2                         # (a model file's default: its largest layer's, see below)
    cols = 2
    k_max = 256

    [cosim]
    vectors = 200                    # random vectors besides the capture (0: the capture only)
    corners = true                   # with vectors > 0, also the corner cases (extreme codes, saturation,
                                     # rounding ties: about 1000-4000 tiles, most of a small design's time)
    max_tiles = 64                   # captured tiles per matmul (the top-left block)
    simulator = "icarus"

    [synth]
    targets = ["cmos", "ice40"]      # cmos | ice40 | xilinx | ecp5 | sky130 (the characterized
                                     # sky130_fd_sc_hd cells: µm², maximum clock, and pJ with [power];
                                     # the library is built once under the fewbits cache, ~5 min)
    sky130_cells = "full"            # full (34 cells) | small (inv, buf, nand2, dfxtp: a quick check)

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
    acc = ["exact", "fp32", "fp32,chunk=16"]  # the MAC accumulator (fp32 and float tables; default exact)

    [[grid]]
    family = "fp32"

Your own model: ``networks = ["FILE.py:FUNCTION"]`` names a Python file, relative to the sweep
file's folder, and the function in it that returns the ``nn.Module``
(``fewbits.training.usermodel``).  **The file runs as Python** when the sweep is read (even
``--dry-run``: it is built once on each data set's input shape to check it, before any work) and
in every training stage: a sweep file that names one is a program, and only a file inside the
sweep file's own folder is accepted (symlinks resolved), never an absolute path or one leaving
it.  Its points' store keys hold the file's sha256, so an edited model trains again.  The MAC
array of its points follows from its largest layer (``k_max`` that layer's dot-product length,
``lowp.hardware_shape``) for every ``[hardware]`` key the sweep file does not give.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DATASETS = ("digits", "fashion-mnist", "mnist", "cifar10", "svhn")
FAMILIES = ("fp32", "float", "fixed", "dfixed")
SYNTH_TARGETS = ("cmos", "ice40", "xilinx", "ecp5", "sky130")
SKY130_CELLS = ("full", "small")
SIMULATORS = ("icarus", "verilator")

TOP = {"datasets", "networks", "epochs", "seeds", "name", "train", "hardware", "cosim", "synth", "power", "grid"}
TABLES = {
    "train": {"limit_train", "limit_eval", "batch_size", "lr", "range_every", "range_warmup", "paper_bits", "data_dir",
              "capture_step", "keep_float"},
    "hardware": {"rows", "cols", "k_max", "multiplier"},
    "cosim": {"vectors", "corners", "simulator", "seed", "matmuls", "max_tiles", "enabled"},
    "synth": {"targets", "parts", "timeout", "sky130_cells"},
    "power": {"enabled", "max_cycles", "sky130"},
}
GRID = {
    "fp32": {"family", "acc"},
    "float": {"family", "formats", "update_formats", "acc"},
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

    def fmt(self, where, key, s: str, paper_bits: bool = False):
        """The run format of ``s`` (None for fp32), or one line naming ``key``."""
        from fewbits.sim import FormatError
        from fewbits.sim.run import run_format

        try:
            return run_format(s, paper_bits)
        except FormatError as e:
            self.fail(where, key, f"bad format string: {e}")

    def accs(self, where, d) -> list[dict]:
        """The ``acc`` list of a grid table as point knobs: ``{}`` for the exact accumulator (the
        points, and so their store keys, of a sweep without accumulators are unchanged)."""
        from fewbits.sim import FormatError
        from fewbits.sim.run import run_accumulator

        out = []
        for a in self.str_list(where, d, "acc", default=["exact"]):
            try:
                acc = run_accumulator(a)
            except FormatError as e:
                self.fail(where, "acc", f"bad accumulator: {e}")
            out.append({} if acc is None else {"acc": str(acc)})
        return out

    def flag(self, where, d, key, default) -> bool:
        v = d.get(key, default)
        if not isinstance(v, bool):
            self.fail(where, key, f"{v!r}: accepted true or false")
        return v


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


# ---------------------------------------------------------------- the grid: (family, prop, update, knob) per format pair

def _grid_entry(family, prop, update, **knob) -> dict:
    return {"family": family, "prop": prop, "update": update, "int_bits": None, "max_overflow": None, **knob}


def _fixed_formats(chk, where, g, family, paper_bits) -> list[dict]:
    """Format pairs of one fixed / dfixed grid table (widths as the user counts them)."""
    from fewbits.sim.run import frac_for_int_bits

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
    if family == "fixed":
        knobs = [{"int_bits": ib} for ib in chk.int_list(where, g, "int_bits", -30, 60, default=[3])]
    else:
        knobs = [{"max_overflow": mo} for mo in _num_list(chk, where, g, "max_overflow", [1e-4])]
    out = []
    for w in widths:
        for u in (upd_w if upd_w is not None else [w + o for o in offs]):
            if u > 62:
                chk.fail(where, "update_offsets", f"update width {u} > 62 (accepted widths 2..62)")
            for knob in knobs:
                if family == "fixed":
                    ib = knob["int_bits"]
                    pf = f"fixed:{w}:{frac_for_int_bits(w, ib, paper_bits)}{suffix}"
                    uf = f"fixed:{u}:{frac_for_int_bits(u, ib, paper_bits)}{suffix}"
                else:
                    pf, uf = f"dfixed:{w}{suffix}", f"dfixed:{u}{suffix}"
                chk.fmt(where, "widths", pf, paper_bits)
                chk.fmt(where, "widths", uf, paper_bits)
                out.append(_grid_entry(family, pf, uf, **knob))
    return out


def _float_formats(chk, where, g) -> list[dict]:
    """Format pairs of one float grid table (update_formats default to the same)."""
    props = chk.str_list(where, g, "formats")
    ups = chk.str_list(where, g, "update_formats", default=None) if "update_formats" in g else None
    out = []
    for p in props:
        if not _is_float(chk.fmt(where, "formats", p)):
            chk.fail(where, "formats", f"{p!r} is not a float format (accepted float:E:M, fp16, bf16, fp8_e5m2, fp8_e4m3)")
        for u in (ups or [p]):
            if not _is_float(chk.fmt(where, "update_formats", u)):
                chk.fail(where, "update_formats", f"{u!r} is not a float format")
            out += [_grid_entry("float", p, u, **knob) for knob in chk.accs(where, g)]
    return out


def _is_float(fmt) -> bool:
    return fmt is None or fmt.kind == "float"  # None: fp32, the unquantized float


def _grid(chk, raw, paper_bits) -> list[dict]:
    """The union of the [[grid]] tables: one entry per (family, prop, update, knob)."""
    top = (None, None)
    grid = raw.get("grid")
    if grid is None:
        chk.fail(top, None, "no [[grid]] table: the grid of formats is empty (add e.g. [[grid]] family = \"fp32\")")
    if not isinstance(grid, list) or not grid:
        chk.fail(top, "grid", "empty grid: accepted one or more [[grid]] tables")
    formats: list[dict] = []
    for i, g in enumerate(grid):
        where = ("grid", i)
        if not isinstance(g, dict):
            chk.fail(top, "grid", f"entry {i + 1} is a {type(g).__name__}, not a table: accepted [[grid]] tables "
                                  f"(an array of tables)")
        fam = g.get("family")
        if fam not in FAMILIES:
            chk.fail(where, "family" if "family" in g else None,
                     f"{fam!r}: accepted family = {' | '.join(FAMILIES)}")
        chk.known(where, g, GRID[fam], f"a {fam} [[grid]] table")
        if fam == "fp32":
            formats += [_grid_entry("fp32", "fp32", "fp32", **knob) for knob in chk.accs(where, g)]
        elif fam == "float":
            formats += _float_formats(chk, where, g)
        else:
            formats += _fixed_formats(chk, where, g, fam, paper_bits)
    return formats


# ---------------------------------------------------------------- the shared tables

def _load_toml(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        loc = f"{source}:{m.group(1)}" if m else source
        raise SweepConfigError(f"{loc}: not valid TOML: {e}") from None


def _axes(chk, raw, source) -> tuple:
    """The top-level axes: datasets, networks, epochs, seeds, and the sweep's name."""
    top = (None, None)
    chk.known(top, raw, TOP, "the top level")
    datasets = chk.str_list(top, raw, "datasets", DATASETS, default=["digits"])
    from_nets = None
    try:
        from fewbits.training.nets import NETS

        from_nets = tuple(sorted(NETS))
    except ImportError:
        pass
    networks = chk.str_list(top, raw, "networks", default=["mlp-small"])
    for n in networks:
        if from_nets is not None and n not in from_nets and ".py:" not in n:
            chk.fail(top, "networks", f"{n!r}: accepted {', '.join(from_nets)}, or FILE.py:FUNCTION (your model)")
    epochs = raw.get("epochs", 3)
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        chk.fail(top, "epochs", f"{epochs!r}: accepted a positive integer (epochs of training)")
    seeds = chk.int_list(top, raw, "seeds", 0, 2**31 - 1, default=[0])
    name = raw.get("name", Path(source).stem if source else "sweep")
    if not isinstance(name, str):
        chk.fail(top, "name", f"{name!r}: accepted a string")
    return datasets, networks, epochs, seeds, name


def _tables(chk, raw) -> dict:
    """Each optional table ([train], [hardware], ...) checked for unknown keys ({} when absent)."""
    out = {}
    for t, allowed in TABLES.items():
        d = raw.get(t, {})
        if not isinstance(d, dict):
            chk.fail((None, None), t, f"accepted a table [{t}]")
        chk.known((t, None), d, allowed, f"[{t}]")
        out[t] = d
    return out


def _train_settings(chk, d) -> dict:
    w = ("train", None)
    train = {
        "limit_train": chk.int_value(w, d, "limit_train", None, lo=1),
        "batch_size": chk.int_value(w, d, "batch_size", None, lo=1),
        "range_every": chk.int_value(w, d, "range_every", None, lo=1),  # None: the trainer's
        "range_warmup": chk.int_value(w, d, "range_warmup", 0, lo=0),
        "capture_step": chk.int_value(w, d, "capture_step", 0, lo=0),
        "paper_bits": chk.flag(w, d, "paper_bits", False),
        "lr": d.get("lr"),
        "data_dir": d.get("data_dir"),
    }
    limit_eval = chk.int_value(w, d, "limit_eval", None, lo=1)
    if limit_eval is not None:  # only when set: a point without it keeps its results-store key
        train["limit_eval"] = limit_eval
    lr = train["lr"]
    if lr is not None and (not isinstance(lr, (int, float)) or isinstance(lr, bool) or lr <= 0):
        chk.fail(w, "lr", f"{train['lr']!r}: accepted a positive number")
    if train["data_dir"] is not None and not isinstance(train["data_dir"], str):
        chk.fail(w, "data_dir", "accepted a path string")
    kf = d.get("keep_float")
    if kf is not None:  # model files only (``_user_models``); only when set, so other keys stay as before
        if not isinstance(kf, list) or not kf or not all(isinstance(k, str) and k for k in kf):
            chk.fail(w, "keep_float", f"{kf!r}: accepted a list of module paths of your model "
                                      "(as in named_modules(), e.g. [\"rnn\"]) to leave in float")
        train["keep_float"] = kf
    return train


HARDWARE_DEFAULTS = {"rows": 2, "cols": 2, "k_max": 256}  # a built-in network's array


def _hardware_settings(chk, d) -> dict:
    """The ``[hardware]`` keys the file gives (the defaults are per network: ``_network_hardware``)."""
    from fewbits.sim.spec import MULTIPLIERS

    w = ("hardware", None)
    given = {"rows": chk.int_value(w, d, "rows", None, lo=1, hi=32),
             "cols": chk.int_value(w, d, "cols", None, lo=1, hi=32), "k_max": chk.int_value(w, d, "k_max", None, lo=1)}
    mult = d.get("multiplier", "yosys")
    if mult not in MULTIPLIERS:
        chk.fail(w, "multiplier", f"{mult!r}: accepted {', '.join(MULTIPLIERS)}")
    if mult != "yosys":       # only when chosen: every existing point keeps its key
        given["multiplier"] = mult
    return {k: v for k, v in given.items() if v is not None}


def _cosim_settings(chk, d) -> dict:
    w = ("cosim", None)
    cosim = {
        "enabled": chk.flag(w, d, "enabled", True),
        "vectors": chk.int_value(w, d, "vectors", 200, lo=0),
        "seed": chk.int_value(w, d, "seed", 1, lo=0),
        "max_tiles": chk.int_value(w, d, "max_tiles", 64, lo=1),
        "simulator": d.get("simulator", "icarus"),
        "matmuls": chk.str_list(w, d, "matmuls", ("forward", "input_grad", "weight_grad"), default=["forward"]),
    }
    if cosim["simulator"] not in SIMULATORS:
        chk.fail(w, "simulator", f"{cosim['simulator']!r}: accepted {', '.join(SIMULATORS)}")
    if not chk.flag(w, d, "corners", True):  # only when off: the points (store keys) of other sweeps stay
        cosim["corners"] = False
    return cosim


def _synth_settings(chk, d) -> dict:
    w = ("synth", None)
    synth = {
        "targets": chk.str_list(w, d, "targets", SYNTH_TARGETS, default=["cmos", "ice40"],
                                allow_empty=True),  # [] = no synthesis
        "parts": d.get("parts", []),
        "timeout": chk.int_value(w, d, "timeout", 1800, lo=1),
    }
    if not isinstance(synth["parts"], list) or not all(p in ("multiplier", "mac_unit") for p in synth["parts"]):
        chk.fail(w, "parts", f"{synth['parts']!r}: accepted a list of multiplier, mac_unit")
    if "sky130_cells" in d:   # only when given: the points (and their store keys) stay as before otherwise
        if d["sky130_cells"] not in SKY130_CELLS:
            chk.fail(w, "sky130_cells", f"{d['sky130_cells']!r}: accepted {', '.join(SKY130_CELLS)}")
        synth["sky130_cells"] = d["sky130_cells"]
    return synth


def _power_settings(chk, d) -> dict:
    w = ("power", None)
    power = {"enabled": chk.flag(w, d, "enabled", True), "max_cycles": chk.int_value(w, d, "max_cycles", 2000, lo=1)}
    if not chk.flag(w, d, "sky130", True):  # only when off: the points (and their store keys) stay as before otherwise
        power["sky130"] = False
    return power


# ---------------------------------------------------------------- points and their run specs

def run_spec(point: dict):
    """The ``fewbits.sim.RunSpec`` of a point: its formats (paper bits resolved here, once), range
    settings and MAC array.  Every stage and the report take the spec, never the strings."""
    from fewbits.sim.run import RunSpec

    t = point["train"]
    shape = {k: v for k, v in (point.get("hardware") or {}).items() if k in ("rows", "cols", "k_max", "multiplier")}
    return RunSpec.parse(point["prop"], point["update"], t.get("paper_bits", False),
                         max_overflow=point.get("max_overflow") or 1e-4, range_every=t.get("range_every"),
                         range_warmup=t.get("range_warmup", 0), acc=point.get("acc"), **shape)  # a training-only point has no array


def _user_widths(spec, paper_bits: bool) -> dict:
    """The widths as the sweep file counts them.  Nothing reads them: they stay in the point only
    because the point's hash (its results-store key) has always included them."""
    if paper_bits:
        return {"prop_width": spec.prop_paper_bits, "update_width": spec.update_paper_bits}
    return {"prop_width": spec.prop_fmt.width, "update_width": spec.update_fmt.width}


def _user_models(chk, networks, datasets, train: dict, base: Path) -> dict:
    """``(network, dataset) -> {"model": ..., "hardware": ...}`` for every network that names a model
    file: the file confined to ``base`` (the sweep file's folder), run and probed on the data set's
    input shape; any problem is one line naming ``networks``."""
    refs = [n for n in networks if ".py:" in n]
    keep_float = train.get("keep_float")
    if keep_float and not refs:
        chk.fail(("train", None), "keep_float", "applies to model files (networks = [\"FILE.py:FUNCTION\"]); "
                                               "this sweep has only built-in networks")
    if not refs:
        return {}
    from fewbits.training import datasets as ds
    from fewbits.training.usermodel import ModelError, parse_ref, probe

    top, out, shapes = (None, None), {}, {}
    for net in refs:
        try:
            ref = parse_ref(net, base=base, confine=True)
        except ModelError as e:
            chk.fail(top, "networks", str(e))
        for name in datasets:
            if name not in shapes:
                try:
                    data = ds.load(name, train.get("data_dir"))
                except ds.DatasetError as e:
                    chk.fail(top, "datasets", f"{name}: {e} (a model file is built on the data set's input shape)")
                shapes[name] = (data.input_shape, data.n_classes)
            try:
                p = probe(ref, *shapes[name], keep_float or ())
            except ModelError as e:
                chk.fail(top, "networks", f"on {name}: {e}")
            out[(net, name)] = {"model": {"path": str(ref.path), "function": ref.function, "sha256": ref.sha256(),
                                          "capture": p.largest, **({"keep_float": keep_float} if keep_float else {})},
                                "hardware": p.hardware}
    return out


def _network_hardware(shared: dict, model: dict | None) -> dict:
    """A point's MAC array: the ``[hardware]`` keys given, the rest a model file's largest layer's or the
    built-in defaults (so a built-in network's points, and their store keys, are as before)."""
    base = model["hardware"] if model else HARDWARE_DEFAULTS
    hw = {k: shared["hardware"].get(k, base[k]) for k in ("rows", "cols", "k_max")}
    if "multiplier" in shared["hardware"]:
        hw["multiplier"] = shared["hardware"]["multiplier"]
    return hw


def _points(axes, formats, shared, models: dict | None = None) -> list[dict]:
    """The cross product of the axes and the grid, duplicates dropped, each with its run spec checked."""
    from fewbits.flow.store import canonical

    datasets, networks, epochs, seeds = axes
    models = models or {}
    points, seen = [], set()
    for ds, net, seed, f in itertools.product(datasets, networks, seeds, formats):
        # hw_seed: the seed whose training capture the configuration's hardware stages read (flow.stages);
        # left out for the first seed itself, so its point keys are those of stores made before it existed
        first = {} if seed == seeds[0] else {"hw_seed": seeds[0]}
        user = models.get((net, ds))
        pt = {"dataset": ds, "net": net, "epochs": epochs, "seed": seed, **first, **f, **shared,
              "train": {k: v for k, v in shared["train"].items() if k != "keep_float"},  # in pt["model"]
              "hardware": _network_hardware(shared, user)}
        if user:
            pt["model"] = user["model"]
        pt.update(_user_widths(run_spec(pt), shared["train"]["paper_bits"]))
        c = canonical(pt)
        if c not in seen:
            seen.add(c)
            points.append(pt)
    return points


def parse_sweep(text: str, source: str = "<sweep>") -> SweepConfig:
    """Validate a sweep file's text and expand it into points (raises SweepConfigError).

    Model files it names are relative to ``source``'s folder (the working folder when ``source``
    is no file) and run: see the module docstring."""
    raw = _load_toml(text, source)
    chk = _Checker(text, source)
    datasets, networks, epochs, seeds, name = _axes(chk, raw, source)
    t = _tables(chk, raw)
    shared = {"train": _train_settings(chk, t["train"]), "hardware": _hardware_settings(chk, t["hardware"]),
              "cosim": _cosim_settings(chk, t["cosim"]), "synth": _synth_settings(chk, t["synth"]),
              "power": _power_settings(chk, t["power"])}
    formats = _grid(chk, raw, shared["train"]["paper_bits"])
    base = Path(source).resolve().parent if source and Path(source).is_file() else Path.cwd()
    models = _user_models(chk, networks, datasets, shared["train"], base)
    points = _points((datasets, networks, epochs, seeds), formats, shared, models)
    return SweepConfig(name=name, points=points, source=source, raw=raw)


def load_sweep(path) -> SweepConfig:
    """Read and validate a sweep file (raises SweepConfigError with file:line)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise SweepConfigError(f"{p}: cannot read the sweep file ({e.strerror})") from None
    return parse_sweep(text, str(p))
