"""A user's model (``FILE.py:FUNCTION``) as the trainer's network: converted by ``lowp``, trained
with ``lowp.SGD`` on softmax cross-entropy (the batch mean), evaluated by its logits' argmax.

Why an adapter: the trainer's loop (epochs, schedules, range warm-up, checkpoints, captures) is
the same for a built-in network and a user's; only the step, the prediction and the state differ.
Initial values come from torch's global generator seeded with the run's seed just before the
model is built (what a user's ``nn.Module`` initializers draw from); dropout inside the model
draws from it too, so a checkpoint keeps its state (``Trainer.state``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fewbits.sim.run import RunSpec

from . import lowp
from .lowpnet import ConvertedNet
from .nets import Schedule
from .usermodel import ModelRef, instantiate, probe

#: a user's model: SGD with momentum 0.9 at learning rate 0.1 (decaying linearly to a tenth by half
#: the epochs), batch 50 (what examples/lenet.py reaches its digits figure with)
USER = Schedule(lr_start=0.1, lr_final_ratio=0.1, m_start=0.9, m_final=0.9, batch_size=50)


class UserNet(ConvertedNet):
    """``ref``'s model converted at ``spec``, with its optimizer; ``probe`` checked it first."""

    schedule = USER

    def __init__(self, ref: ModelRef, spec: RunSpec, input_shape: tuple, n_classes: int, seed: int,
                 keep_float=()):
        self.ref, self.input_shape, self.n_classes = ref, tuple(input_shape), int(n_classes)
        self.probe = probe(ref, self.input_shape, self.n_classes, keep_float)  # every ModelError, before training
        self.sha256 = ref.sha256()
        torch.manual_seed(int(seed))
        model = lowp.convert(instantiate(ref, self.input_shape, self.n_classes), spec=spec, keep_float=keep_float)
        self._attach(model, lowp.SGD(model, self.schedule.lr_start, self.schedule.m_start))

    @property
    def site_names(self) -> list[str]:
        return list(self.probe.shapes)

    @property
    def shapes(self) -> dict:
        """The sites' forward shapes ``{site: (K, N)}`` (what sizes the hardware)."""
        return self.probe.shapes

    # ---- the trainer's calls ----------------------------------------------------
    def set_generator(self, gen) -> None:  # dropout inside the model draws from torch's global generator
        pass

    def reset_parameters(self, gen) -> None:  # initialized when built, from the seeded global generator
        pass

    def _batch(self, x):
        return x.reshape(x.shape[0], *self.input_shape)

    def train_batch(self, x, y, lr: float, momentum: float) -> int:
        """One SGD step on softmax cross-entropy; the number of misclassified examples."""
        out = {}

        def backward():
            out["logits"] = self.model(self._batch(x))
            F.cross_entropy(out["logits"], y).backward()

        self._step(backward, lr, momentum)
        return int((out["logits"].detach().argmax(dim=1) != y).sum())

    def predict(self, x) -> torch.Tensor:
        return self.model(self._batch(x))

    def describe(self) -> dict:
        """What a result records about the model: its file, digest, sites and what stayed in float."""
        return {"ref": self.ref.text, "path": str(self.ref.path), "function": self.ref.function,
                "sha256": self.sha256, "sites": {s: list(kn) for s, kn in self.probe.shapes.items()},
                "keep_float": list(self.state.keep_float), "elementwise": lowp.describe(self.model)["elementwise"]}
