"""``fewbits cosim``: co-simulate a generated MAC array bit for bit against the reference model.

Verifies a design folder written by ``fewbits verilog`` (its manifest says what
it computes), or generates one first: from the same shape/format options, or from
the spec a training capture records (``--capture DIR`` alone; options given beside
it change the array's shape, and must agree with the capture on formats).
Exit status 0 only when every result matched; a mismatch is status 1 with one
line naming the report, a simulator that is missing or fails to build is status 2.
"""

from __future__ import annotations

from pathlib import Path

import click

from fewbits.cli.paths import OutputDir
from fewbits.cli.verilog import array_options

EXAMPLES = """
\b
Examples:
  fewbits cosim --rows 4 --cols 4 --a fixed:8:6 --b fixed:8:7 --out fixed:8:5 --vectors 2000
  fewbits cosim --design build/hw --vectors 10000 --seed 1 --simulator verilator
  fewbits cosim --design build/hw --capture build/train/capture/capture.json
  fewbits cosim --rows 4 --cols 4 --a dfixed:11 --b dfixed:11 --out dfixed:11 --capture build/train/capture
  fewbits cosim --capture runs/lenet/capture     (the design from the spec the capture records)

\b
Vectors: --vectors N random tiles (seed --seed), corner cases (--no-corners to drop them),
every pair of codes when there are few (--exhaustive forces it up to 65536 pairs), and with
--capture the three matmuls of each captured layer (their K split into chunks <= k_max).
Report: DIR/report.txt and DIR/report.json (first mismatches with tile, element, operands,
expected and actual codes in hex and as values).
"""

AUTO_EXHAUSTIVE = 4096
CORE_MATMULS = ("forward", "input_grad", "weight_grad")  # a skipped one of these fails the run


@click.command("cosim", epilog=EXAMPLES)
@click.option("--design", "design_dir", type=click.Path(), default=None, metavar="DIR",
              help="a folder written by `fewbits verilog` (else generate from the options below)")
@array_options(required=False)  # the same shape/format options as `fewbits verilog`, to generate first
@click.option("--capture", "capture", type=click.Path(), default=None, metavar="FILE",
              help="a training capture (capture.json or its folder)")
@click.option("--vectors", type=click.IntRange(min=0), default=None,
              help="random tiles to verify [default: 200, or 0 with --capture]")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the random vectors and schedule")
@click.option("--corners/--no-corners", default=True, show_default=True, help="corner-case vectors")
@click.option("--exhaustive/--no-exhaustive", default=None,
              help=f"every pair of codes (default: when at most {AUTO_EXHAUSTIVE} pairs)")
@click.option("--simulator", type=click.Choice(["icarus", "verilator"]), default="icarus", show_default=True)
@click.option("--mode", type=click.Choice(["stream", "ports"]), default="stream", show_default=True,
              help="stream: the harness plays a stimulus file (fast); ports: cocotb drives every cycle")
@click.option("--idle", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="probability of idle cycles before each K step")
@click.option("--resets", type=click.FloatRange(0, 1), default=0.02, show_default=True,
              help="probability of a reset in the middle of a tile (the tile is then fed again)")
@click.option("-o", "--out-dir", "out_dir", type=OutputDir(), default="build/cosim",
              show_default=True, help="report folder (the generated design goes to DIR/design)")
def cosim(design_dir, rows, cols, a_fmt, b_fmt, out_fmt, acc_fmt, bias_fmt, k_max, capture, vectors, seed,
          corners, exhaustive, simulator, mode, idle, resets, out_dir):
    """Co-simulate a MAC array bit for bit against fewbits.sim.mac_reference (and a training capture)."""
    from fewbits.cli import CommandError

    out = Path(out_dir)
    gen_opts = {"--rows": rows, "--cols": cols, "--a": a_fmt, "--b": b_fmt, "--out": out_fmt}
    k_max_given = click.get_current_context().get_parameter_source("k_max") != click.core.ParameterSource.DEFAULT
    if capture is not None and not Path(capture).exists():
        raise click.BadParameter(f"{capture}: no such file or folder; accepted a capture.json or its folder",
                                 param_hint="--capture")
    recorded = None
    if design_dir is None:
        missing = [k for k, v in gen_opts.items() if v is None]
        if missing and capture is not None:
            recorded = _recorded_spec(capture, missing)
        elif missing:
            raise click.UsageError(f"missing {' '.join(missing)}: give --design DIR, --capture DIR (a capture "
                                   "records its design), or --rows --cols --a --b --out to generate the design first")
    else:
        given = [k for k, v in {**gen_opts, "--acc": acc_fmt, "--bias": bias_fmt}.items() if v is not None]
        if given:
            raise click.UsageError(f"{' '.join(given)} cannot be combined with --design (its manifest gives them)")
    from fewbits.cosim import runner
    from fewbits.hw.design import DesignError, ManifestError, load_design

    try:
        runner.simulator_env(simulator)
    except runner.SimulatorError as e:
        raise CommandError(str(e)) from None
    if design_dir is None:
        from fewbits.hw import export
        from fewbits.hw.mac import resolve_spec
        from fewbits.sim import parse_format

        if recorded is not None:
            spec = _spec_from_capture(recorded, capture, rows, cols, k_max if k_max_given else None,
                                      {"--a": a_fmt, "--b": b_fmt, "--out": out_fmt, "--acc": acc_fmt,
                                       "--bias": bias_fmt})
            rows, cols = spec.rows, spec.cols
        else:
            spec = resolve_spec(parse_format(a_fmt), parse_format(b_fmt), parse_format(out_fmt),
                                parse_format(acc_fmt) if acc_fmt else None,
                                parse_format(bias_fmt) if bias_fmt else None, rows, cols, k_max)
        click.echo(f"generating {rows}x{cols} MAC array ({spec.a_fmt} x {spec.b_fmt} -> {spec.out_fmt}) ...",
                   err=True)
        res = export.verilog(spec, out / "design", f"mac_{rows}x{cols}")
        design_dir = res["manifest"]
    try:
        design = load_design(design_dir)
    except (DesignError, ManifestError) as e:
        raise click.BadParameter(str(e), param_hint="--design") from None
    spec = design.spec
    from fewbits.cosim import vectors as V
    from fewbits.cosim.schedule import Plan
    from fewbits.cosim.verify import verify

    mms, skipped = [], []
    if capture is not None:
        cm, skipped = V.capture_matmuls(capture, spec)
        for s in skipped:
            click.echo(f"capture: skipping {s['name']}: {s['reason']}", err=True)
        if not cm:
            raise CommandError(f"capture {capture}: no matmul fits design {design.top} "
                               f"({'; '.join(s['reason'] for s in skipped)})")
        mms += cm
    n_rand = vectors if vectors is not None else (0 if capture else 200)
    if n_rand:
        mms += V.random_matmuls(spec, n_rand, seed)
    if corners:
        mms += V.corner_matmuls(spec, seed)
    pairs = len(V.all_codes(spec.a_fmt)) * len(V.all_codes(spec.b_fmt))
    if exhaustive or (exhaustive is None and pairs <= AUTO_EXHAUSTIVE):
        mms += V.exhaustive_matmuls(spec)
    if not mms:
        raise click.UsageError("nothing to verify: give --vectors N, --capture FILE, --corners or --exhaustive")
    plan = Plan(idle_prob=idle, reset_prob=resets, shuffle=True, seed=seed)
    click.echo(f"co-simulating {design.top} on {simulator} ({mode} mode) ...", err=True)
    try:
        s = verify(design, mms, out, simulator, plan, mode)
    except runner.SimulatorError as e:
        raise CommandError(str(e)) from None
    s["capture_skipped"] = skipped
    import json

    (out / "report.json").write_text(json.dumps(s, indent=1) + "\n")
    click.echo((out / "report.txt").read_text().splitlines()[0])
    if not s["ok"]:
        raise CommandError(f"co-simulation mismatch: {s['mismatches']} elements differ, {s['missing']} results "
                           f"missing, {s['unexpected']} unexpected (report: {out / 'report.txt'})", exit_code=1)
    core = [x for x in skipped if x["name"].rsplit(".", 1)[-1] in CORE_MATMULS]
    if core:
        raise CommandError(f"{len(core)} captured matmul(s) could not run on this design: "
                           f"{core[0]['name']}: {core[0]['reason']} (report: {out / 'report.json'})", exit_code=1)


def _recorded_spec(capture, missing):
    """The ``RunSpec`` a capture records, or one line saying the options it lacks."""
    from fewbits.cli import CommandError
    from fewbits.sim.capture import CaptureError, read_capture, recorded_spec

    try:
        spec = recorded_spec(read_capture(capture))
    except CaptureError as e:
        raise CommandError(str(e)) from None
    if spec is None:
        raise CommandError(f"capture {capture} records no design spec (written before captures recorded one): "
                           f"give {' '.join(missing)}, or --design DIR")
    if spec.prop is None:
        raise CommandError(f"capture {capture} is of an fp32 run: it holds no codes and names no MAC array; "
                           "capture a quantized run (--prop fixed:..., dfixed:..., fp16, ...)")
    return spec


def _spec_from_capture(run_spec, capture, rows, cols, k_max, formats: dict):
    """The forward MAC spec of a capture's run (``RunSpec.mac``, as a sweep's Verilog stage builds it),
    with the array shape the options give; a format option that disagrees is one line."""
    import dataclasses

    from fewbits.cli import CommandError
    from fewbits.hw.mac import resolve_spec
    from fewbits.sim import parse_format

    shape = {k: v for k, v in (("rows", rows), ("cols", cols), ("k_max", k_max)) if v is not None}
    spec = resolve_spec(dataclasses.replace(run_spec, **shape).mac("forward"))
    have = {"--a": spec.a_fmt, "--b": spec.b_fmt, "--out": spec.out_fmt, "--acc": spec.acc_fmt,
            "--bias": spec.bias_fmt}
    from fewbits.sim.accumulator import as_accumulator

    for opt, text in formats.items():
        given = None if text is None else parse_format(text)
        if given is not None and opt == "--acc":
            given = as_accumulator(given)
        if given is not None and given != have[opt]:
            raise CommandError(f"{opt} {text} conflicts with capture {capture}, whose run computes "
                               f"{opt[2:]} in {have[opt]}: drop {opt} (the capture gives it) or give --design DIR")
    return spec


command = cosim
