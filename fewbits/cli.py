"""The ``fewbits`` command line.

Adding a subcommand needs no edit here: write ``fewbits/cmd_<name>.py`` defining a
click command called ``command`` (for a name listed in ``COMMANDS``); the group
finds it on first use.  Import torch, amaranth or cocotb *inside* the command
function, never at module level, so that ``fewbits --help`` stays fast.  Until a
module exists, a placeholder says which issue will implement the command.

Errors are reported once, here: a ``FormatError`` (a ``ValueError``), any other
``ValueError`` or a click usage error raised while parsing or running a command
becomes one line ``fewbits: error: <message>`` on stderr and exit status 2.
``FEWBITS_DEBUG=1`` re-raises instead, to see the traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass

import click


@dataclass(frozen=True)
class _Planned:
    """What ``--help`` says about a subcommand before (and after) it is implemented."""

    issue: int
    summary: str
    example: str


# Pipeline order: this is the order ``fewbits --help`` lists them in.
COMMANDS: dict[str, _Planned] = {
    "train": _Planned(3, "Train a network with quantized multiplications (the paper's method).",
                      "fewbits train --dataset digits --net mlp-small --prop dfixed:11 --update dfixed:13"),
    "verilog": _Planned(4, "Generate the Amaranth MAC array for given formats as Verilog + manifest.",
                        "fewbits verilog --rows 4 --cols 4 --a fixed:8:6 --b fixed:8:7 --out fixed:8:5 -o build/hw"),
    "cosim": _Planned(5, "Co-simulate a generated MAC array bit for bit against the reference model.",
                      "fewbits cosim --design build/hw --vectors 10000 --seed 1"),
    "synth": _Planned(6, "Synthesize a design with Yosys: cells, transistors, LUTs, Fmax.",
                      "fewbits synth build/hw --target cmos --target ice40"),
    "power": _Planned(6, "Estimate energy per MAC from gate-level toggle counts on captured vectors.",
                      "fewbits power build/hw --capture build/train/capture.npz"),
    "sweep": _Planned(7, "Run a precision sweep (train, generate, co-simulate, synthesize) resumably.",
                      "fewbits sweep sweep.toml --results build/results"),
    "report": _Planned(7, "Write the HTML/CSV report of a sweep: error vs bits, area and energy.",
                       "fewbits report build/results -o build/report"),
    "demo": _Planned(7, "Run the main job end to end on a small example (`make demo`).",
                     "fewbits demo -o build/demo"),
}

_NOT_IMPLEMENTED_EXIT = 2
_ERROR_EXIT = 2


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


class CommandError(click.ClickException):
    """An error shown as the single line ``fewbits: error: <message>``."""

    exit_code = _ERROR_EXIT

    def __init__(self, message: str, exit_code: int = _ERROR_EXIT):
        super().__init__(_one_line(message))
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo(f"fewbits: error: {self.format_message()}", err=True)


def _as_command_error(exc: BaseException) -> CommandError:
    if isinstance(exc, CommandError):
        return exc
    if isinstance(exc, click.UsageError):
        msg = exc.format_message()
        if exc.ctx is not None:
            msg = f"{_one_line(msg)} (see '{exc.ctx.command_path} --help')"
        return CommandError(msg, exc.exit_code)
    if isinstance(exc, click.ClickException):
        return CommandError(exc.format_message(), exc.exit_code)
    return CommandError(str(exc) or type(exc).__name__)


class FewbitsGroup(click.Group):
    """A click group with lazily imported subcommands and one-line error reporting."""

    handled = (click.ClickException, ValueError)

    def list_commands(self, ctx: click.Context) -> list[str]:
        extra = sorted(n for n in self.commands if n not in COMMANDS)
        return [*COMMANDS, *extra]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name not in COMMANDS:
            return None
        module_name = f"{__package__ or 'fewbits'}.cmd_{cmd_name}"
        if importlib.util.find_spec(module_name) is not None:
            cmd = importlib.import_module(module_name).command  # errors here are bugs: let them show
        else:
            cmd = _placeholder(cmd_name, COMMANDS[cmd_name])
        self.commands[cmd_name] = cmd
        return cmd

    def make_context(self, *args, **kwargs) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except self.handled as exc:
            if os.environ.get("FEWBITS_DEBUG"):
                raise
            raise _as_command_error(exc) from exc

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except self.handled as exc:
            if os.environ.get("FEWBITS_DEBUG"):
                raise
            raise _as_command_error(exc) from exc


def _help_text(planned: _Planned) -> str:
    return (f"{planned.summary}\n\nNot implemented yet: issue {planned.issue} will implement it."
            f"\n\n\b\nExample:\n  {planned.example}")


def _placeholder(name: str, planned: _Planned) -> click.Command:
    """A command that only says which issue will implement it (exit status 2)."""

    def callback(args):
        click.echo(f"fewbits: {name}: not implemented yet (issue {planned.issue} will implement it)", err=True)
        sys.exit(_NOT_IMPLEMENTED_EXIT)

    return click.Command(
        name,
        callback=callback,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        help=_help_text(planned),
        short_help=f"{planned.summary.rstrip('.')} [issue {planned.issue}]",
        add_help_option=True,
    )


@click.group(cls=FewbitsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fewbits")
def main():
    """fewbits: how few bits can the multipliers have, and what does each bit cost?

    Train at low precision, generate the MAC array, co-simulate it bit for bit,
    synthesize it, and report error against area and energy.

    \b
    Quick start:
      fewbits demo -o build/demo
      fewbits COMMAND --help
    """
