"""The training loop of the paper's ``Trainer``: epochs of shuffled mini-batches,
linear learning-rate and momentum ramps, range updates, validation/test error.

Deterministic: every random draw (initialization, shuffling, dropout) comes
from one local ``torch.Generator`` seeded by ``config.seed``; a checkpoint
(``checkpoint.pt``, loadable with ``torch.load(weights_only=True)``) holds the
parameters, momentum buffers, ranges and generator state, so ``resume``
continues to the same result as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
from pathlib import Path

import torch

from fewbits.files import atomic_write_bytes
from fewbits.sim.run import RunSpec

from . import datasets as ds
from .capture import Recorder
from .nets import build

RESULT = "result.json"
CHECKPOINT = "checkpoint.pt"


@dataclasses.dataclass
class TrainConfig:
    dataset: str = "digits"
    data_dir: str | None = None
    net: str | None = "mlp-small"  # a built-in network (None with ``model``)
    model: str | None = None  # a user's model, "FILE.py:FUNCTION" (``fewbits.training.usermodel``)
    model_sha256: str | None = None  # the model file's digest the run must see (a sweep's store key)
    epochs: int = 30
    batch_size: int | None = None  # None: the network's (paper: 100 for the MLP)
    lr: float | None = None  # None: the network's starting learning rate
    seed: int = 0
    prop: str = "fp32"
    update: str = "fp32"
    acc: str = "exact"  # the MAC accumulator of every matmul: exact, or a float one (fp32, bf16,chunk=4)
    paper_bits: bool = False
    max_overflow: float = 1e-4
    range_every: int | None = None  # None: 100 batches, or a fifth of an epoch if shorter
    range_warmup: int = 0
    warmup_width: int = 21  # high-precision width (with sign) of the warm-up: 21+21+log2(K) <= 53
    capture: tuple = ()
    capture_step: int = 0
    keep_float: tuple = ()  # a user model's modules left in float (``lowp.convert``), stated in its result
    limit_train: int | None = None  # use only the first N training examples (tests, quick looks)
    limit_eval: int | None = None  # evaluate on the first N validation and N test examples only (short studies)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["capture"] = list(self.capture)
        d["keep_float"] = list(self.keep_float)
        if not d["keep_float"]:
            del d["keep_float"]  # nothing kept in float: the same keys (checkpoints, results) as before
        if d["acc"] == "exact":
            del d["acc"]  # the exact accumulator: the same keys (checkpoints, results) as before accumulators
        for k in ("model", "model_sha256", "limit_eval"):
            if d[k] is None:
                del d[k]  # a built-in network / the full evaluation sets: the same keys as before
        return d

    def run_spec(self) -> RunSpec:
        """The ``RunSpec`` of these settings (raises ``fewbits.sim.FormatError`` on a bad format)."""
        return RunSpec.parse(self.prop, self.update, self.paper_bits, acc=self.acc, max_overflow=self.max_overflow,
                             range_every=self.range_every or None, range_warmup=self.range_warmup,
                             warmup_width=self.warmup_width)

    def key_fields(self) -> dict:
        """Everything that determines the result (a resumed run must match these)."""
        d = self.to_dict()
        d.pop("epochs")
        return d


class Trainer:
    """Trains ``config``'s network on its dataset; every format and range setting comes from ``spec``
    (the CLI builds it once; default: ``config.run_spec()``)."""

    def __init__(self, config: TrainConfig, out_dir=None, progress: bool = False, dataset: ds.Dataset | None = None,
                 spec: RunSpec | None = None):
        self.cfg = config
        self.out = Path(out_dir) if out_dir is not None else None
        self.progress = progress
        self.spec = spec if spec is not None else config.run_spec()
        self.data = dataset if dataset is not None else ds.load(config.dataset, config.data_dir)
        if config.limit_train:
            t = self.data.train
            self.data.train = ds.Split(t.x[: config.limit_train], t.y[: config.limit_train])
        if config.limit_eval:
            for split in ("valid", "test"):
                e = getattr(self.data, split)
                setattr(self.data, split, ds.Split(e.x[: config.limit_eval], e.y[: config.limit_eval]))
        self.user = None
        if config.model:
            self.user = self.net = _user_net(config, self.spec, self.data)
        else:
            self.net = build(config.net, self.spec, self.data.input_shape, self.data.n_classes)
        self.qs = self.net.qs
        self.schedule = self.net.schedule
        self.batch_size = config.batch_size or self.schedule.batch_size
        if len(self.data.train.y) < self.batch_size:
            raise ValueError(f"batch size {self.batch_size} exceeds the {len(self.data.train.y)} training examples")
        self.qs.controller.update_every = self.range_every()
        self.gen = torch.Generator().manual_seed(int(config.seed))
        self.net.set_generator(self.gen)
        self.net.reset_parameters(self.gen)
        self.epoch = 0  # epochs completed
        self.step = 0  # training batches completed (after warm-up)
        self.history: list[dict] = []
        self.warmed_up = False
        self.capture = Recorder(config.capture, config.capture_step, self.spec.acc) if config.capture else None
        self.capture_path = None
        self.on_epoch = None  # ``fn(history_entry)`` after every epoch (the CLI prints it)
        self._x = {k: torch.from_numpy(getattr(self.data, k).x) for k in ("train", "valid", "test")}
        self._y = {k: torch.from_numpy(getattr(self.data, k).y) for k in ("train", "valid", "test")}

    def range_every(self) -> int:
        """Batches between range updates: the configured value, else the paper's 100 batches
        capped at a fifth of an epoch (the paper's 5 updates per MNIST epoch) for short epochs."""
        if self.spec.range_every:
            return self.spec.range_every
        return max(1, min(100, (len(self.data.train.y) // self.batch_size) // 5))

    # ---- one batch / one epoch ---------------------------------------------
    def lr(self, epoch):
        return self.schedule.lr(epoch, self.cfg.epochs, self.cfg.lr)

    def layer_names(self) -> list[str]:
        """What ``capture`` may name: the built-in network's layers (L0, ...) or the user model's sites."""
        return self.net.site_names

    def hardware_spec(self) -> RunSpec:
        """The run's spec with the MAC array of its largest layer (``lowp.hardware_shape``): what its
        captures record, so ``fewbits cosim --capture DIR`` can generate the design alone."""
        from .lowp import hardware_shape

        return dataclasses.replace(self.spec, **hardware_shape(self.net.shapes))

    def train_batch(self, x, y, lr, momentum) -> int:
        """One training step (the network's own: the paper's loss for a built-in, cross-entropy for a
        user's model); the number of misclassified examples."""
        return self.net.train_batch(x, y, lr, momentum)

    def train_epoch(self, epoch: int, lr: float, momentum: float, desc: str) -> tuple[float, float]:
        n = len(self._y["train"])
        bs = self.batch_size
        order = torch.randperm(n, generator=self.gen)
        n_batches = n // bs
        self.net.train()
        self.qs.training = True
        errors = seen = 0
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=n_batches, desc=desc, leave=False, unit="batch")
        for i in range(n_batches):
            idx = order[i * bs:(i + 1) * bs]
            hook = None
            if self.capture is not None and self.warmed_up and self.capture.wants(self.step):
                hook = self.capture.hook
                self.qs.mac_hooks.append(hook)
            errors += self.train_batch(self._x["train"][idx], self._y["train"][idx], lr, momentum)
            if hook is not None:
                self.qs.mac_hooks.remove(hook)
                if self.out is not None:
                    self.capture_path = str(self.capture.save(self.out / "capture", {
                        "config": self.cfg.to_dict(), "epoch": epoch}, run_spec=self.hardware_spec()))
            seen += bs
            if self.warmed_up:
                self.step += 1
            if bar is not None:
                c = self.qs.controller
                rate = c.epoch_overflow / c.epoch_count if c.epoch_count else 0.0
                bar.set_postfix(err=f"{100 * errors / seen:.2f}%", ovf=f"{rate:.1e}")
                bar.update(1)
        if bar is not None:
            bar.close()
        return 100.0 * errors / max(1, seen), self.qs.controller.take_epoch_rate()

    @torch.no_grad()
    def error(self, split: str, batch: int = 500) -> float:
        self.net.eval()
        self.qs.training = False
        x, y = self._x[split], self._y[split]
        wrong = 0
        for i in range(0, len(y), batch):
            out = self.net.predict(x[i:i + batch])
            wrong += int((out.argmax(dim=1) != y[i:i + batch]).sum())
        self.qs.training = True
        self.net.train()
        return 100.0 * wrong / max(1, len(y))

    # ---- warm-up ------------------------------------------------------------
    def warm_up(self) -> None:
        """The paper's range initialization: epochs at high precision, then the initial parameters back."""
        if self.warmed_up:
            return
        warmup = self.spec.range_warmup
        if warmup > 0 and self.spec.dynamic:
            saved = {k: v.clone() for k, v in self.net.state_dict().items()}
            self.qs.width_override = self.spec.widened(self.spec.warmup_width)
            for e in range(warmup):
                self.qs.controller.tracking = e == 0
                self.train_epoch(-1, self.lr(0), self.schedule.momentum(0, self.cfg.epochs),
                                 f"range warm-up {e + 1}/{warmup}")
            self.qs.controller.tracking = False
            self.qs.width_override = None
            self.net.load_state_dict(saved)
        self.warmed_up = True

    # ---- the run ------------------------------------------------------------
    def run(self) -> dict:
        self.warm_up()
        while self.epoch < self.cfg.epochs:
            e = self.epoch
            lr, m = self.lr(e), self.schedule.momentum(e, self.cfg.epochs)
            # no warm-up: the first epoch's ranges follow the data every batch
            self.qs.controller.tracking = self.spec.dynamic and e == 0 and self.spec.range_warmup == 0
            t0 = time.perf_counter()
            train_err, ovf = self.train_epoch(e, lr, m, f"epoch {e + 1}/{self.cfg.epochs}")
            self.qs.controller.tracking = False
            seconds = time.perf_counter() - t0
            valid, test = self.error("valid"), self.error("test")
            self.history.append({"epoch": e + 1, "lr": lr, "momentum": m, "train_error": train_err,
                                 "valid_error": valid, "test_error": test, "overflow_rate": ovf,
                                 "seconds": seconds})
            self.epoch += 1
            if self.out is not None:
                self.save_checkpoint()
                self.write_result()
            if self.on_epoch is not None:
                self.on_epoch(self.history[-1])
        return self.result()

    def run_until_captured(self, max_epochs: int | None = None) -> Path:
        """Train epoch after epoch just until the capture step has been recorded; its manifest path.

        The run itself is not saved (no checkpoint, no result); the capture goes to ``<out>/capture``."""
        if self.capture is None or self.out is None:
            raise ValueError("run_until_captured needs capture layers and an output folder")
        self.warm_up()
        e = 0
        limit = self.cfg.epochs + 1000 if max_epochs is None else max_epochs
        while not self.capture.done:
            self.qs.controller.tracking = self.spec.dynamic and e == 0 and self.spec.range_warmup == 0
            self.train_epoch(e, self.lr(e), self.schedule.momentum(e, self.cfg.epochs), "")
            e += 1
            if e > limit:
                raise ValueError(f"step {self.cfg.capture_step} never reached")
        return Path(self.capture_path)

    def ranges(self) -> dict:
        out = {}
        for name, g in sorted(self.qs.controller.groups.items()):
            if not (self.spec.dynamic and g.set):
                continue
            entry = {"int_bits": g.int_bits, "moves": g.moves}
            for width in ("prop", "update"):
                f = self.qs.fmt(name, width)
                if f is not None and f.kind == "dfixed":
                    entry[f"{width}_format"] = str(f)
            out[name] = entry
        return out

    def result(self) -> dict:
        last = self.history[-1] if self.history else {}
        best = min(self.history, key=lambda h: h["valid_error"]) if self.history else {}
        return {
            "test_error": last.get("test_error"),
            "valid_error": last.get("valid_error"),
            "test_examples": len(self._y["test"]),  # what a one-seed interval of the test error needs
            "best_valid_error": best.get("valid_error"),
            "test_error_at_best_valid": best.get("test_error"),
            "epochs": self.epoch,
            "history": self.history,
            "seconds_per_epoch": [h["seconds"] for h in self.history],
            "ranges": self.ranges(),
            "formats": self.spec.describe(),
            "config": self.cfg.to_dict(),
            "capture": self.capture_path,
            "torch_threads": torch.get_num_threads(),
            **({"model": self.user.describe()} if self.user else {}),
        }

    def write_result(self) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.out / (RESULT + ".tmp")
        tmp.write_text(json.dumps(self.result(), indent=1))
        tmp.replace(self.out / RESULT)
        return self.out / RESULT

    # ---- checkpoints ---------------------------------------------------------
    def state(self) -> dict:
        return {
            "config": json.dumps(self.cfg.key_fields(), sort_keys=True),
            "epoch": self.epoch,
            "step": self.step,
            "warmed_up": self.warmed_up,
            "model": self.net.state_dict(),
            "generator": self.gen.get_state(),
            "ranges": self.qs.controller.state_dict(),
            "history": json.dumps(self.history),
            "capture_done": bool(self.capture.done) if self.capture else False,
            "capture_path": self.capture_path or "",
            **({"torch_rng": torch.get_rng_state()} if self.user else {}),  # the user model's dropout
        }

    def save_checkpoint(self) -> Path:
        buf = io.BytesIO()
        torch.save(self.state(), buf)
        atomic_write_bytes(self.out / CHECKPOINT, buf.getvalue())
        return self.out / CHECKPOINT

    def load_checkpoint(self, path) -> None:
        """Continue from a checkpoint of *this* run; anything else is a ValueError naming the file."""
        accepted = "accepted a checkpoint.pt written by `fewbits train --out` of the same configuration"
        if Path(path).is_dir():
            raise ValueError(f"cannot resume {path}: a folder where the checkpoint file should be; {accepted}")
        try:
            st = torch.load(path, weights_only=True)
        except Exception as e:  # noqa: BLE001 - torch/pickle/zip raise many types for a damaged file
            raise ValueError(f"cannot resume {path}: not a readable checkpoint ({type(e).__name__}: "
                             f"{' '.join(str(e).split())[:160]}); {accepted}") from None
        fields = {"config": str, "model": dict, "generator": torch.Tensor, "ranges": dict, "epoch": int,
                  "step": int, "warmed_up": bool, "history": str, "capture_done": bool}
        bad = [k for k, t in fields.items() if not isinstance(st, dict) or not isinstance(st.get(k), t)]
        if bad:
            raise ValueError(f"cannot resume {path}: a foreign or damaged checkpoint (field(s) {', '.join(bad)} "
                             f"missing or of the wrong type); {accepted}")
        mine = json.dumps(self.cfg.key_fields(), sort_keys=True)
        if st["config"] != mine:
            theirs = json.loads(st["config"])
            diff = sorted(k for k in theirs if theirs.get(k) != self.cfg.key_fields().get(k))
            raise ValueError(f"cannot resume {path}: its configuration differs in {', '.join(diff)}")
        try:
            self.net.load_state_dict(st["model"])
        except RuntimeError as e:  # torch's missing/unexpected keys or shapes, e.g. from before the nets' rebase
            raise ValueError(f"cannot resume {path}: its parameters do not fit this network "
                             f"({' '.join(str(e).split())[:160]}); {accepted} and this fewbits version") from None
        self.gen.set_state(st["generator"])
        self.qs.controller.load_state_dict(st["ranges"])
        self.epoch, self.step, self.warmed_up = int(st["epoch"]), int(st["step"]), bool(st["warmed_up"])
        self.history = json.loads(st["history"])
        if self.capture is not None:
            self.capture.done = bool(st["capture_done"])
        self.capture_path = st["capture_path"] or None
        if self.user and isinstance(st.get("torch_rng"), torch.Tensor):
            torch.set_rng_state(st["torch_rng"])


def _user_net(config: TrainConfig, spec: RunSpec, data: ds.Dataset):
    """The converted user model of ``config.model`` (its file checked against ``model_sha256`` when given)."""
    from .usermodel import ModelError, parse_ref
    from .usernet import UserNet

    ref = parse_ref(config.model)
    if config.model_sha256 and ref.sha256() != config.model_sha256:
        raise ModelError(f"{config.model}: the file changed since the run was planned (sha256 {ref.sha256()[:12]}, "
                         f"expected {config.model_sha256[:12]}); plan it again")
    return UserNet(ref, spec, data.input_shape, data.n_classes, config.seed, keep_float=tuple(config.keep_float))


def train(config: TrainConfig, out_dir=None, resume: bool = False, progress: bool = False,
          dataset: ds.Dataset | None = None, spec: RunSpec | None = None) -> dict:
    """Train ``config``; with ``out_dir`` write checkpoints and ``result.json``; ``resume`` continues."""
    t = Trainer(config, out_dir, progress, dataset, spec)
    if resume and out_dir is not None and (Path(out_dir) / CHECKPOINT).is_file():
        t.load_checkpoint(Path(out_dir) / CHECKPOINT)
    return t.run()


def record(config: TrainConfig, out_dir, layers=None, step: int | None = None,
           dataset: ds.Dataset | None = None) -> Path:
    """Train ``config`` just until training step ``step`` and capture ``layers`` there into ``out_dir``
    (``capture.json`` + ``capture.npz``); returns the manifest path.  The run itself is not saved."""
    from fewbits.sim.capture import ARRAYS, MANIFEST

    cfg = dataclasses.replace(config, capture=tuple(layers or config.capture or ("L0",)),
                              capture_step=config.capture_step if step is None else int(step))
    out = Path(out_dir)
    t = Trainer(cfg, out.parent, dataset=dataset)  # the trainer writes captures to <out>/capture
    produced = t.run_until_captured()
    if produced.parent != out:
        out.mkdir(parents=True, exist_ok=True)
        for name in (MANIFEST, ARRAYS):
            (produced.parent / name).replace(out / name)
        produced = out / MANIFEST
    return produced
