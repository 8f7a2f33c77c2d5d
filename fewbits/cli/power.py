"""``fewbits power``: energy per MAC from gate-level toggle counts on captured (or synthetic) vectors."""

from __future__ import annotations

from pathlib import Path

import click

from fewbits.cli.paths import OutputDir

EXAMPLES = """
\b
Examples:
  fewbits power build/hw --capture build/train/capture
  fewbits power build/hw --capture build/train/capture --matmul forward --clock-mhz 200
  fewbits power build/hw --vectors random --seed 3
  fewbits power build/hw --vectors random:0.1      (each operand re-drawn with probability 0.1)
  fewbits power build/hw --vectors constant
  fewbits power build/hw --vectors random --liberty cells.lib

\b
The design is synthesized to generic gates (Yosys), simulated with Icarus on the
vectors, and every net's toggles are weighted by the switching-energy model
fewbits-45nm-v1 (docs/HARDWARE.md).  Without --capture/--vectors, the capture in
build/train/capture is used when it exists.
"""

DEFAULT_CAPTURE = Path("build/train/capture")


def _vectors(spec_value: str):
    kind, _, p = spec_value.partition(":")
    if kind not in ("random", "constant") or (p and kind != "random"):
        raise click.BadParameter(f"{spec_value!r}: accepted random, random:P (0 < P <= 1) or constant",
                                 param_hint="--vectors")
    act = 1.0
    if p:
        try:
            act = float(p)
        except ValueError:
            act = -1.0
        if not 0 < act <= 1:
            raise click.BadParameter(f"{spec_value!r}: P must be a number in (0, 1]", param_hint="--vectors")
    return kind, act


@click.command("power", epilog=EXAMPLES)
@click.argument("design", type=click.Path(path_type=Path))
@click.option("--top", default=None, help="top module (default: every manifest in the directory)")
@click.option("--capture", type=click.Path(path_type=Path), default=None,
              help="training capture folder (capture.json + capture.npz) or its capture.json")
@click.option("--matmul", "matmuls", multiple=True, help="only these captured matmuls (name or kind, repeatable)")
@click.option("--vectors", "vectors", default=None, metavar="KIND", help="random | random:P | constant")
@click.option("--shape", default="16,32,16", show_default=True, metavar="M,K,N",
              help="matmul shape of synthetic vectors")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-cycles", type=click.IntRange(1, 10**7), default=2000, show_default=True,
              help="simulated cycles per design (complete dot products only)")
@click.option("--clock-mhz", type=click.FloatRange(min=0, min_open=True), default=None,
              help="clock for the power figure [default: 100; with --tech, the design's own fmax]")
@click.option("--parts/--no-parts", default=True, show_default=True,
              help="also the bare multiplier and MAC unit of the same formats")
@click.option("--tech", type=click.Choice(["sky130"]), default=None,
              help="characterized standard cells (sky130_fd_sc_hd tt 1.8V 25C; built once, cached): as --liberty")
@click.option("--liberty", type=click.Path(path_type=Path), default=None,
              help="map to this Liberty library and use its pin capacitances and internal power")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=600, show_default=True)
@click.option("-o", "--out-dir", type=OutputDir(Path), default=Path("build/power"),
              show_default=True)
def power(design, top, capture, matmuls, vectors, shape, seed, max_cycles, clock_mhz, parts, liberty, tech, timeout, out_dir):
    """Estimate toggles, energy per MAC and power of DESIGN on real or synthetic vectors."""
    from fewbits.hw.design import load_designs
    from fewbits.hw.eda import power as P
    from fewbits.hw.eda.power_vectors import capture_operands, synthetic
    from fewbits.hw.eda.synth_tools import SynthError

    if capture is not None and vectors is not None:
        raise click.UsageError("give either --capture or --vectors, not both")
    from fewbits.cli.tech import refuse_both

    refuse_both(liberty, tech)  # conflicting options before anything is read
    # then the design: a missing design is the first thing to hear about, not the vectors
    designs = load_designs(design, top)
    for d in designs:
        if d.manifest is None:
            raise click.BadParameter(f"{d.name}: power needs a design directory with a manifest (fewbits verilog)",
                                     param_hint="DESIGN")
    if capture is None and vectors is None:
        if (DEFAULT_CAPTURE / "capture.json").exists():
            capture = DEFAULT_CAPTURE
        else:
            raise click.UsageError(f"no vectors: pass --capture DIR (a training capture) or --vectors random "
                                   f"(no capture in {DEFAULT_CAPTURE})")
    kind, act = _vectors(vectors) if vectors else (None, 1.0)
    try:
        m, k, n = (int(x) for x in shape.split(","))
        assert m > 0 and k > 0 and n > 0
    except (ValueError, AssertionError):
        raise click.BadParameter(f"{shape!r}: accepted three positive integers M,K,N", param_hint="--shape")
    if capture is not None and not capture.exists():
        raise click.BadParameter(f"{capture}: no such capture (accepted: a folder with capture.json + capture.npz)",
                                 param_hint="--capture")
    from fewbits.cli.tech import resolve_liberty

    liberty = resolve_liberty(liberty, tech)
    if clock_mhz is None and tech is None:
        clock_mhz = 100.0
    if liberty is not None and not liberty.is_file():
        raise click.BadParameter(f"{liberty}: Liberty file not found (accepted: a readable .lib file)",
                                 param_hint="--liberty")
    for d in designs:
        spec = d.spec
        ops = capture_operands(capture, spec, matmuls) if capture else [synthetic(spec, kind, seed, m, k, n, act)]
        todo = [d]
        if parts:
            from fewbits.hw.eda.synth_parts import PARTS, part_design

            todo += [part_design(d, p) for p in PARTS]
        for dd in todo:
            try:
                rec = P.estimate(dd, ops, spec=spec, max_cycles=max_cycles, clock_mhz=clock_mhz, timeout=timeout,
                                 liberty=liberty)
            except SynthError as e:
                if e.tail:
                    click.echo("--- log tail ---\n" + e.tail + "\n---", err=True)
                raise
            P.write_record(rec, out_dir / (dd.name.replace(":", ".") + ".power.json"))
            click.echo(P.report(rec))
            for note in rec["vector_notes"]:
                click.echo(f"  note: {note}")
    click.echo(f"wrote records to {out_dir}")


command = power
