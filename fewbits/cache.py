"""The one rule for where fewbits caches builds: synthesis, co-simulation, test tooling.

``$FEWBITS_CACHE`` when set (and non-empty), else ``$XDG_CACHE_HOME/fewbits``, else
``~/.cache/fewbits``.  Kept in one place so that a synthesis run and a co-simulation
run of the same design can never disagree on the folder.  Nothing is created here:
callers make the sub-folder they write to.
"""

from __future__ import annotations

import os
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
