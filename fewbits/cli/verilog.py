"""``fewbits verilog``: export the MAC array for one format combination as Verilog + JSON manifest.

Every input is validated (formats parsed, the spec checked against what the
hardware builds) before anything is elaborated; bad input is one line on stderr.
"""

from __future__ import annotations

import click

from fewbits.cli.paths import OutputDir

EXAMPLES = """
\b
Examples:
  fewbits verilog --rows 4 --cols 4 --a fixed:8:6 --b fixed:8:7 --out fixed:8:5 -o build/hw
  fewbits verilog --rows 4 --cols 4 --a dfixed:11 --b dfixed:11 --out dfixed:11 -o build/hw
  fewbits verilog --rows 4 --cols 4 --a fp16 --b fp16 --out fp16 -o build/hw
  fewbits verilog --rows 8 --cols 2 --a fp8_e4m3 --b fp8_e4m3 --out bf16 --name mac_fp8 -o build/hw

\b
Formats: fixed:W:F ufixed:W:F dfixed:W float:E:M fp16 bf16 fp8_e5m2 fp8_e4m3 fp32,
options after commas (round=rne|rna|rtz|rdn, overflow=sat|wrap, symmetric);
--acc takes acc:W:F (default: exact and wide enough for --k-max products) or a float
accumulator: a float format with an optional chunk, e.g. fp32, bf16, "float:8:10,chunk=4"
(the running sum rounded once per chunk of N products, ascending k).
  fewbits verilog --rows 2 --cols 2 --a fp8_e4m3 --b fp8_e4m3 --out bf16 --acc fp32 --k-max 32 -o build/hw
"""


def build_spec(rows, cols, a, b, out, acc, bias, k_max, multiplier="yosys"):
    """Parse and validate everything; raises FormatError with a one-line message."""
    from fewbits.hw.mac import resolve_spec
    from fewbits.sim import MacSpec, parse_format

    fa, fb, fo = parse_format(a), parse_format(b), parse_format(out)
    facc = parse_format(acc) if acc else None
    fbias = parse_format(bias) if bias else None
    return resolve_spec(MacSpec(fa, fb, fo, facc, fbias, rows, cols, k_max, multiplier=multiplier))


def array_options(required: bool):
    """The shape and format options of one MAC array (``verilog`` requires them, ``cosim`` may take them)."""
    # click 8.5 treats an explicit default=None as a value: a required option must have no default at all
    need = {"required": True} if required else {"default": None}
    options = [  # rows, cols and the formats are checked by MacSpec, the one place that knows their limits
        click.option("--rows", type=int, **need, help="array rows R (1..32): rows of A and Z"),
        click.option("--cols", type=int, **need, help="array columns C (1..32): columns of B and Z"),
        click.option("--a", "a_fmt", **need, metavar="FMT", help="format of A's codes"),
        click.option("--b", "b_fmt", **need, metavar="FMT", help="format of B's codes"),
        click.option("--out", "out_fmt", **need, metavar="FMT", help="format of Z's codes"),
        click.option("--acc", "acc_fmt", default=None, metavar="FMT",
                     help="accumulator: acc:W:F, or a float accumulator fp32|bf16|fp16|float:E:M[,chunk=N] "
                          "(default: exact for k-max)"),
        click.option("--bias", "bias_fmt", default=None, metavar="FMT", help="bias format (default: the output format)"),
        click.option("--k-max", "k_max", type=click.IntRange(min=1), default=1024, show_default=True,
                     help="longest dot product accepted"),
    ]

    def apply(f):
        for option in reversed(options):
            f = option(f)
        return f

    return apply


@click.command("verilog", epilog=EXAMPLES)
@array_options(required=True)
@click.option("--name", default=None, metavar="TOP", help="top module name (default mac_RxC)")
@click.option("--multiplier", default="yosys", show_default=True, metavar="ARCH",
              help="fixed-point product: yosys (its own *) | booth (radix-4 + Dadda tree) | dadda (AND array + "
                   "Dadda tree); MacSpec checks it")
@click.option("-o", "--out-dir", "out_dir", required=True, type=OutputDir(), help="output folder")
def verilog(rows, cols, a_fmt, b_fmt, out_fmt, acc_fmt, bias_fmt, k_max, name, multiplier, out_dir):
    """Generate the R x C MAC array as DIR/TOP.v plus the DIR/TOP.json manifest."""
    from fewbits.hw.manifest import check_module_name
    from fewbits.sim import FormatError

    # FormatError (a ValueError) becomes one line in the group (fewbits.cli); the shape is checked here,
    # before the default top name is made of it
    spec = build_spec(rows, cols, a_fmt, b_fmt, out_fmt, acc_fmt, bias_fmt, k_max, multiplier)
    name = name or f"mac_{rows}x{cols}"
    try:
        check_module_name(name, "top name")  # the one rule for every name that reaches a tool script
    except FormatError as e:
        raise click.BadParameter(str(e), param_hint="--name") from None
    from fewbits.hw import export

    click.echo(f"generating {rows}x{cols} MAC array ({spec.a_fmt} x {spec.b_fmt} -> {spec.out_fmt}, "
               f"acc {spec.acc_fmt}) ...", err=True)
    try:
        res = export.verilog(spec, out_dir, name)
    except OSError as e:
        raise click.ClickException(f"cannot write to {out_dir}: {e.strerror}") from e
    click.echo(f"wrote {res['verilog']} and {res['manifest']} (latency {res['latency']} cycles, "
               f"{res['seconds']:.1f} s)")


command = verilog
