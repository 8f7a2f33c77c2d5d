"""``fewbits tech sky130``: build (or show) the characterized sky130_fd_sc_hd Liberty.

Why a command: the first build runs ngspice for minutes; doing it explicitly (and once) keeps
``synth``/``power --tech sky130`` quick.  The file is cached under the fewbits cache.
"""

from __future__ import annotations

import click

TECHS = ("sky130",)


def liberty_for(tech: str, *, small: bool = False, jobs: int = 2, progress: bool = True):
    """The Liberty path of ``tech`` (characterized on first use)."""
    if tech not in TECHS:
        raise click.BadParameter(f"unknown technology {tech!r}: accepted {', '.join(TECHS)}", param_hint="TECH")
    from fewbits.hw.eda.tech import build
    from fewbits.hw.eda.tech.pdk import PdkError

    try:
        return build.build(build.SMALL if small else build.FULL, jobs=jobs, progress=progress)
    except PdkError as e:
        raise click.ClickException(str(e)) from e


def refuse_both(liberty, tech) -> None:
    """``--liberty`` and ``--tech`` together: one usage error (checked before any input is read)."""
    if liberty is not None and tech is not None:
        raise click.BadParameter("give --liberty FILE or --tech NAME, not both", param_hint="--tech")


def resolve_liberty(liberty, tech):
    """``--liberty FILE`` or ``--tech NAME`` (not both) -> the Liberty path, or None."""
    refuse_both(liberty, tech)
    return liberty if tech is None else liberty_for(tech)


@click.command("tech")
@click.argument("tech", type=str)
@click.option("--small", is_flag=True, help="only inv_1, buf_1, nand2_1, dfxtp_1 (a quick check of the harness)")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=2, show_default=True, help="parallel ngspice runs")
def command(tech, small, jobs):
    """Characterize TECH's standard cells with ngspice and print the Liberty path (cached).

    \b
    Example:
      fewbits tech sky130
    """
    lib = liberty_for(tech, small=small, jobs=jobs)
    click.echo(str(lib))
