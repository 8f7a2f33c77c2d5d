"""RunSpec: fp32 = no quantization, the paper's bit convention, group formats, the three matmuls'
MacSpecs, JSON round trip and a key that is the same in every process."""

import json
import subprocess
import sys

import pytest
from fewbits.sim import RNA, DynamicFixed, Fixed, FormatError, MacSpec, fp32, parse_format
from fewbits.sim.run import MATMULS, RunSpec, frac_for_int_bits, group_format, int_bits_of
from fewbits.sim.run import run_format as parse_run_format
from hypothesis import given, settings
from hypothesis import strategies as st


def test_fp32_means_unquantized():
    assert parse_run_format("fp32") is None
    assert parse_run_format("float:8:23") is None
    assert RunSpec.parse("fp32", "fp32").quantized is False


def test_plain_formats_pass_through():
    assert parse_run_format("fixed:16:8") == Fixed(16, 8)
    assert parse_run_format("dfixed:11") == DynamicFixed(11)
    assert parse_run_format("fp16") == parse_format("fp16")


def test_paper_bits_add_the_sign_and_use_symmetric_rna():
    assert parse_run_format("fixed:20:5", paper_bits=True) == Fixed(21, 5, symmetric=True, round=RNA)
    assert parse_run_format("dfixed:10", paper_bits=True) == DynamicFixed(11, symmetric=True, round=RNA)
    assert parse_run_format("fp16", paper_bits=True) == parse_format("fp16")


def test_bad_format_raises_format_error():
    with pytest.raises(FormatError):
        RunSpec.parse("dfixed:x", "fp32")


@pytest.mark.parametrize("int_bits", [-12, -1, 0, 3])
def test_group_format_shares_integer_bits_across_widths(int_bits):
    p = RunSpec.parse("dfixed:11", "dfixed:13")
    fp, fu = group_format(p.prop, int_bits), group_format(p.update, int_bits)
    assert int_bits_of(fp) == int_bits_of(fu) == int_bits
    assert fu.frac - fp.frac == 2
    assert fp.max == pytest.approx(fu.max, rel=2 ** -9)


def test_widened_only_touches_dynamic_formats():
    p = RunSpec.parse("dfixed:11", "fixed:16:8").widened(21)
    assert p.prop.width == 21 and p.update == Fixed(16, 8)


def test_paper_bits_resolve_dfixed_10_to_width_11_symmetric_rna():
    s = RunSpec.parse("dfixed:10", "dfixed:12", paper_bits=True)
    assert s.prop == DynamicFixed(11, symmetric=True, round=RNA)
    assert s.update == DynamicFixed(13, symmetric=True, round=RNA)
    assert (s.prop_paper_bits, s.update_paper_bits) == (10, 12)  # displayed: no sign bit
    plain = RunSpec.parse("dfixed:10", "dfixed:12")
    assert (plain.prop.width, plain.prop_paper_bits) == (10, 9)
    assert RunSpec.parse("fp16", "fp16", paper_bits=True).prop_paper_bits == 16
    assert RunSpec.parse().prop_paper_bits == 32


@pytest.mark.parametrize("width,int_bits,paper_bits,frac", [(20, 5, True, 15), (20, 5, False, 14), (8, 3, False, 4)])
def test_frac_for_int_bits_counts_the_sign_once(width, int_bits, paper_bits, frac):
    assert frac_for_int_bits(width, int_bits, paper_bits) == frac
    assert int_bits_of(run_format_fixed(width, frac, paper_bits)) == int_bits


def run_format_fixed(width, frac, paper_bits):
    return parse_run_format(f"fixed:{width}:{frac}", paper_bits)


@pytest.mark.parametrize("kwargs", [
    dict(prop="fixed:8"), dict(prop="acc:16:4"), dict(max_overflow=2.0), dict(range_every=0),
    dict(range_warmup=-1), dict(rows=0), dict(k_max=True)])
def test_bad_input_is_one_line_format_error(kwargs):
    with pytest.raises(FormatError) as e:
        RunSpec(**kwargs)
    assert "\n" not in str(e.value) and str(e.value).startswith("bad ")


@pytest.mark.parametrize("text", ["{", "[]", '{"prop": "fp32", "width": 3}', '{"prop": "fixed:x:1"}'])
def test_bad_json_is_one_line_format_error(text):
    with pytest.raises(FormatError) as e:
        RunSpec.from_json(text)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("prop,fmt", [("fixed:12:8", Fixed(12, 8)), ("dfixed:10", DynamicFixed(10)),
                                      ("fp16", parse_format("fp16")), ("fp32", fp32)])
def test_the_three_matmuls_multiply_in_the_propagation_format(prop, fmt):
    s = RunSpec.parse(prop, "fp32", rows=2, cols=3, k_max=64)
    for kind in MATMULS:
        m = s.mac(kind)
        assert isinstance(m, MacSpec)
        assert (m.a_fmt, m.b_fmt, m.out_fmt, m.bias_fmt) == (fmt, fmt, fmt, fmt)
        assert (m.rows, m.cols, m.k_max) == (2, 3, 64)
    with pytest.raises(FormatError):
        s.mac("backward")


_FORMATS = st.one_of(
    st.just("fp32"), st.sampled_from(["fp16", "bf16", "fp8_e5m2", "fp8_e4m3", "float:5:4,round=rna"]),
    st.builds(lambda w, f, r, sym: f"fixed:{w}:{f},round={r}" + (",symmetric" if sym else ""),
              st.integers(2, 40), st.integers(-8, 48), st.sampled_from(["rne", "rna", "rtz", "rdn"]), st.booleans()),
    st.builds(lambda w, f: f"dfixed:{w}:{f}", st.integers(2, 40), st.integers(-8, 48)))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(prop=_FORMATS, update=_FORMATS, paper=st.booleans(), mo=st.floats(0, 1),
       every=st.one_of(st.none(), st.integers(1, 10**6)), warm=st.integers(0, 5), rows=st.integers(1, 32))
def test_json_round_trip_is_exact(prop, update, paper, mo, every, warm, rows):
    s = RunSpec.parse(prop, update, paper, max_overflow=mo, range_every=every, range_warmup=warm, rows=rows)
    back = RunSpec.from_json(s.to_json())
    assert back == s and back.to_json() == s.to_json() and back.key() == s.key()
    assert RunSpec.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_key_is_the_same_in_another_process():
    s = RunSpec.parse("dfixed:10", "dfixed:12", paper_bits=True, max_overflow=1e-3, range_every=7, k_max=256)
    code = ("from fewbits.sim.run import RunSpec; import sys; "
            "print(RunSpec.from_json(sys.argv[1]).key())")
    out = subprocess.run([sys.executable, "-c", code, s.to_json()], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == s.key()
    assert s.key() != RunSpec.parse("dfixed:10", "dfixed:12", max_overflow=1e-3, range_every=7, k_max=256).key()
