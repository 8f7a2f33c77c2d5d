"""tests/conftest.py keeps Hypothesis's files (its constants cache, any database) in the fewbits cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fewbits.files import CacheDirError, cache_root

TESTS = Path(__file__).resolve().parent


def _fresh_folder(tmp_path) -> Path:
    """The suite's conftest and one @given test in a folder of their own (a stand-in for a fresh clone)."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(TESTS / "conftest.py", work / "conftest.py")
    (work / "test_given.py").write_text(textwrap.dedent("""
        from hypothesis import given, strategies as st
        import fewbits.files  # a local module: Hypothesis scrapes its constants into <home>/constants

        @given(st.integers())
        def test_any(x):
            assert isinstance(x, int)
    """))
    return work


def _pytest_in(work: Path, cache: Path) -> subprocess.CompletedProcess:
    # no bytecode either: the child imports fewbits from the (editable) source tree
    env = {**os.environ, "FEWBITS_CACHE": str(cache), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
                           "--rootdir", str(work), str(work / "test_given.py")],
                          cwd=work, env=env, capture_output=True, text=True, timeout=120)


def test_hypothesis_storage_is_inside_the_cache():
    """The suite's conftest moved Hypothesis's home (constants cache, databases) out of the cwd."""
    from hypothesis.configuration import storage_directory

    assert storage_directory("constants", intent_to_write=False).path == cache_root() / "hypothesis" / "constants"


def test_a_hypothesis_run_writes_nothing_into_the_cwd(tmp_path):
    """End to end: the suite's conftest in a fresh folder, one @given test, no .hypothesis/ left behind."""
    work = _fresh_folder(tmp_path)
    cache = tmp_path / "cache"
    proc = _pytest_in(work, cache)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout + proc.stderr
    # __pycache__ is Python's bytecode cache (gitignored), not Hypothesis's
    assert sorted(p.name for p in work.iterdir() if p.name != "__pycache__") == ["conftest.py", "test_given.py"]
    assert any((cache / "hypothesis" / "constants").iterdir())


def test_a_bad_cache_folder_stops_the_suite_with_one_line(tmp_path, monkeypatch):
    work = _fresh_folder(tmp_path)
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("FEWBITS_CACHE", str(tmp_path / "afile"))
    with pytest.raises(CacheDirError) as info:
        cache_root()
    proc = _pytest_in(work, tmp_path / "afile")
    assert proc.returncode == 4, proc.stdout + proc.stderr  # pytest's usage-error exit code
    assert proc.stderr.strip().splitlines() == [f"ERROR: {info.value}"]
