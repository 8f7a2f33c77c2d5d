"""Bit-identity of the built-in networks' training (issue 16: one quantized-layer implementation).

Every built-in network trains 20 steps (2 epochs of 10 batches: the first with the range
controller tracking the data, the second with its three-branch rule every 2 batches) at
dynamic fixed point 10/12 (paper bits), fixed point, fp16 and fp32 from a fixed seed.  Every
parameter, every momentum buffer, every range group's state and the errors measured after
each epoch must equal those of the *reference*: ``nets_identity_reference.json``.

The reference is a regression reference, not a hard-coded result: SHA-256 digests (first 16
hex digits) of the canonical state below, written by ``regenerate()`` from the code of main at
commit 637ff8a (the built-in networks on ``training/layers.py``, before they were rebased on
``training/lowp.py``).  Regenerate it (only when the arithmetic is *meant* to change, and say so
in the commit) with::

    .venv/bin/python -m tests.training.test_nets_identity

A digest of equal tensors is equal: the values are hashed as contiguous float64 with -0
folded into +0 (``torch.equal`` treats them as equal too) and their shape.  The canonical
state names a layer's weights as the paper's K x N matrix ``L<i>.w`` (K inputs, N outputs; a
convolution's K is C*kh*kw in that order), its bias ``L<i>.b``, the momentum buffers
``L<i>.update_w``/``L<i>.update_b`` and each range group by its name in the built-in layers
(``canonical_state`` maps another implementation's names and layouts onto these).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fewbits.training import datasets as ds
from fewbits.training.trainer import TrainConfig, Trainer

REFERENCE = Path(__file__).with_name("nets_identity_reference.json")
SEED = 11
STEPS_PER_EPOCH, EPOCHS = 10, 2  # 20 steps

#: (prop, update, paper_bits): the paper's dynamic fixed point 10/12, fixed point, fp16, fp32
FORMATS = {
    "dfixed10-12": ("dfixed:10", "dfixed:12", True),
    "fixed12.6-16.10": ("fixed:12:6", "fixed:16:10", False),
    "fp16": ("fp16", "fp16", False),
    "fp32": ("fp32", "fp32", False),
}
#: net -> (data set, batch size): the MLPs and conv-small on digits' 8x8 images, the paper's conv
#: nets on (a slice of) Fashion-MNIST's 28x28 images, which they need
NETS = {
    "mlp-small": ("digits", 20),
    "pi-mlp": ("digits", 20),
    "conv-small": ("digits", 10),
    "mnist-conv": ("fashion-mnist", 4),
    "cifar-conv": ("fashion-mnist", 4),
}
SLOW_NETS = {"mnist-conv", "cifar-conv"}
EVAL_EXAMPLES = 40


@functools.lru_cache(maxsize=None)
def _dataset(name: str) -> ds.Dataset:
    return ds.load(name)


def _data(name: str, batch: int) -> ds.Dataset:
    """The first ``10 * batch`` training and ``EVAL_EXAMPLES`` validation/test examples of ``name``."""
    d = _dataset(name)
    n = STEPS_PER_EPOCH * batch
    cut = lambda s, k: ds.Split(np.array(s.x[:k]), np.array(s.y[:k]))  # noqa: E731
    return ds.Dataset(d.name, cut(d.train, n), cut(d.valid, EVAL_EXAMPLES), cut(d.test, EVAL_EXAMPLES), d.n_classes)


def train(net: str, fmt: str) -> Trainer:
    """``net`` trained 20 steps at ``fmt`` from seed ``SEED``."""
    data_name, batch = NETS[net]
    prop, update, paper = FORMATS[fmt]
    cfg = TrainConfig(dataset=data_name, net=net, epochs=EPOCHS, batch_size=batch, seed=SEED, prop=prop,
                      update=update, paper_bits=paper, range_every=2)
    t = Trainer(cfg, dataset=_data(data_name, batch))
    t.run()
    assert t.step == STEPS_PER_EPOCH * EPOCHS
    return t


def canonical_state(t: Trainer) -> dict[str, object]:
    """Name -> tensor (parameters, momentum buffers) or plain value (range groups, errors)."""
    out: dict[str, object] = {}
    for name in t.net.site_names:  # on lowp: N x K (x kh x kw) site weights, lowp.SGD's momentum buffers
        m = t.net.model.get_submodule(name)
        out[f"{name}.w"] = m.weight.reshape(m.weight.shape[0], -1).t()
        out[f"{name}.b"] = m.bias
        out[f"{name}.update_w"] = t.net.opt.buf[f"{name}.update_w"]
        out[f"{name}.update_b"] = t.net.opt.buf[f"{name}.update_b"]
    ctl = t.qs.controller
    for name, g in ctl.groups.items():
        out[f"range:{name}"] = [g.int_bits, g.set, g.count, g.overflow, g.overflow_narrower, g.moves]
    out["range-batches"] = ctl.batches
    out["errors"] = [[h["train_error"], h["valid_error"], h["test_error"], h["overflow_rate"]] for h in t.history]
    return out


def _digest(v) -> str:
    h = hashlib.sha256()
    if isinstance(v, torch.Tensor):
        t = v.detach().to(torch.float64).contiguous() + 0.0  # -0 -> +0 (torch.equal's view)
        h.update(repr(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    else:
        h.update(json.dumps(v, sort_keys=True).encode())
    return h.hexdigest()[:16]


def fingerprint(t: Trainer) -> dict[str, str]:
    return {k: _digest(v) for k, v in sorted(canonical_state(t).items())}


def _reference() -> dict:
    return json.loads(REFERENCE.read_text())


CASES = [pytest.param(net, fmt, id=f"{net}-{fmt}-seed{SEED}",
                      marks=[pytest.mark.slow] if net in SLOW_NETS else [])
         for net in NETS for fmt in FORMATS]


@pytest.mark.parametrize("net,fmt", CASES)
def test_twenty_steps_match_the_reference_bit_for_bit(net, fmt):
    want = _reference()["cases"][f"{net}/{fmt}"]
    got = fingerprint(train(net, fmt))
    differ = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))
    assert not differ, f"{net} at {fmt}: {len(differ)} of {len(want)} entries differ: {', '.join(differ[:12])}"


def test_the_reference_covers_every_case_and_every_layer():
    ref = _reference()["cases"]
    assert set(ref) == {f"{n}/{f}" for n in NETS for f in FORMATS}
    for key, entries in ref.items():
        assert any(k.endswith(".w") for k in entries) and "errors" in entries, key
        if key.endswith("dfixed10-12"):
            assert sum(k.startswith("range:") for k in entries) > 10, key


def regenerate() -> None:
    """Write the reference from the code as it is now (see the module docstring)."""
    torch.set_num_threads(1)
    cases = {}
    for net in NETS:
        for fmt in FORMATS:
            cases[f"{net}/{fmt}"] = fingerprint(train(net, fmt))
            print(net, fmt, "done", flush=True)
    doc = {"note": "regression reference of tests/training/test_nets_identity.py; regenerate with "
                   "`.venv/bin/python -m tests.training.test_nets_identity`",
           "seed": SEED, "steps": STEPS_PER_EPOCH * EPOCHS, "cases": cases}
    REFERENCE.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    regenerate()
