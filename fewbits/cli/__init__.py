"""The ``fewbits`` command line.

A subcommand is ``fewbits/cli/<name>.py`` defining a click command called
``command``, for a name listed in ``COMMANDS``; the group imports it on first use.
Import torch, amaranth or cocotb *inside* the command function, never at module
level, so that ``fewbits --help`` stays fast.

Errors are reported once, here: a ``FormatError`` (a ``ValueError``), any other
``ValueError`` or a click usage error raised while parsing or running a command
becomes one line ``fewbits: error: <message>`` on stderr and exit status 2.
``FEWBITS_DEBUG=1`` re-raises instead, to see the traceback.
"""

from __future__ import annotations

import importlib
import os

import click

# Pipeline order: this is the order ``fewbits --help`` lists them in; each is ``fewbits/cli/<name>.py``.
COMMANDS = ("train", "verilog", "cosim", "tech", "synth", "power", "sweep", "report", "demo")

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
        cmd = importlib.import_module(f"fewbits.cli.{cmd_name}").command  # errors here are bugs: let them show
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
