"""export.verilog: Verilog that Icarus compiles and Verilator lints clean, and a manifest that matches it."""

import json
import re
import subprocess

import pytest
from fewbits.hw import export
from fewbits.hw.mac import PeConfig
from fewbits.sim import FormatError, MacSpec, parse_format

EXAMPLES = [  # the issue's four "Done when" examples (4x4)
    ("fixed:8:6", "fixed:8:7", "fixed:8:5"),
    ("dfixed:11", "dfixed:11", "dfixed:11"),
    ("fp16", "fp16", "fp16"),
    ("fp8_e4m3", "fp8_e4m3", "bf16"),
]
SMALL = [  # quick to elaborate: every datapath kind
    ("fixed:4:2", "ufixed:3:1", "fixed:5:2,round=rna,overflow=wrap", 2, 3),
    ("dfixed:6", "dfixed:5", "dfixed:6", 1, 2),
    ("fp8_e5m2", "fp8_e4m3", "fp8_e5m2", 2, 1),
]


def verilog_ports(text, top):
    """{name: (direction, width)} of the top module's port declarations."""
    body = text[text.index(f"module {top}("):]
    body = body[: body.index("endmodule")]
    ports = {}
    for m in re.finditer(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:signed\s+)?(?:\[(\d+):0\]\s+)?\\?(\w+)",
                         body, re.M):
        ports[m.group(3)] = (m.group(1), int(m.group(2)) + 1 if m.group(2) else 1)
    return ports


def check_tools(vfile, verilator):
    subprocess.run(["iverilog", "-g2012", "-o", str(vfile.with_suffix(".vvp")), str(vfile)],
                   check=True, capture_output=True, text=True)
    for extra in ([], ["-Wall"]):
        r = subprocess.run([verilator, "--lint-only", *extra, str(vfile)], capture_output=True, text=True)
        assert r.returncode == 0 and "%Warning" not in r.stderr and "%Error" not in r.stderr, r.stderr[:3000]


def check_manifest(res, spec, top):
    man = json.loads(res["manifest"].read_text())
    text = res["verilog"].read_text()
    array = PeConfig(spec)
    assert man["top"] == top and man["rows"] == spec.rows and man["cols"] == spec.cols
    assert man["k_max"] == spec.k_max and man["latency"] == array.latency == res["latency"]
    for role in ("a", "b", "acc", "bias", "out"):
        assert parse_format(man["formats"][role]) == getattr(spec, f"{role}_fmt")
    assert MacSpec.from_dict(man["spec"]) == spec
    vports = verilog_ports(text, top)
    mports = {p["name"]: p for p in man["ports"]}
    assert set(vports) == set(mports), (sorted(vports), sorted(mports))
    for name, (direction, width) in vports.items():
        p = mports[name]
        assert (p["direction"], p["width"]) == (direction, width), name
        assert p["element_width"] * p["element_count"] == width, name
        assert p["role"]
    assert ("in_shift" in mports) == array.dynamic == ("in_bias_shift" in mports)
    if array.dynamic:  # the bias's own range: a signed runtime shift sized from the formats, like in_shift
        bs = mports["in_bias_shift"]
        assert (bs["width"], bs["signed"], bs["sampled_with"]) == (array.bias_shift_width, True, "in_first")
        assert bs["role"] == "bias_shift" and array.bias_shift_width >= 8
    assert mports["out_z"]["index"] == f"i*{spec.cols}+j" and mports["out_z"]["element_count"] == spec.rows * spec.cols
    assert mports["in_a"]["element_count"] == spec.rows and mports["in_b"]["element_count"] == spec.cols
    assert mports["in_bias"]["sampled_with"] == "in_first"


@pytest.mark.parametrize("a,b,out,rows,cols", SMALL, ids=lambda x: str(x))
def test_small_exports(tmp_path, verilator, a, b, out, rows, cols):
    spec = MacSpec(parse_format(a), parse_format(b), parse_format(out), rows=rows, cols=cols, k_max=16)
    res = export.verilog(spec, tmp_path, "dut_top")
    check_manifest(res, spec, "dut_top")
    check_tools(res["verilog"], verilator)


@pytest.mark.parametrize("a,b,out", EXAMPLES, ids=lambda x: str(x))
def test_issue_examples(tmp_path, verilator, a, b, out):
    spec = MacSpec(parse_format(a), parse_format(b), parse_format(out), rows=4, cols=4)
    res = export.verilog(spec.create(), tmp_path, "mac_4x4")
    check_manifest(res, spec, "mac_4x4")
    check_tools(res["verilog"], verilator)


def test_rejects_before_building(tmp_path):
    with pytest.raises(FormatError, match="hardware accepts fixed-point widths"):
        export.verilog(MacSpec(parse_format("fixed:33:0"), parse_format("fixed:8:0"), parse_format("fixed:8:0")),
                       tmp_path, "x")
    with pytest.raises(FormatError, match="not mixed"):
        export.verilog(MacSpec(parse_format("fp16"), parse_format("fixed:8:0"), parse_format("fp16")), tmp_path, "x")
    with pytest.raises(ValueError, match="Verilog identifier"):
        export.verilog(MacSpec(parse_format("fixed:8:0"), parse_format("fixed:8:0"), parse_format("fixed:8:0")),
                       tmp_path, "1bad-name")
    assert list(tmp_path.iterdir()) == []
