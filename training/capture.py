"""Captures: the operand codes, formats, biases and output codes (+ overflow flags)
of the MAC-contract matmuls of chosen layers at one training step.

Written as ``<dir>/capture.npz`` + ``<dir>/capture.json`` (the manifest: one
entry per matmul with its array names, shapes and format strings).
Co-simulation and power estimation read these; ``replay`` re-runs
``fewbits.sim.mac_reference`` on a capture and must reproduce its codes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .qcore import QT

MATMULS = ("forward", "input_grad", "weight_grad", "bias_grad")
MANIFEST = "capture.json"
ARRAYS = "capture.npz"


class Capture:
    """Record the matmuls of ``layers`` (names like ``L0``) during training step ``step``."""

    def __init__(self, layers, step: int = 0):
        self.layers = set(layers)
        self.step = int(step)
        self.current_step = -1
        self.entries: list[dict] = []
        self.arrays: dict[str, np.ndarray] = {}
        self.done = False

    def wants(self, step: int) -> bool:
        return not self.done and step == self.step

    def hook(self, tag: str, a: QT, b: QT, bias: QT | None, out: QT, ovf: torch.Tensor) -> None:
        layer, _, kind = tag.partition(":")
        if layer not in self.layers or a.codes is None:
            return
        key = f"{layer}.{kind}"
        self.arrays[key + ".a"] = a.codes.contiguous().numpy().copy()
        self.arrays[key + ".b"] = b.codes.contiguous().numpy().copy()
        self.arrays[key + ".z"] = out.codes.contiguous().numpy().copy()
        self.arrays[key + ".ovf"] = ovf.contiguous().numpy().copy()
        entry = {
            "name": key, "layer": layer, "matmul": kind,
            "a": key + ".a", "b": key + ".b", "z": key + ".z", "overflow": key + ".ovf",
            "rows": int(a.codes.shape[0]), "k": int(a.codes.shape[1]), "cols": int(b.codes.shape[1]),
            "a_fmt": str(a.fmt), "b_fmt": str(b.fmt), "out_fmt": str(out.fmt),
            "bias": None, "bias_fmt": None, "acc_fmt": None,
        }
        if bias is not None:
            self.arrays[key + ".bias"] = bias.codes.contiguous().numpy().copy()
            entry["bias"], entry["bias_fmt"] = key + ".bias", str(bias.fmt)
        try:
            from fewbits.sim import default_accumulator

            entry["acc_fmt"] = str(default_accumulator(a.fmt, b.fmt, entry["k"],
                                                       None if bias is None else bias.fmt))
        except Exception:  # the default accumulator is implied (None) when sim cannot name it
            pass
        self.entries = [e for e in self.entries if e["name"] != key] + [entry]

    def save(self, directory, meta: dict | None = None) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(d / ARRAYS, **self.arrays)
        manifest = {"version": 1, "step": self.step, "arrays": ARRAYS, "matmuls": self.entries, **(meta or {})}
        tmp = d / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=1))
        tmp.replace(d / MANIFEST)
        self.done = True
        return d / MANIFEST


def load_capture(directory) -> tuple[dict, dict]:
    """(manifest, arrays as int64/bool torch tensors) of a capture folder."""
    d = Path(directory)
    manifest = json.loads((d / MANIFEST).read_text())
    with np.load(d / manifest["arrays"]) as z:
        arrays = {k: torch.from_numpy(z[k].copy()) for k in z.files}
    return manifest, arrays


def replay(directory) -> dict[str, bool]:
    """Re-run ``mac_reference`` on every captured matmul; name -> outputs and flags equal."""
    from fewbits.sim import mac_reference, parse_format

    manifest, arrays = load_capture(directory)
    result = {}
    for e in manifest["matmuls"]:
        acc = parse_format(e["acc_fmt"]) if e.get("acc_fmt") else None
        z, ovf = mac_reference(
            arrays[e["a"]], arrays[e["b"]], parse_format(e["a_fmt"]), parse_format(e["b_fmt"]), acc,
            parse_format(e["out_fmt"]),
            arrays[e["bias"]] if e["bias"] else None,
            parse_format(e["bias_fmt"]) if e["bias_fmt"] else None,
        )
        result[e["name"]] = bool(torch.equal(z, arrays[e["z"]]) and torch.equal(ovf, arrays[e["overflow"]]))
    return result


def record(config, out_dir, layers=None, step: int | None = None, dataset=None) -> Path:
    """Train ``config`` (a ``TrainConfig``) just until training step ``step`` and capture ``layers``
    there; returns the manifest path (``out_dir/capture.json``).  The run itself is not saved."""
    import dataclasses

    from .trainer import Trainer

    cfg = dataclasses.replace(config, capture=tuple(layers or config.capture or ("L0",)),
                              capture_step=config.capture_step if step is None else int(step))
    t = Trainer(cfg, None, dataset=dataset)
    t.warm_up()
    e = 0
    while not t.capture.done:
        lr, m = t.lr(e), t.schedule.momentum(e, cfg.epochs)
        t.qs.controller.tracking = t.spec.dynamic and e == 0 and t.spec.range_warmup == 0
        hook_dir = Path(out_dir)
        t.out = hook_dir.parent  # the trainer writes captures to <out>/capture
        t.train_epoch(e, lr, m, "")
        e += 1
        if e > cfg.epochs + 1000:
            raise ValueError(f"step {cfg.capture_step} never reached")
    produced = Path(t.capture_path)
    if produced.parent != Path(out_dir):
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        for name in (MANIFEST, ARRAYS):
            (produced.parent / name).replace(Path(out_dir) / name)
        produced = Path(out_dir) / MANIFEST
    return produced
