"""The training side of captures: a ``Recorder`` that the trainer attaches as a MAC hook during one
training step, keeping the operand codes, formats, biases and output codes (+ overflow flags) of the
matmuls of chosen layers.

Why only this: the file format (writer, validating reader, ``replay``) belongs to ``fewbits.sim.capture``,
which co-simulation and power read too; training a run up to the captured step is the trainer's job
(``fewbits.training.trainer.record``).  This module imports nothing of the trainer.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fewbits.sim.capture import MATMULS, CapturedMatmul, write_capture

from .qcore import QT

__all__ = ["MATMULS", "Recorder"]


def _np(t: torch.Tensor):
    return t.contiguous().numpy().copy()


class Recorder:
    """Record the matmuls of ``layers`` (names like ``L0``) during training step ``step``."""

    def __init__(self, layers, step: int = 0, acc=None):
        self.layers = set(layers)
        self.acc = acc  # the run's float accumulator (None: the exact one of each matmul)
        self.step = int(step)
        self.matmuls: dict[str, CapturedMatmul] = {}
        self.done = False

    def wants(self, step: int) -> bool:
        return not self.done and step == self.step

    def hook(self, tag: str, a: QT, b: QT, bias: QT | None, out: QT, ovf: torch.Tensor) -> None:
        layer, _, kind = tag.partition(":")
        if layer not in self.layers or a.codes is None:
            return
        acc = self.acc
        try:
            from fewbits.sim import default_accumulator

            acc = acc or default_accumulator(a.fmt, b.fmt, int(a.codes.shape[1]), None if bias is None else bias.fmt)
        except Exception:  # the default accumulator is implied (None) when sim cannot name it
            pass
        key = f"{layer}.{kind}"
        self.matmuls.pop(key, None)  # a re-recorded matmul goes last, as before
        self.matmuls[key] = CapturedMatmul(
            name=key, layer=layer, matmul=kind, a=_np(a.codes), b=_np(b.codes), z=_np(out.codes), overflow=_np(ovf),
            a_fmt=a.fmt, b_fmt=b.fmt, out_fmt=out.fmt,
            bias=None if bias is None else _np(bias.codes), bias_fmt=None if bias is None else bias.fmt, acc_fmt=acc)

    def save(self, directory, meta: dict | None = None, run_spec=None) -> Path:
        path = write_capture(directory, list(self.matmuls.values()), self.step, meta, run_spec)
        self.done = True
        return path
