"""fewbits.files: the one rule for the cache folder, its users, and a bad value as one line."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner
from fewbits.cosim import runner
from fewbits.hw.eda import synth

from fewbits import cli
from fewbits.files import CacheDirError, cache_root


@pytest.fixture
def env(monkeypatch, tmp_path):
    """No cache variable set, HOME in tmp_path: each test sets only what it is about."""
    monkeypatch.delenv("FEWBITS_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_fewbits_cache_wins(env, tmp_path):
    env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    env.setenv("FEWBITS_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"


def test_xdg_cache_home_when_fewbits_cache_is_unset_or_empty(env, tmp_path):
    env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "fewbits"
    env.setenv("FEWBITS_CACHE", "")
    assert cache_root() == tmp_path / "xdg" / "fewbits"


def test_home_cache_when_nothing_is_set(env, tmp_path):
    assert cache_root() == tmp_path / "home" / ".cache" / "fewbits"


def test_relative_value_is_made_absolute_once(env, tmp_path):
    """A cosim run changes directory; the cache must not move with it."""
    env.chdir(tmp_path)
    env.setenv("FEWBITS_CACHE", "rel")
    assert cache_root() == tmp_path / "rel"
    assert cache_root().is_absolute()


@pytest.mark.parametrize("below", ["", "sub/dir"], ids=["is-a-file", "under-a-file"])
def test_a_file_in_the_way_is_one_clear_error(env, tmp_path, below):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    env.setenv("FEWBITS_CACHE", str(blocker / below) if below else str(blocker))
    with pytest.raises(CacheDirError) as info:
        cache_root()
    msg = str(info.value)
    assert "\n" not in msg
    assert f"{blocker} is not a directory" in msg and "FEWBITS_CACHE" in msg


def test_a_directory_symlink_is_fine_a_dangling_one_is_not(env, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    env.setenv("FEWBITS_CACHE", str(tmp_path / "link"))
    assert cache_root() == tmp_path / "link"
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    env.setenv("FEWBITS_CACHE", str(tmp_path / "dangling"))
    with pytest.raises(CacheDirError):
        cache_root()


@pytest.mark.parametrize("var", ["FEWBITS_CACHE", "XDG_CACHE_HOME", None])
def test_synthesis_and_cosim_use_the_same_root(env, tmp_path, var):
    if var:
        env.setenv(var, str(tmp_path / var))
    assert synth.cache_dir() == cache_root()
    assert runner.cache_root() == cache_root() / "cosim"


def test_cli_reports_a_bad_cache_in_one_line(env, tmp_path):
    if shutil.which("yosys") is None:
        pytest.fail("yosys not found: run `make tools`")
    (tmp_path / "t.v").write_text("module t(input a, output b); assign b = ~a; endmodule\n")
    (tmp_path / "afile").write_text("")
    env.setenv("FEWBITS_CACHE", str(tmp_path / "afile"))
    result = CliRunner().invoke(cli.main, ["synth", str(tmp_path / "t.v"), "--top", "t", "--no-parts",
                                           "-o", str(tmp_path / "out")], prog_name="fewbits")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("fewbits: error: cache folder") and "is not a directory" in lines[-1]
