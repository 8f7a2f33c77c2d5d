"""The CLI skeleton: every subcommand is listed and documented, errors are one line, imports stay light.

The error path is tested on a toy group of the CLI's own class (``TOY_CLI``), in
process and as a real script, so these tests do not depend on the options of the
commands other modules implement.
"""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from fewbits import cli

# The subcommands the issue asks for (the CLI's public surface).
SUBCOMMANDS = ["train", "verilog", "cosim", "tech", "synth", "power", "sweep", "report", "demo"]
HEAVY = ("torch", "amaranth", "cocotb", "numpy", "matplotlib", "scipy", "sklearn", "dask")

TOY_CLI = '''
import click
from fewbits.cli import FewbitsGroup


@click.group(cls=FewbitsGroup)
def toy():
    """A group of the fewbits CLI's class."""


class FormatLikeError(ValueError):  # fewbits.sim.FormatError is a ValueError
    pass


@toy.command()
@click.option("--fmt", required=True)
@click.option("--k", type=click.IntRange(1, 32), default=1)
def parse(fmt, k):
    from fewbits.sim import parse_format
    click.echo(str(parse_format(fmt)))


@toy.command()
def multiline():
    raise FormatLikeError("bad width 0 in 'fixed:0:3'\\naccepted: fixed:W:F with W in 1..64")


@toy.command()
def param():
    raise click.BadParameter("must be positive", param_hint="'--k'")


@toy.command()
def bug():
    raise KeyError("a real bug")


if __name__ == "__main__":
    toy(prog_name="fewbits")
'''


def toy_group() -> click.Group:
    namespace: dict = {"__name__": "toy_cli"}
    exec(compile(TOY_CLI, "toy_cli.py", "exec"), namespace)
    return namespace["toy"]


def run(*args: str) -> subprocess.CompletedProcess:
    """``python -m fewbits ARGS`` in a fresh interpreter (what a user's shell sees)."""
    return subprocess.run([sys.executable, "-m", "fewbits", *args], capture_output=True, text=True, timeout=300)


def run_toy(tmp_path, *args: str) -> subprocess.CompletedProcess:
    script = tmp_path / "toy_cli.py"
    script.write_text(TOY_CLI)
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "FEWBITS_DEBUG": ""})


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert "Traceback" not in stderr
    for frag in fragments:
        assert frag in lines[0], lines[0]


def listed_commands(help_text: str) -> list[str]:
    section = help_text.split("Commands:", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ") and not line.startswith("   ")]


def test_help_lists_every_subcommand_in_pipeline_order():
    result = CliRunner().invoke(cli.main, ["--help"])
    assert result.exit_code == 0, result.output
    assert listed_commands(result.output) == SUBCOMMANDS


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_help_has_an_example(name):
    result = CliRunner().invoke(cli.main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert f"fewbits {name}" in result.output.split("xample", 1)[1], result.output


def test_python_dash_m_fewbits_help():
    proc = run("--help")
    assert proc.returncode == 0, proc.stderr
    assert listed_commands(proc.stdout) == SUBCOMMANDS


@pytest.mark.parametrize("args, fragment", [
    (["no-such-command"], "no-such-command"),
    (["--no-such-option"], "--no-such-option"),
    (["demo", "--no-such-option"], "--no-such-option"),
])
def test_bad_usage_of_fewbits_is_one_line_exit_2(args, fragment):
    proc = run(*args)
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr, "fewbits: error:", fragment)


@pytest.mark.parametrize("bad", ["fixed:0:3", "fixed:65:0", "float:1:3", "fixed:8:4,round=up", "garbage"])
def test_format_error_is_one_line_exit_2(bad):
    result = CliRunner().invoke(toy_group(), ["parse", "--fmt", bad], prog_name="fewbits")
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert_one_line_error(result.stderr, "fewbits: error:")


def test_a_good_format_goes_through():
    result = CliRunner().invoke(toy_group(), ["parse", "--fmt", "fixed:11:5,symmetric,round=rna"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args, fragment", [
    (["parse", "--fmt", "fixed:8:4,bogus"], "bogus"),        # FormatError from fewbits.sim
    (["parse", "--fmt", "fp16", "--k", "0"], "--k"),        # click range check
    (["parse", "--fmt", "fp16", "--k", "four"], "four"),    # click type check
    (["parse"], "--fmt"),                                    # missing option
    (["multiline"], "accepted: fixed:W:F"),                  # a multi-line message is joined
    (["param"], "--k"),                                      # click.BadParameter raised by a command
])
def test_errors_in_a_real_shell_are_one_line_exit_2(tmp_path, args, fragment):
    proc = run_toy(tmp_path, *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert_one_line_error(proc.stderr, "fewbits: error:", fragment)


def test_error_path_leaves_real_bugs_visible():
    result = CliRunner().invoke(toy_group(), ["bug"])
    assert isinstance(result.exception, KeyError)


def test_fewbits_debug_reraises(monkeypatch):
    monkeypatch.setenv("FEWBITS_DEBUG", "1")
    result = CliRunner().invoke(toy_group(), ["multiline"])
    assert isinstance(result.exception, ValueError)


@pytest.mark.parametrize("code", [
    "import fewbits",
    "import fewbits.cli",
    # --help resolves every subcommand (fewbits/cli/*.py): none may import heavy modules at import time
    "from fewbits.cli import main; main(['--help'], standalone_mode=False)",
])
def test_import_and_help_stay_light(code):
    probe = f"import sys\n{code}\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
