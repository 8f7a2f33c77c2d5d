"""The output folder of a command, checked before any work: one line when it cannot be made or written.

Why a parameter type: every command writes somewhere; a folder below a file, or one without write
permission, used to surface as an ``OSError`` traceback minutes into the run, after training.
"""

from __future__ import annotations

import os
from pathlib import Path

import click


def unusable_output_dir(path: Path) -> str | None:
    """Why ``path`` cannot be (made into) a writable folder, or None when it can."""
    path = Path(path).absolute()
    for p in (path, *path.parents):
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                return f"{p} is not a folder" if p == path else f"{p} (on its path) is a file, not a folder"
            if not os.access(p, os.W_OK | os.X_OK):
                return f"{p} is not writable" if p == path else f"cannot create it: {p} is not writable"
            return None
    return "no existing folder on its path"  # pragma: no cover - "/" always exists


class OutputDir(click.ParamType):
    """A folder the command may create and write into (returned as ``path_type``, str by default)."""

    name = "DIR"

    def __init__(self, path_type=str):
        self.path_type = path_type

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            self.fail("an empty folder name (accepted a folder path)", param, ctx)
        path = Path(value)
        why = unusable_output_dir(path)
        if why:
            self.fail(f"{value}: {why} (accepted a folder that can be created and written)", param, ctx)
        return self.path_type(path)
