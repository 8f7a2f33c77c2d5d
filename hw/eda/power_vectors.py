"""Operand streams for power simulation: training captures, random or constant codes -> per-cycle port values.

Why: activity depends on the data, so the default source is a real training
capture (read by ``fewbits.sim.capture``, the one reader of the format).  This
module lays the codes out the way the design consumes them: tiles of a MacArray, dot products of a MacUnit, operand pairs of
a bare multiplier.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from fewbits.hw.eda.synth_tools import SynthError
from fewbits.hw.packing import pack

WARMUP = 2  # reset cycles, not counted


@dataclass
class Operands:
    """Matmul operands as int64 code matrices A (M x K), B (K x N), optional bias (N), runtime shift."""

    a: np.ndarray
    b: np.ndarray
    bias: np.ndarray | None = None
    shift: int = 0
    source: str = ""
    notes: list = field(default_factory=list)
    bias_shift: int = 0  # fa + fb - fbias: the bias's own range (in_bias_shift)


def capture_operands(path, spec, matmuls=None) -> list[Operands]:
    """The operands of every (or the named) captured matmul, in the design's formats.

    The capture is read and fitted by ``fewbits.sim.capture`` (its one mismatch rule: an operand in
    another format is converted by value only when exact, and the note says so; else the matmul is
    skipped).  Power does not compare output codes, so the output format need not be the design's."""
    from fewbits.sim.capture import CaptureError, fit, read_capture
    from fewbits.sim.spec import runtime_shifts

    try:
        cap = read_capture(path)
    except CaptureError as e:
        raise SynthError(str(e)) from None
    out, skipped = [], []
    for m in cap.matmuls:
        if matmuls and m.name not in matmuls and m.matmul not in matmuls:
            continue
        f = fit(m, spec, compare_outputs=False)
        if isinstance(f, str):
            skipped.append(f"{m.name}: {f}")
            continue
        shift = bias_shift = 0
        if m.a_fmt.kind == "dfixed":
            shift, bias_shift = runtime_shifts(m.a_fmt.frac, m.b_fmt.frac, m.out_fmt.frac,
                                               m.bias_fmt.frac if m.bias is not None else None)
            bias_shift = bias_shift or 0
        out.append(Operands(f.a, f.b, f.bias, shift, f"capture {cap.path.parent.name}:{m.name}", list(f.notes),
                            bias_shift))
    if not out:
        raise SynthError(f"{path}: the capture holds no matmul" + (f" named {', '.join(matmuls)}" if matmuls else "")
                         + (f" that fits the design ({'; '.join(skipped)})" if skipped else ""))
    return out


def _rand_codes(rng, fmt, shape, activity, base=None):
    lo, hi = (fmt.min_code, fmt.max_code) if fmt.kind != "float" else (0, (1 << fmt.width) - 1)
    new = rng.integers(lo, hi + 1, size=shape, dtype=np.int64)
    if activity >= 1.0 or base is None:
        return new
    keep = rng.random(shape) >= activity
    return np.where(keep, base, new)


def synthetic(spec, kind: str, seed: int, m: int, k: int, n: int, activity: float = 1.0) -> Operands:
    """Random codes (re-drawn with probability ``activity`` per element, else repeated) or constant codes."""
    rng = np.random.default_rng(seed)
    if kind == "constant":
        a0 = _rand_codes(rng, spec.a_fmt, (1, 1), 1.0)[0, 0]
        b0 = _rand_codes(rng, spec.b_fmt, (1, 1), 1.0)[0, 0]
        return Operands(np.full((m, k), a0), np.full((k, n), b0), None, 0, f"constant a={a0} b={b0}")
    if kind != "random":
        raise SynthError(f"unknown vectors {kind!r}: accepted random, random:P (0<P<=1), constant, or --capture")
    # activity < 1: consecutive operands along K repeat with probability 1 - activity
    a = _rand_codes(rng, spec.a_fmt, (m, k), 1.0)
    b = _rand_codes(rng, spec.b_fmt, (k, n), 1.0)
    for kk in range(1, k):
        a[:, kk] = _rand_codes(rng, spec.a_fmt, (m,), activity, a[:, kk - 1])
        b[kk, :] = _rand_codes(rng, spec.b_fmt, (n,), activity, b[kk - 1, :])
    return Operands(a, b, None, 0, f"random seed {seed} activity {activity:g}")


# port names by role of the bare parts, which have no manifest (hw.eda.synth_parts): a MacUnit and a multiplier
_UNIT_PORTS = {"reset": "rst", "valid": "in_valid", "first": "in_first", "last": "in_last", "a": "a", "b": "b",
               "bias": "bias", "shift": "shift", "bias_shift": "bias_shift"}
_MULTIPLIER_PORTS = {"a": "a", "b": "b"}


def layout(ports: dict, manifest=None) -> tuple[str, dict, int, int]:
    """(kind, {role: port name}, R, C): from the manifest of an array, else the bare part's known names."""
    if manifest is not None:
        return "array", {p.role: p.name for p in manifest.ports if p.direction == "input"}, manifest.rows, manifest.cols
    names = set(ports)
    if {"a", "b", "in_valid"} <= names:
        return "unit", {r: n for r, n in _UNIT_PORTS.items() if n in names}, 1, 1
    if {"a", "b"} <= names and all(ports[p][0] == "input" for p in ("a", "b")):
        return "multiplier", dict(_MULTIPLIER_PORTS), 1, 1
    raise SynthError(f"power needs a fewbits design (a MacArray with its manifest, a MacUnit a/b/in_valid or a "
                     f"multiplier a/b); this one has ports {', '.join(sorted(names))}")


def cycles(ports: dict, spec, ops_list: list[Operands], max_cycles: int, flush: int = 6, manifest=None):
    """Per-cycle input values {port: int} (warm-up + data + flush) and the MAC count of the counted cycles."""
    kind, name, R, C = layout(ports, manifest)
    width = {p: len(b) for p, (d, b) in ports.items()}
    wa, wb, wbias = spec.a_fmt.width, spec.b_fmt.width, spec.bias_fmt.width
    idle = {p: 0 for p, (d, _) in ports.items() if d == "input"}
    rst = name.get("reset")
    seq = [dict(idle, **{rst: 1}) if rst in idle else dict(idle) for _ in range(WARMUP)]
    macs = 0
    budget = max_cycles
    last = dict(idle)
    for ops in ops_list:
        M, K = ops.a.shape
        N = ops.b.shape[1]
        tiles = [(i, j) for i in range(0, M, R) for j in range(0, N, C)]
        for i0, j0 in tiles:
            if budget < K:
                break
            for k in range(K):
                v = dict(idle)
                if kind == "multiplier":
                    v[name["a"]], v[name["b"]] = pack([ops.a[i0, k]], wa), pack([ops.b[k, j0]], wb)
                else:
                    a_vec = [ops.a[i0 + r, k] if i0 + r < M else 0 for r in range(R)]
                    b_vec = [ops.b[k, j0 + c] if j0 + c < N else 0 for c in range(C)]
                    bias = [ops.bias[j0 + c] if ops.bias is not None and j0 + c < N else 0 for c in range(C)]
                    v[name["a"]] = pack(a_vec, wa)
                    v[name["b"]] = pack(b_vec, wb)
                    if name.get("bias") in v:
                        v[name["bias"]] = pack(bias, wbias)
                    v[name["valid"]], v[name["first"]], v[name["last"]] = 1, int(k == 0), int(k == K - 1)
                    for role, sh in (("shift", ops.shift), ("bias_shift", ops.bias_shift)):
                        if name.get(role) in v:
                            v[name[role]] = pack([sh], width[name[role]])
                seq.append(v)
                last = v
                macs += R * C
            budget -= K
    if macs == 0:
        raise SynthError(f"no complete dot product fits in --max-cycles {max_cycles}: raise it")
    # warm-up holds the first operands (valid low, reset high): constant data really is constant
    control = {name.get(r) for r in ("valid", "first", "last", "reset")} - {None}
    first = {p: x for p, x in seq[WARMUP].items() if p not in control}
    for w in range(WARMUP):
        seq[w] = dict(seq[w], **first)
    hold = {p: last[p] for p in last}
    for r in ("valid", "first", "last"):
        if name.get(r) in hold:
            hold[name[r]] = 0
    seq += [dict(hold) for _ in range(flush if kind != "multiplier" else 0)]
    return seq, macs
