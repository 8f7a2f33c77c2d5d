"""A model converted by ``fewbits.training.lowp`` as the trainer's network: what a built-in
network (``fewbits.training.nets``) and a user's model (``fewbits.training.usernet``) share.

The trainer's loop (epochs, schedules, range warm-up, checkpoints, captures) is the same for
both; a subclass gives the step (``train_batch``) and the prediction (``predict``).  The state
is the model's parameters and buffers and the optimizer's momentum buffers, so a checkpoint (and
the range warm-up's restore) covers both.
"""

from __future__ import annotations

from . import lowp

SGD_PREFIX = "sgd."
MODEL_PREFIX = "model."


class ConvertedNet:
    """``self.model`` (converted), its ``lowp.SGD`` ``self.opt``; ``self.qs`` its ``QuantState``."""

    def _attach(self, model, opt) -> None:
        self.model, self.opt = model, opt
        self.state = lowp.state_of(model)
        self.qs = self.state.qs

    def parameters(self):
        return self.model.parameters()

    def train(self) -> None:
        self.model.train()

    def eval(self) -> None:
        self.model.eval()

    def state_dict(self) -> dict:
        d = {MODEL_PREFIX + k: v.clone() for k, v in self.model.state_dict().items()}
        d.update({SGD_PREFIX + k: v.clone() for k, v in self.opt.buf.items()})
        return d

    def load_state_dict(self, d: dict) -> None:
        self.model.load_state_dict({k[len(MODEL_PREFIX):]: v for k, v in d.items() if k.startswith(MODEL_PREFIX)})
        self.opt.buf.clear()
        self.opt.buf.update({k[len(SGD_PREFIX):]: v.clone() for k, v in d.items() if k.startswith(SGD_PREFIX)})

    def _step(self, loss_backward, lr: float, momentum: float) -> None:
        """``loss_backward()`` then one ``SGD`` step at ``lr``/``momentum``.  The range controller's
        tracking is the trainer's to set (first epoch, warm-up): the optimizer's own tracking
        window is overridden after its step."""
        ctl = self.qs.controller
        tracking = ctl.tracking
        self.opt.lr, self.opt.momentum = float(lr), float(momentum)
        loss_backward()
        self.opt.step()
        ctl.tracking = tracking
