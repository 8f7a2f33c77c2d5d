"""hw.manifest: generated from the signature, one schema, one reader that names the bad field in one line."""

from __future__ import annotations

import copy
import json
import random
import re

import pytest
from fewbits.hw import export
from fewbits.hw.design import load_design
from fewbits.hw.manifest import SCHEMA, ManifestError, from_dict, load_manifest, validate
from fewbits.hw.packing import pack, unpack
from fewbits.hw.ports import array_ports
from fewbits.sim import FormatError, MacSpec, parse_format

EXAMPLES = {  # small shapes of the four example designs
    "fixed": ("fixed:4:2", "fixed:4:2", "fixed:6:2", None),
    "dfixed_bias": ("dfixed:6", "dfixed:5", "dfixed:7", "dfixed:8"),
    "fp16": ("fp16", "fp16", "fp16", None),
    "fp8_bf16": ("fp8_e4m3", "fp8_e5m2", "bf16", None),
}


def spec_of(name, rows=2, cols=3):
    a, b, out, bias = EXAMPLES[name]
    return MacSpec(parse_format(a), parse_format(b), parse_format(out),
                   bias_fmt=parse_format(bias) if bias else None, rows=rows, cols=cols, k_max=8)


@pytest.fixture(scope="module")
def fixed_manifest(tmp_path_factory):
    res = export.verilog(spec_of("fixed"), tmp_path_factory.mktemp("fixed"), "mac")
    return json.loads(res["manifest"].read_text())


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_round_trip_signature_manifest_reader(tmp_path, name):
    spec = spec_of(name)
    array = spec.create()
    res = export.verilog(array, tmp_path, "mac_top")
    man = load_manifest(tmp_path)
    assert validate(json.loads(res["manifest"].read_text()))
    assert (man.top, man.rows, man.cols, man.k_max, man.latency) == ("mac_top", 2, 3, 8, array.latency)
    assert man.spec == spec and man.dynamic == spec.dynamic == (name == "dfixed_bias")
    # every signature member is a manifest port with the signature's direction and width
    sig = {path[0]: m for path, m in array.signature.members.flatten()}
    ports = {p.name: p for p in man.ports}
    assert set(ports) == set(sig) | {"clk", "rst"}
    for n, m in sig.items():
        assert ports[n].width == len(getattr(array, n)), n
        assert ports[n].direction == ("input" if m.flow.name == "In" else "output"), n
    # and the layout hw.ports computed is what the reader gives back
    for info in array_ports(spec):
        p = ports[info.name]
        assert (p.role, p.width, p.element_width, p.element_count, p.signed, p.format) == \
            (info.role, info.width, info.element_width, info.element_count, info.signed, info.format)
    d = load_design(res["manifest"])
    assert d.manifest == man and d.verilog == res["verilog"].resolve() and d.port("z").name == "out_z"


def _drop(obj, path):
    *head, last = path
    for k in head:
        obj = obj[k]
    del obj[last]


def _set(obj, path, value):
    *head, last = path
    for k in head:
        obj = obj[k]
    obj[last] = value


def _required_fields():
    """(path, wrong-typed value) of every required field of the schema, the first port's too."""
    out = []
    for key in SCHEMA["required"]:
        out.append(((key,), "x" if SCHEMA["properties"][key].get("type") != "string" else 7))
    port = SCHEMA["properties"]["ports"]["items"]
    for key in port["required"]:
        out.append((("ports", 0, key), 7 if port["properties"][key].get("type") == "string" or
                    "enum" in port["properties"][key] else "x"))
    for key in SCHEMA["properties"]["formats"]["required"]:
        out.append((("formats", key), 7))
    for key in SCHEMA["properties"]["spec"]["required"]:
        out.append((("spec", key), 7))
    return out


def _field_name(path) -> str:
    s = ""
    for k in path:
        s += f"[{k}]" if isinstance(k, int) else (f".{k}" if s else k)
    return s


@pytest.mark.parametrize("path,wrong", _required_fields(), ids=lambda x: _field_name(x) if isinstance(x, tuple) else None)
def test_missing_or_mistyped_field_rejected_naming_it(tmp_path, fixed_manifest, path, wrong):
    field = _field_name(path)
    for mutate, what in ((lambda o: _drop(o, path), "missing"), (lambda o: _set(o, path, wrong), "is not")):
        obj = copy.deepcopy(fixed_manifest)
        mutate(obj)
        f = tmp_path / "mac.json"
        f.write_text(json.dumps(obj))
        with pytest.raises(ManifestError) as e:
            load_manifest(f)
        msg = str(e.value)
        assert "\n" not in msg and str(f) in msg and f"field {field}:" in msg and what in msg, msg


@pytest.mark.parametrize("bad", ["mac; exec -- touch X", "module", "wire", "my top", "9lives", "a$b", ""])
def test_names_reaching_tools_must_be_plain_identifiers(tmp_path, fixed_manifest, bad):
    for path in (("top",), ("ports", 2, "name")):
        obj = copy.deepcopy(fixed_manifest)
        _set(obj, path, bad)
        f = tmp_path / "mac.json"
        f.write_text(json.dumps(obj))
        with pytest.raises(ManifestError, match=re.escape(f"field {_field_name(path)}: bad name")):
            load_manifest(f)
    with pytest.raises(FormatError, match="plain Verilog identifier"):
        export.verilog(spec_of("fixed"), tmp_path / "x", bad)


def test_a_top_named_like_the_testbench_is_refused_on_read_and_on_export(tmp_path, fixed_manifest):
    obj = copy.deepcopy(fixed_manifest)
    obj["top"] = "fewbits_tb"
    f = tmp_path / "mac.json"
    f.write_text(json.dumps(obj))
    with pytest.raises(ManifestError, match="field top: bad name 'fewbits_tb': reserved for the co-simulation"):
        load_manifest(f)
    with pytest.raises(FormatError, match="reserved for the co-simulation testbench"):
        export.verilog(spec_of("fixed"), tmp_path / "x", "fewbits_tb")


def test_folder_with_injected_top_is_refused_before_any_tool(tmp_path, fixed_manifest):
    from fewbits.hw.design import load_designs

    obj = copy.deepcopy(fixed_manifest)
    obj["top"] = "mac; exec -- touch X"
    (tmp_path / "mac.json").write_text(json.dumps(obj))
    (tmp_path / "mac.v").write_text("module mac(); endmodule\n")
    for load in (load_design, load_designs):
        with pytest.raises(ManifestError, match="field top: bad name"):
            load(tmp_path)
    assert not (tmp_path / "X").exists()


def test_cross_checks(fixed_manifest):
    obj = copy.deepcopy(fixed_manifest)
    obj["rows"] = 3
    with pytest.raises(ManifestError, match="field rows"):
        from_dict(obj)
    obj = copy.deepcopy(fixed_manifest)
    obj["spec"]["a_fmt"] = "fixed:99"
    with pytest.raises(ManifestError, match="field spec: bad"):
        from_dict(obj)
    obj = copy.deepcopy(fixed_manifest)
    obj["ports"] = [p for p in obj["ports"] if p["role"] != "ovf"]
    with pytest.raises(ManifestError, match=r"field ports: no port with role\(s\) \['ovf'\]"):
        from_dict(obj)
    obj = copy.deepcopy(fixed_manifest)
    obj["manifest_version"] = 2
    with pytest.raises(ManifestError, match="field manifest_version"):
        from_dict(obj)


def test_cli_prints_one_line(tmp_path, fixed_manifest):
    from click.testing import CliRunner
    from fewbits import cli

    obj = copy.deepcopy(fixed_manifest)
    obj["latency"] = "3"
    (tmp_path / "mac.json").write_text(json.dumps(obj))
    (tmp_path / "mac.v").write_text("module mac(); endmodule\n")
    r = CliRunner().invoke(cli.main, ["synth", str(tmp_path), "-o", str(tmp_path / "o")], prog_name="fewbits")
    assert r.exit_code == 2 and "Traceback" not in r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("fewbits: error: bad manifest") and "field latency" in lines[0]


@pytest.mark.parametrize("seed", range(4), ids=lambda s: f"seed{s}")
def test_pack_unpack_round_trip(seed):
    rng = random.Random(f"pack-{seed}")
    for _ in range(50):
        w, n = rng.randint(1, 12), rng.randint(1, 9)
        signed = rng.random() < 0.5
        lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if signed else (0, (1 << w) - 1)
        codes = [rng.randint(lo, hi) for _ in range(n)]
        v = pack(codes, w)
        assert 0 <= v < 1 << (w * n)
        assert unpack(v, w, n, signed) == codes


def test_pack_layout_negative_codes():
    # element k at bits [k*w +: w], two's complement
    assert pack([-1, 0, -8, 7], 4) == 0x7_8_0_F
    assert unpack(0x7_8_0_F, 4, 4, signed=True) == [-1, 0, -8, 7]
    assert unpack(0x7_8_0_F, 4, 4) == [15, 0, 8, 7]
