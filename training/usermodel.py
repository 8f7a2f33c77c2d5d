"""A user's model file, ``FILE.py:FUNCTION``: loaded, called and checked, one line per problem.

Loading a model file **runs it**: it is Python, imported like any module (by design: the
function builds a plain ``nn.Module``).  Only the named file is imported, by its path
(``importlib.util.spec_from_file_location``): its folder is not put on ``sys.path`` and no
module is looked up by name, so a sibling ``torch.py`` or ``fewbits.py`` is never picked up in
its place (what the file itself imports is its own business).  ``FUNCTION`` is called as
``FUNCTION(input_shape, n_classes)`` (the data set's shape of one example, e.g. ``(1, 8, 8)``,
and its number of classes) and must return an ``nn.Module`` that maps a batch ``B x
input_shape`` to ``B x n_classes`` logits.

``probe`` builds one instance and runs a batch of two zero inputs through it, converted to the
MAC contract in float (``fewbits.training.lowp``): a model that fails on the input shape, gives
the wrong output shape or holds an operation the contract cannot take is one ``ModelError``
before any training, and the sites' forward shapes it reports size the hardware.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import re
import sys
from pathlib import Path

FORM = "FILE.py:FUNCTION"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ModelError(ValueError):
    """A model file or function that cannot be used; the message is one line."""


@dataclasses.dataclass(frozen=True)
class ModelRef:
    """``path`` (absolute, resolved) and ``function`` of a ``FILE.py:FUNCTION`` reference; ``text`` as given."""

    path: Path
    function: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.function}"

    def sha256(self) -> str:
        """The digest of the file's bytes (a store key that changes when the model does)."""
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError as e:
            raise ModelError(f"{self.text}: cannot read {self.path} ({e.strerror})") from None


def is_ref(text) -> bool:
    """Whether ``text`` names a model file (``FILE.py:FUNCTION``) rather than a built-in network."""
    return isinstance(text, str) and ".py:" in text


def parse_ref(text: str, base=None, confine: bool = False) -> ModelRef:
    """``text`` (``FILE.py:FUNCTION``) as a ``ModelRef``; ``FILE`` relative to ``base`` (default: the
    working folder).  ``confine``: the file must resolve (symlinks followed) inside ``base``."""
    if not isinstance(text, str) or ":" not in text:
        raise ModelError(f"{text!r}: accepted {FORM} (a Python file and the function in it that returns "
                         "the nn.Module)")
    file, _, func = text.rpartition(":")
    if not file.endswith(".py"):
        raise ModelError(f"{text!r}: {file!r} is not a .py file; accepted {FORM}")
    if not _IDENT.match(func):
        raise ModelError(f"{text!r}: {func!r} is not a function name; accepted {FORM}")
    root = Path(base) if base is not None else Path.cwd()
    path = Path(file) if Path(file).is_absolute() else root / file
    resolved = path.resolve()
    if confine and not resolved.is_relative_to(root.resolve()):
        raise ModelError(f"{text!r}: {file} resolves to {resolved}, outside {root.resolve()}; a sweep file may "
                         "name model files only inside its own folder (they run as Python)")
    if not resolved.is_file():
        why = "a folder" if resolved.is_dir() else "no such file"
        raise ModelError(f"{text!r}: {path}: {why}; accepted {FORM} naming an existing Python file")
    return ModelRef(resolved, func, text)


_LOADED: dict = {}  # (path, sha256) -> module: a file is run once per process and content


def load_function(ref: ModelRef):
    """The function ``ref`` names, from its file run as a module (once per file content)."""
    digest = ref.sha256()
    key = (str(ref.path), digest)
    mod = _LOADED.get(key)
    if mod is None:
        name = f"fewbits_user_model_{digest[:16]}"
        spec = importlib.util.spec_from_file_location(name, ref.path)
        if spec is None or spec.loader is None:  # pragma: no cover - a .py path always has a loader
            raise ModelError(f"{ref.text}: cannot load {ref.path} as Python")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # dataclasses and pickling look the module up by name
        try:
            spec.loader.exec_module(mod)
        except BaseException as e:  # noqa: BLE001 - the user's code may raise anything, SystemExit too
            sys.modules.pop(name, None)
            if isinstance(e, KeyboardInterrupt):
                raise
            raise ModelError(f"{ref.text}: running {ref.path.name} failed: {_exc(e)}") from None
        _LOADED[key] = mod
    if not hasattr(mod, ref.function):
        defined = sorted(n for n, v in vars(mod).items() if callable(v) and not n.startswith("_")
                         and getattr(v, "__module__", None) == mod.__name__)
        raise ModelError(f"{ref.text}: {ref.path.name} defines no {ref.function!r} (its functions and classes: "
                         f"{', '.join(defined) or 'none'})")
    fn = getattr(mod, ref.function)
    if not callable(fn):
        raise ModelError(f"{ref.text}: {ref.function!r} is a {type(fn).__name__}, not a function; accepted a "
                         "function (input_shape, n_classes) -> nn.Module")
    return fn


def _exc(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    return f"{type(e).__name__}: {msg[:300]}" if msg else type(e).__name__


def instantiate(ref: ModelRef, input_shape: tuple, n_classes: int):
    """A fresh ``nn.Module`` from ``ref``'s function (torch's global generator draws its initial values)."""
    from torch import nn

    fn = load_function(ref)
    try:
        model = fn(tuple(input_shape), int(n_classes))
    except Exception as e:  # noqa: BLE001 - the user's code
        raise ModelError(f"{ref.text}: {ref.function}({tuple(input_shape)}, {n_classes}) failed: {_exc(e)}") from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"{ref.text}: {ref.function}(input_shape, n_classes) returned a {type(model).__name__}, "
                         "not an nn.Module")
    return model


@dataclasses.dataclass(frozen=True)
class Probe:
    """What one forward pass of the model showed: its sites' forward shapes ``{site: (K, N)}`` in
    forward order and the site with the longest dot product."""

    shapes: dict
    largest: str
    hardware: dict  # rows, cols, k_max (``lowp.hardware_shape``)


def probe(ref: ModelRef, input_shape: tuple, n_classes: int, keep_float=()) -> Probe:
    """Build ``ref``'s model on a separate instance and run two zero inputs through it, converted
    in float; every problem is one ``ModelError``."""
    import torch

    from . import lowp

    with torch.random.fork_rng(devices=[]):  # the probe draws nothing from the run's generator
        model = instantiate(ref, input_shape, n_classes)
    try:
        lowp.convert(model, "fp32", keep_float=keep_float)
    except lowp.LowpError as e:
        raise ModelError(f"{ref.text}: {e}") from None
    shape = (2, *input_shape)
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            out = model(torch.zeros(shape))
    except lowp.LowpError as e:
        raise ModelError(f"{ref.text}: {e}") from None
    except Exception as e:  # noqa: BLE001 - the user's forward()
        raise ModelError(f"{ref.text}: the model fails on a batch of input shape {shape}: {_exc(e)}") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, n_classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelError(f"{ref.text}: the model maps a batch {shape} to {got}; accepted logits of shape "
                         f"(batch, {n_classes}) for the data set's {n_classes} classes")
    st = lowp.state_of(model)
    if not st.shapes:
        raise ModelError(f"{ref.text}: the model runs no matmul (no nn.Linear, nn.Conv1d/2d or matmul call): "
                         "nothing to put under the MAC contract")
    return Probe(dict(st.shapes), lowp.largest_site(model), lowp.hardware_shape(st.shapes))
