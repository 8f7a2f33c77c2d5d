"""``fewbits tech`` and ``--tech`` bad input: one line ``fewbits: error: ...``, exit 2."""

from click.testing import CliRunner
from fewbits.cli import main


def _err(args):
    r = CliRunner().invoke(main, args)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("fewbits: error:"), r.stderr
    return lines[0]


def test_unknown_technology():
    assert "accepted sky130" in _err(["tech", "gf180"])


def test_tech_and_liberty_together(tmp_path):
    lib = tmp_path / "x.lib"
    lib.write_text("library (x) { }\n")
    v = tmp_path / "m.v"
    v.write_text("module m(input a, output y); assign y = ~a; endmodule\n")
    assert "not both" in _err(["synth", str(v), "--liberty", str(lib), "--tech", "sky130", "-o", str(tmp_path / "o")])
    assert "not both" in _err(["power", str(v), "--vectors", "random", "--liberty", str(lib), "--tech", "sky130",
                               "-o", str(tmp_path / "o")])
