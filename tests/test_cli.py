"""The CLI skeleton: every subcommand is listed and documented, errors are one line, imports stay light."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from fewbits import cli

# The subcommands the issue asks for (the CLI's public surface).
SUBCOMMANDS = ["train", "verilog", "cosim", "synth", "power", "sweep", "report", "demo"]
HEAVY = ("torch", "amaranth", "cocotb", "numpy", "matplotlib", "scipy", "sklearn", "dask")


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m fewbits ARGS`` in a fresh interpreter (what a user's shell sees)."""
    return subprocess.run([sys.executable, "-m", "fewbits", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def implemented(name: str) -> bool:
    return importlib.util.find_spec(f"fewbits.cmd_{name}") is not None or name in cli._FALLBACKS


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


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_unimplemented_subcommand_names_its_issue_and_fails(name):
    if implemented(name):
        pytest.skip(f"fewbits {name} is implemented")
    proc = run(name, "--some-option", "value")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert_one_line_error(proc.stderr, name, f"issue {cli.COMMANDS[name].issue}")


def test_python_dash_m_fewbits_help():
    proc = run("--help")
    assert proc.returncode == 0, proc.stderr
    assert listed_commands(proc.stdout) == SUBCOMMANDS


@pytest.mark.parametrize("args, fragment", [
    (["no-such-command"], "no-such-command"),
    (["--no-such-option"], "--no-such-option"),
    (["demo", "--rows", "0"], "--rows"),
    (["demo", "--rows", "four"], "four"),
])
def test_bad_usage_is_one_line_exit_2(args, fragment):
    proc = run(*args)
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr, "fewbits: error:", fragment)


@pytest.mark.parametrize("bad", ["fixed:0:3", "fixed:65:0", "float:1:3", "fixed:8:4,round=up", "garbage"])
def test_bad_format_string_is_one_line_exit_2(bad, tmp_path):
    result = CliRunner().invoke(cli.main, ["demo", "-o", str(tmp_path / "demo"), "--a", bad], prog_name="fewbits")
    assert result.exit_code == 2, result.output
    assert_one_line_error(result.stderr, "fewbits: error:")
    assert not (tmp_path / "demo").exists()  # rejected before any work


def test_bad_format_string_in_a_real_shell(tmp_path):
    proc = run("demo", "-o", str(tmp_path / "demo"), "--out", "fixed:8:4,bogus")
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc.stderr, "fewbits: error:", "bogus")


def _toy_group() -> click.Group:
    """A group of the CLI's class whose commands raise each kind of error it must report."""

    @click.group(cls=cli.FewbitsGroup)
    def toy():
        pass

    class FormatLikeError(ValueError):  # fewbits.sim.FormatError is a ValueError
        pass

    @toy.command()
    def fmt():
        raise FormatLikeError("bad width 0 in 'fixed:0:3'\naccepted: fixed:W:F with W in 1..64")

    @toy.command()
    def param():
        raise click.BadParameter("must be positive", param_hint="'--k'")

    @toy.command()
    def bug():
        raise KeyError("a real bug")

    return toy


@pytest.mark.parametrize("cmd, fragment", [("fmt", "bad width 0"), ("param", "--k")])
def test_error_path_turns_exceptions_into_one_line(cmd, fragment):
    result = CliRunner().invoke(_toy_group(), [cmd], prog_name="fewbits")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert_one_line_error(result.stderr, "fewbits: error:", fragment)
    assert "accepted: fixed:W:F" in result.stderr or cmd != "fmt"  # multi-line messages are joined


def test_error_path_leaves_real_bugs_visible():
    result = CliRunner().invoke(_toy_group(), ["bug"])
    assert isinstance(result.exception, KeyError)


def test_fewbits_debug_reraises(monkeypatch):
    monkeypatch.setenv("FEWBITS_DEBUG", "1")
    result = CliRunner().invoke(_toy_group(), ["fmt"])
    assert isinstance(result.exception, ValueError)


@pytest.mark.parametrize("code", [
    "import fewbits",
    "import fewbits.cli",
    # --help resolves every subcommand (fewbits/cmd_*.py): none may import heavy modules at import time
    "from fewbits.cli import main; main(['--help'], standalone_mode=False)",
])
def test_import_and_help_stay_light(code):
    probe = f"import sys\n{code}\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("seed", [0, 7], ids=lambda s: f"seed{s}")
def test_demo_writes_a_record_the_reference_model_reproduces(tmp_path, seed):
    if importlib.util.find_spec("fewbits.cmd_demo") is not None:
        pytest.skip("the real demo (fewbits/cmd_demo.py) is tested by its own module")
    from fewbits import sim
    import torch

    out = tmp_path / "demo"
    result = CliRunner().invoke(cli.main, ["demo", "-o", str(out), "--seed", str(seed), "--k", "24"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "demo.json").read_text())
    spec = sim.MacSpec.from_json(json.dumps(record["spec"]))
    assert spec.key() == record["key"]
    # the default operand format is the paper's "10 bits, range 5"
    assert spec.a_fmt == sim.parse_format("fixed:11:5,symmetric,round=rna") == sim.paper_format(10, 5)
    z, ovf = spec.compute(torch.tensor(record["a_codes"]), torch.tensor(record["b_codes"]))
    assert z.tolist() == record["z_codes"]
    assert ovf.tolist() == record["overflow"]
    assert "wrote" in result.output
