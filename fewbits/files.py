"""Leaf utilities every layer needs: where fewbits caches builds, and writing a file atomically.

Imports nothing of the project, so ``sim``, ``training``, ``hw`` and ``cosim`` may use it without
reaching into the app layer.

The cache rule, for synthesis, co-simulation, numba and test tooling:

``$FEWBITS_CACHE`` when set (and non-empty), else ``$XDG_CACHE_HOME/fewbits``, else
``~/.cache/fewbits``.  Kept in one place so that a synthesis run and a co-simulation
run of the same design can never disagree on the folder.  Nothing is created here:
callers make the sub-folder they write to.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

ENV = "FEWBITS_CACHE"


class CacheDirError(ValueError):
    """The cache folder cannot be a folder (it, or one of its parents, is a file): one-line message."""


def cache_root() -> Path:
    """The fewbits cache folder (absolute); raises CacheDirError if something that is not a folder is in the way."""
    if os.environ.get(ENV):
        root, source = Path(os.environ[ENV]).expanduser(), f"${ENV}"
    elif os.environ.get("XDG_CACHE_HOME"):
        root, source = Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "fewbits", "$XDG_CACHE_HOME"
    else:
        root, source = Path.home() / ".cache" / "fewbits", "the default cache"
    root = root.absolute()
    # The nearest existing ancestor decides: mkdir below a file fails with a bare OSError later.
    for p in (root, *root.parents):
        if p.exists() or p.is_symlink():  # a dangling link counts: mkdir fails on it too
            if not p.is_dir():
                raise CacheDirError(f"cache folder {root} ({source}) is unusable: {p} is not a directory; "
                                    f"set {ENV} to a directory")
            break
    return root


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temp file in the same directory, fsync, os.replace.

    A reader (or a process killed mid-write) sees the old file or the whole new one, never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n")
