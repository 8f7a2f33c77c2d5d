"""Cached simulator builds are reused only where they can run: a moved or deleted cocotb install rebuilds."""

from __future__ import annotations

import functools
import shutil

import pytest
from fewbits.cosim import runner
from fewbits.cosim import vectors as V
from fewbits.cosim.verify import verify

from .test_verify import RANDOM, check


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """A cache of this test's own, and a copy of cocotb's library folder that the test can delete."""
    from cocotb_tools import config

    monkeypatch.setenv("FEWBITS_CACHE", str(tmp_path / "cache"))
    libs = tmp_path / "venv-copy" / "cocotb" / "libs"
    shutil.copytree(config.libs_dir, libs, symlinks=True)
    runner._linked_against.cache_clear()
    yield libs
    runner._linked_against.cache_clear()


def _use_libs(monkeypatch, libs):
    from cocotb_tools import config

    monkeypatch.setattr(config, "libs_dir", libs)
    runner._linked_against.cache_clear()


def _verilator_or_skip():
    try:
        runner.simulator_env("verilator")
    except runner.SimulatorError as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_key_follows_the_cocotb_library_folder(make_design, private_cache, monkeypatch, simulator):
    d = make_design("fixed:6:3", "fixed:5:4", "fixed:6:3,round=rna", 1, 2, 16)
    real = runner.build_key(d, simulator)
    _use_libs(monkeypatch, private_cache)
    assert runner.build_key(d, simulator) != real
    assert str(private_cache.resolve()) in runner._linked_against(simulator)


def test_verilator_rebuilds_when_its_cocotb_is_gone(make_design, private_cache, tmp_path, monkeypatch):
    """The CI failure: a binary linked into a deleted venv; the next run must rebuild and pass."""
    _verilator_or_skip()
    from cocotb_tools import config

    real_libs = config.libs_dir
    d = make_design("fixed:6:3", "fixed:5:4", "fixed:6:3,round=rna", 1, 2, 16)
    mms = V.random_matmuls(d.spec, 10, 8)
    _use_libs(monkeypatch, private_cache)
    old = runner.build(d, "verilator")
    assert runner.unusable_reason(old, "verilator") is None
    shutil.rmtree(private_cache.parent.parent)  # the first clone's venv is deleted
    assert "libcocotbvpi_verilator" in runner.unusable_reason(old, "verilator")
    _use_libs(monkeypatch, real_libs)
    check(verify(d, mms, tmp_path / "run", "verilator", RANDOM))
    assert runner.build(d, "verilator") != old


def test_a_stale_binary_under_an_unchanged_key_is_rebuilt(make_design, private_cache, tmp_path, monkeypatch,
                                                           capfd):
    """Defence in depth: same key (as before the fix), libraries gone -> rebuilt with one line saying why."""
    _verilator_or_skip()
    d = make_design("fixed:6:3", "fixed:5:4", "fixed:6:3,round=rna", 1, 2, 16)
    mms = V.random_matmuls(d.spec, 10, 9)
    monkeypatch.setattr(runner, "_linked_against", functools.cache(lambda simulator: ("pinned",)))
    from cocotb_tools import config

    real_libs = config.libs_dir
    monkeypatch.setattr(config, "libs_dir", private_cache)
    bdir = runner.build(d, "verilator")
    shutil.rmtree(private_cache.parent.parent)
    monkeypatch.setattr(config, "libs_dir", real_libs)
    capfd.readouterr()
    check(verify(d, mms, tmp_path / "run", "verilator", RANDOM))
    err = capfd.readouterr().err
    assert f"rebuilding the cached verilator build of {d.top}" in err and "do not resolve" in err
    assert runner.build(d, "verilator") == bdir and runner.unusable_reason(bdir, "verilator") is None


def test_the_simulator_imports_without_rewriting_every_module(make_design, tmp_path, monkeypatch):
    """cocotb's default (pytest's assertion rewriting of every imported *.py) parsed torch from source in
    each simulator process; the harness runs with it off, and a user's own setting is kept."""
    d = make_design("fixed:6:3", "fixed:5:4", "fixed:6:3,round=rna")
    mms = V.random_matmuls(d.spec, 4, 1)
    monkeypatch.delenv(runner.REWRITE_ENV, raising=False)
    s = verify(d, mms, tmp_path / "default")
    check(s)
    assert s["assertion_rewriting"] is False
    monkeypatch.setenv(runner.REWRITE_ENV, "*.py")
    s = verify(d, mms, tmp_path / "user")
    check(s)
    assert s["assertion_rewriting"] is True
