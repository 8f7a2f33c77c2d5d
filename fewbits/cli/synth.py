"""``fewbits synth``: Yosys synthesis of generated designs (or any Verilog) into JSON records + a table."""

from __future__ import annotations

import json
from pathlib import Path

import click

from fewbits.cli.paths import OutputDir

EXAMPLES = """
\b
Examples:
  fewbits synth build/hw --target cmos --target ice40
  fewbits synth build/hw --target ice40 --no-dsp --fmax
  fewbits synth my.v --top mul8 --target xilinx
  fewbits synth build/hw --liberty cells.lib
  fewbits synth --sweep fixed:2..16 --sweep float:5:2..10 --power -o build/sweep
  fewbits synth --sweep fixed:4,8,16,32 --multiplier booth --multiplier dadda --tech sky130 --power
  fewbits synth --sweep fixed:4,8,16,32 --part multiplier --multiplier yosys --multiplier booth --tech sky130

\b
Targets: cmos (generic gates, transistors, logic depth), ice40, xilinx, ecp5
(LUTs, carries, FFs, DSPs; --no-dsp maps multipliers to LUTs), and --liberty FILE
(area in the library's units).  Records are cached by design hash + target in
$FEWBITS_CACHE (default $XDG_CACHE_HOME/fewbits, else ~/.cache/fewbits).
"""


def _echo_failure(e) -> None:
    if getattr(e, "tail", ""):
        click.echo("--- log tail ---\n" + e.tail + "\n---", err=True)


@click.command("synth", epilog=EXAMPLES)
@click.argument("design", required=False, type=click.Path(path_type=Path))
@click.option("--top", default=None, help="top module (default: from the manifest, or the only module)")
@click.option("--target", "targets", multiple=True, metavar="TARGET",
              help="cmos | ice40 | xilinx | ecp5 (repeatable; default cmos)")
@click.option("--no-dsp", is_flag=True, help="FPGA targets: no DSP inference (multipliers in LUTs)")
@click.option("--tech", type=click.Choice(["sky130"]), default=None,
              help="characterized standard cells (sky130_fd_sc_hd tt 1.8V 25C; built once, cached): as --liberty")
@click.option("--liberty", type=click.Path(path_type=Path), default=None,
              help="also map to this Liberty standard-cell library (area in its units)")
@click.option("--fmax", is_flag=True, help="iCE40: place and route with nextpnr-ice40 and report Fmax")
@click.option("--parts/--no-parts", default=True, show_default=True,
              help="also synthesize the bare multiplier and MAC unit of the same formats")
@click.option("--timeout", type=float, default=600, show_default=True, help="seconds per tool run")
@click.option("--no-cache", is_flag=True, help="re-run even if a cached record exists")
@click.option("--sweep", "sweeps", multiple=True, metavar="RANGE",
              help="sweep bare multipliers and MAC units: fixed:LO..HI, dfixed:LO..HI, float:E:LO..HI (mantissa)")
@click.option("--multiplier", "multipliers", multiple=True, metavar="ARCH",
              help="--sweep: multiplier architecture(s) yosys | booth | dadda (repeatable; default yosys)")
@click.option("--part", "sweep_parts", multiple=True, type=click.Choice(["multiplier", "mac_unit"]),
              help="--sweep: only these parts (repeatable; default the multiplier and the MAC unit)")
@click.option("--power", "sweep_power", is_flag=True,
              help="--sweep: also simulate each point on seeded random vectors for energy per MAC")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="--sweep: points run in parallel (a killed sweep resumes from OUT_DIR/store)")
@click.option("-o", "--out-dir", type=OutputDir(Path), default=Path("build/synth"),
              show_default=True, help="where the JSON records (and a sweep's CSV) go")
def synth(design, top, targets, no_dsp, liberty, tech, fmax, parts, timeout, no_cache, sweeps, multipliers, sweep_parts,
          sweep_power, workers, out_dir):
    """Synthesize DESIGN (a `fewbits verilog` directory or a Verilog file) with Yosys."""
    from fewbits.hw.design import load_designs
    from fewbits.hw.eda import synth as S
    from fewbits.hw.eda.synth_tools import SynthError

    from fewbits.cli.tech import resolve_liberty

    targets = list(targets) or ([] if tech else ["cmos"])
    liberty = resolve_liberty(liberty, tech)
    for t in targets:
        if t not in S.FPGA_TARGETS + ("cmos",):
            raise click.BadParameter(f"unknown target {t!r}: accepted cmos, ice40, xilinx, ecp5 "
                                     "(and --liberty FILE)", param_hint="--target")
    if liberty is not None:
        if not liberty.is_file():
            raise click.BadParameter(f"{liberty}: Liberty file not found (accepted: a readable .lib file)",
                                     param_hint="--liberty")
        targets.append("liberty")
    if fmax and "ice40" not in targets:
        targets.append("ice40")
    if timeout <= 0:
        raise click.BadParameter(f"{timeout}: accepted seconds > 0", param_hint="--timeout")
    if sweeps:
        from fewbits.flow import parts as part_sweep
        from fewbits.sim.spec import MULTIPLIERS

        for m in multipliers:
            if m not in MULTIPLIERS:
                raise click.BadParameter(f"unknown multiplier {m!r}: accepted {', '.join(MULTIPLIERS)}",
                                         param_hint="--multiplier")

        formats = [p for s in sweeps for p in part_sweep.parse_range(s)]
        res = part_sweep.run(formats, targets, out_dir, dsp=not no_dsp, liberty=liberty, timeout=timeout,
                             use_cache=not no_cache, power=sweep_power, progress=True, workers=workers,
                             multipliers=multipliers or ("yosys",), parts=list(sweep_parts) or None)
        click.echo(f"{len(res['ok'])} records, {len(res['failed'])} failed; wrote {res['csv']}")
        for f in res["failed"]:
            click.echo(f"failed: {f}", err=True)
        if res["failed"] and not res["ok"]:
            raise click.ClickException("every sweep point failed")
        return
    if sweep_parts:
        raise click.UsageError("--part goes with --sweep (for a design: --parts/--no-parts)")
    if multipliers:
        raise click.UsageError("--multiplier goes with --sweep (a design's architecture is in its manifest: "
                               "fewbits verilog --multiplier)")
    if design is None:
        raise click.UsageError("missing DESIGN (a `fewbits verilog` directory or a Verilog file), or use --sweep")
    designs = load_designs(design, top)
    records = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for d in designs:
        todo = [d]
        if parts and d.spec is not None:
            from fewbits.hw.eda.synth_parts import PARTS, part_design

            todo += [part_design(d, p) for p in PARTS]
        for dd in todo:
            for t in targets:
                try:
                    rec = S.synthesize(dd, t, dsp=not no_dsp, liberty=liberty, timeout=timeout,
                                       use_cache=not no_cache)
                    if fmax and t == "ice40":
                        from fewbits.hw.eda.synth_fmax import fmax_ice40

                        rec["fmax"] = fmax_ice40(dd, timeout=timeout, use_cache=not no_cache)
                        rec["figures"]["fmax_mhz"] = rec["fmax"].get("fmax_mhz")
                except SynthError as e:
                    _echo_failure(e)
                    raise
                rec["part"] = dd.name
                records.append(rec)
                name = dd.name.replace(":", ".") + f".{t}" + (".nodsp" if no_dsp and t in S.FPGA_TARGETS else "")
                (out_dir / f"{name}.json").write_text(json.dumps(rec, indent=1) + "\n")
    click.echo(S.table(records))
    notes = {r["fmax"]["note"] for r in records if r.get("fmax", {}).get("note")}
    for n in sorted(notes):
        click.echo(f"note: {n}")
    click.echo(f"wrote {len(records)} records to {out_dir}")


command = synth
