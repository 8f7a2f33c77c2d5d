"""The capture file format: one writer, one validating reader, one rule for a format mismatch.

Why here: a capture (the operand codes, formats, biases and output codes of the
MAC-contract matmuls of chosen layers at one training step) is written by
training and read by co-simulation, power estimation and the sweep flow.
``sim`` is the layer all of them import, so the format lives here once:

* ``<dir>/capture.json``: ``{"version": 1, "step", "arrays": "capture.npz",
  "matmuls": [{name, layer, matmul, a, b, z, overflow, bias, rows, k, cols,
  a_fmt, b_fmt, out_fmt, bias_fmt, acc_fmt}], "run_spec": {...}, ...meta}``; every
  array field names an array of ``<dir>/capture.npz``; the optional ``run_spec`` is the
  ``RunSpec`` of the run (formats, accumulator, the MAC array of its largest layer), from which
  ``fewbits cosim --capture DIR`` generates the design (``recorded_spec``).
* ``write_capture(directory, matmuls, step, meta, run_spec)`` writes both (atomically).
* ``read_capture(path)`` (a folder, its ``capture.json`` or its ``capture.npz``)
  returns a typed ``Capture`` or raises ``CaptureError``: one line naming the
  file and the field (unreadable JSON or npz, a missing field or array, array
  shapes that disagree with the JSON, an ``arrays`` path leaving the folder).

The mismatch rule (``fit``), the one every consumer applies: **codes are
never changed in value**.  A captured operand (``a``, ``b``, ``bias``) whose
format differs from the design's is converted by value when every captured
code is exactly representable in the design's format (and the conversion is
noted); otherwise the matmul is skipped with the reason.  Output codes are
never converted: a consumer that compares them (co-simulation) skips a matmul
whose output format is not the design's.  A dynamic-fixed-point design takes
any ``frac`` at run time, so there the design's format takes the capture's
``frac``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

MANIFEST = "capture.json"
ARRAYS = "capture.npz"
VERSION = 1
MATMULS = ("forward", "input_grad", "weight_grad", "bias_grad")


class CaptureError(ValueError):
    """A capture that cannot be used: the message is one line naming the file and the field."""


@dataclasses.dataclass(frozen=True)
class CapturedMatmul:
    """One captured matmul ``z, overflow = requant(a @ b + bias)`` in its own formats (``fewbits.sim`` objects)."""

    name: str  # "<layer>.<matmul>", e.g. "L0.forward"
    layer: str
    matmul: str
    a: np.ndarray  # int64 (rows, k)
    b: np.ndarray  # int64 (k, cols)
    z: np.ndarray  # int64 (rows, cols): the training model's output codes
    overflow: np.ndarray  # bool (rows, cols)
    a_fmt: object
    b_fmt: object
    out_fmt: object
    bias: np.ndarray | None = None  # int64 (cols,)
    bias_fmt: object = None
    acc_fmt: object = None  # None: the default accumulator of the operand formats

    @property
    def rows(self) -> int:
        return int(self.a.shape[0])

    @property
    def k(self) -> int:
        return int(self.a.shape[1])

    @property
    def cols(self) -> int:
        return int(self.b.shape[1])


@dataclasses.dataclass(frozen=True)
class Capture:
    """A read capture: its manifest path, its matmuls in file order, and the rest of its JSON (``meta``)."""

    path: Path
    step: int
    matmuls: tuple[CapturedMatmul, ...]
    meta: dict


# ---------------------------------------------------------------- writer

def write_capture(directory, matmuls, step: int = 0, meta: dict | None = None, run_spec=None) -> Path:
    """Write ``matmuls`` (``CapturedMatmul``) as ``directory/capture.npz`` + ``capture.json``; the manifest path.

    ``run_spec``: the run's ``RunSpec`` (with its MAC array), recorded for ``recorded_spec``."""
    import io

    from fewbits.files import atomic_write_bytes, atomic_write_text

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    entries = []
    for m in matmuls:
        key = m.name
        arrays[key + ".a"], arrays[key + ".b"] = np.asarray(m.a), np.asarray(m.b)
        arrays[key + ".z"], arrays[key + ".ovf"] = np.asarray(m.z), np.asarray(m.overflow)
        entry = {"name": key, "layer": m.layer, "matmul": m.matmul,
                 "a": key + ".a", "b": key + ".b", "z": key + ".z", "overflow": key + ".ovf",
                 "rows": m.rows, "k": m.k, "cols": m.cols,
                 "a_fmt": str(m.a_fmt), "b_fmt": str(m.b_fmt), "out_fmt": str(m.out_fmt),
                 "bias": None, "bias_fmt": None, "acc_fmt": None if m.acc_fmt is None else str(m.acc_fmt)}
        if m.bias is not None:
            arrays[key + ".bias"] = np.asarray(m.bias)
            entry["bias"], entry["bias_fmt"] = key + ".bias", str(m.bias_fmt)
        entries.append(entry)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(d / ARRAYS, buf.getvalue())
    manifest = {"version": VERSION, "step": int(step), "arrays": ARRAYS, "matmuls": entries, **(meta or {})}
    if run_spec is not None:
        manifest["run_spec"] = run_spec.to_dict()
    atomic_write_text(d / MANIFEST, json.dumps(manifest, indent=1))
    return d / MANIFEST


# ---------------------------------------------------------------- reader

def manifest_path(path) -> Path:
    """The ``capture.json`` of a capture folder, of its json, or of its npz (which need not exist)."""
    p = Path(path)
    if p.is_dir():
        return p / MANIFEST
    return p.parent / MANIFEST if p.suffix == ".npz" else p


def _fmt(where: str, e: dict, field: str, optional: bool = False):
    from fewbits.sim import parse_format

    v = e.get(field)
    if v is None and optional:
        return None
    if not isinstance(v, str):
        raise CaptureError(f"{where}.{field}: missing or not a format string")
    try:
        return parse_format(v)
    except ValueError as exc:
        raise CaptureError(f"{where}.{field}: {' '.join(str(exc).split())}") from None


def _array(arrays: dict, npz: Path, where: str, e: dict, field: str, shape, dtype) -> np.ndarray:
    name = e.get(field)
    if not isinstance(name, str) or name not in arrays:
        raise CaptureError(f"{where}.{field}: names no array of {npz.name} ({name!r})")
    x = arrays[name]
    if shape is not None and tuple(x.shape) != tuple(shape):
        raise CaptureError(f"{where}.{field}: array {name!r} has shape {tuple(x.shape)}, the JSON says {tuple(shape)}")
    if dtype is bool:
        if x.dtype != np.bool_:
            raise CaptureError(f"{where}.{field}: array {name!r} is {x.dtype}, not bool")
        return x
    if not np.issubdtype(x.dtype, np.integer):
        raise CaptureError(f"{where}.{field}: array {name!r} is {x.dtype}, not integer codes")
    return x.astype(np.int64)


def read_capture(path) -> Capture:
    """The capture at ``path`` (its folder, ``capture.json`` or ``capture.npz``), validated; else ``CaptureError``."""
    man = manifest_path(path)
    if not man.is_file():
        raise CaptureError(f"{path}: no capture (accepted: a capture folder with {MANIFEST} + {ARRAYS} "
                           "from `fewbits train --capture ...`, or its capture.json)")
    try:
        doc = json.loads(man.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CaptureError(f"{man}: unreadable JSON ({' '.join(str(e).split())})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("matmuls"), list):
        raise CaptureError(f"{man}: matmuls: missing or not a list")
    rel = doc.get("arrays", ARRAYS)
    folder = man.parent.resolve()
    npz = (man.parent / str(rel)).resolve()
    if not isinstance(rel, str) or Path(rel).is_absolute() or folder not in npz.parents:
        raise CaptureError(f"{man}: arrays: {rel!r} leaves the capture folder (accepted: a file name inside it)")
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 - zipfile/zlib/numpy raise many kinds on a truncated file
        raise CaptureError(f"{npz}: unreadable arrays ({type(e).__name__}: {' '.join(str(e).split())})") from None
    out = []
    for i, e in enumerate(doc["matmuls"]):
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            raise CaptureError(f"{man}: matmuls[{i}].name: missing")
        where = f"{man}: matmuls[{e['name']}]"
        for f in ("rows", "k", "cols"):  # JSON integers only: int("50") or int(50.7) would pass silently
            v = e.get(f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise CaptureError(f"{where}.{f}: {json.dumps(v)} (accepted a positive JSON integer)")
        r, k, c = e["rows"], e["k"], e["cols"]
        bias = None
        if e.get("bias") is not None:
            bias = _array(arrays, npz, where, e, "bias", None, int)
            if bias.size != c:
                raise CaptureError(f"{where}.bias: array {e['bias']!r} has {bias.size} codes, the JSON says cols {c}")
            bias = bias.reshape(-1)
        out.append(CapturedMatmul(
            name=e["name"], layer=str(e.get("layer", "")), matmul=str(e.get("matmul", "")),
            a=_array(arrays, npz, where, e, "a", (r, k), int), b=_array(arrays, npz, where, e, "b", (k, c), int),
            z=_array(arrays, npz, where, e, "z", (r, c), int),
            overflow=_array(arrays, npz, where, e, "overflow", (r, c), bool),
            a_fmt=_fmt(where, e, "a_fmt"), b_fmt=_fmt(where, e, "b_fmt"), out_fmt=_fmt(where, e, "out_fmt"),
            bias=bias, bias_fmt=_fmt(where, e, "bias_fmt", optional=bias is None),
            acc_fmt=_fmt(where, e, "acc_fmt", optional=True)))
    meta = {k: v for k, v in doc.items() if k not in ("matmuls", "arrays", "step")}
    return Capture(man, int(doc.get("step", 0)), tuple(out), meta)


def recorded_spec(capture: Capture):
    """The ``RunSpec`` a capture records (its formats, accumulator and MAC array), or None for a
    capture written without one; a damaged record is a ``CaptureError`` naming the field."""
    from .run import RunSpec

    d = capture.meta.get("run_spec")
    if d is None:
        return None
    try:
        return RunSpec.from_dict(d)
    except (ValueError, TypeError) as e:
        raise CaptureError(f"{capture.path}: run_spec: {' '.join(str(e).split())}") from None


# ---------------------------------------------------------------- the one mismatch rule

def _design_fmt(src, dst):
    """The design's format as it applies to codes of ``src`` (a dynamic design takes the capture's frac)."""
    if getattr(dst, "kind", "") == "dfixed" and getattr(src, "kind", "") in ("fixed", "dfixed"):
        return dst.with_frac(src.frac)
    return dst


def _same_layout(src, dst) -> bool:
    """Codes of ``src`` mean the same values in ``dst`` (equal formats, or fixed-point ones differing only in
    rounding/overflow, which act on results, not on stored codes)."""
    if src == dst:
        return True
    fixed = ("fixed", "dfixed")
    return (getattr(src, "kind", "") in fixed and getattr(dst, "kind", "") in fixed and src.width == dst.width
            and src.frac == dst.frac and src.signed == dst.signed and src.symmetric == dst.symmetric)


def convert_exact(codes: np.ndarray, src, dst) -> np.ndarray | None:
    """``codes`` of ``src`` as codes of ``dst`` with the same values, or None when any value is not representable."""
    import torch

    codes = np.asarray(codes, dtype=np.int64)
    if _same_layout(src, dst):
        return codes
    fixed = ("fixed", "dfixed")
    if src.kind in fixed and dst.kind in fixed:  # exact integer arithmetic (widths up to 64 and beyond float64)
        sh = dst.frac - src.frac
        if sh >= 0:
            if codes.size and (np.abs(codes).max() >= 1 << max(0, 63 - sh)):
                return None
            out = codes << sh
        else:
            if np.any(codes & ((1 << -sh) - 1)):
                return None
            out = codes >> -sh
        return out if not out.size or (out.min() >= dst.min_code and out.max() <= dst.max_code) else None
    v = src.decode(torch.from_numpy(codes)).to(torch.float64)
    out = dst.encode(v)
    back = dst.decode(out).to(torch.float64)
    same = (back == v) | (torch.isnan(back) & torch.isnan(v))
    if dst.kind == "float":  # -0.0 keeps its sign, inf its value: == already says so, except for the sign of 0
        same &= torch.signbit(back) == torch.signbit(v)
    return out.numpy().astype(np.int64) if bool(same.all()) else None


@dataclasses.dataclass(frozen=True)
class Fitted:
    """A captured matmul in the design's formats (``fa``, ``fb``, ``fo``, ``fz`` carry the capture's fracs)."""

    source: CapturedMatmul
    a: np.ndarray
    b: np.ndarray
    bias: np.ndarray | None
    fa: object
    fb: object
    fo: object
    fz: object
    notes: tuple[str, ...]


def fit(m: CapturedMatmul, spec, compare_outputs: bool) -> Fitted | str:
    """``m`` in ``spec``'s formats by the module's one rule, or the reason it cannot be (a one-line string)."""
    notes, why, conv = [], [], {}
    for what, codes, src, dst in (("a", m.a, m.a_fmt, spec.a_fmt), ("b", m.b, m.b_fmt, spec.b_fmt),
                                  ("bias", m.bias, m.bias_fmt, spec.bias_fmt)):
        if codes is None:
            conv[what] = (None, None)
            continue
        d = _design_fmt(src, dst)
        out = convert_exact(codes, src, d)
        if out is None:
            why.append(f"{what} {src} is not exactly representable in the design's {dst}")
        elif not _same_layout(src, d):
            notes.append(f"{what}: capture {src} converted by value to design {d}")
        conv[what] = (out, d)
    fo = _design_fmt(m.out_fmt, spec.out_fmt)
    if compare_outputs and not _same_layout(m.out_fmt, fo):
        why.append(f"out {m.out_fmt} is not the design's {spec.out_fmt}")
    if why:
        return "; ".join(why)
    return Fitted(m, conv["a"][0], conv["b"][0], conv["bias"][0], conv["a"][1], conv["b"][1], fo, conv["bias"][1],
                  tuple(notes))


def replay(path) -> dict[str, bool]:
    """Re-run ``mac_reference`` on every captured matmul; name -> its output codes and flags reproduced."""
    import torch

    from fewbits.sim import mac_reference

    result = {}
    for m in read_capture(path).matmuls:
        t = torch.from_numpy
        z, ovf = mac_reference(t(m.a), t(m.b), m.a_fmt, m.b_fmt, m.acc_fmt, m.out_fmt,
                               None if m.bias is None else t(m.bias), m.bias_fmt)
        result[m.name] = bool(torch.equal(z, t(m.z)) and torch.equal(ovf, t(m.overflow)))
    return result
