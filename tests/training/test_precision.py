"""Run formats: fp32 = no quantization, the paper's bit convention, group formats."""

import pytest
from fewbits.sim import RNA, DynamicFixed, Fixed, FormatError, parse_format
from fewbits.training.precision import (
    Precision,
    group_format,
    int_bits_of,
    parse_run_format,
)


def test_fp32_means_unquantized():
    assert parse_run_format("fp32") is None
    assert parse_run_format("float:8:23") is None
    assert Precision.parse("fp32", "fp32").quantized is False


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
        Precision.parse("dfixed:x", "fp32")


@pytest.mark.parametrize("int_bits", [-12, -1, 0, 3])
def test_group_format_shares_integer_bits_across_widths(int_bits):
    p = Precision.parse("dfixed:11", "dfixed:13")
    fp, fu = group_format(p.prop, int_bits), group_format(p.update, int_bits)
    assert int_bits_of(fp) == int_bits_of(fu) == int_bits
    assert fu.frac - fp.frac == 2
    assert fp.max == pytest.approx(fu.max, rel=2 ** -9)


def test_widened_only_touches_dynamic_formats():
    p = Precision.parse("dfixed:11", "fixed:16:8").widened(21)
    assert p.prop.width == 21 and p.update == Fixed(16, 8)
