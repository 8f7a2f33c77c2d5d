"""parse_format / str round trips and FormatError messages."""
from __future__ import annotations

import fewbits.sim as S
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

SETTINGS = settings(derandomize=True, database=None, deadline=None, max_examples=300)
ROUNDS = [S.RNE, S.RNA, S.RTZ, S.RDN]
SPECIALS = [S.Special.IEEE, S.Special.FN, S.Special.SAT]

DOCUMENTED = {
    "fixed:8:4": S.Fixed(8, 4),
    "ufixed:8:4": S.Fixed(8, 4, signed=False),
    "fixed:8:4,round=rna,overflow=wrap": S.Fixed(8, 4, round=S.RNA, overflow=S.WRAP),
    "fixed:11:5,symmetric,round=rna": S.Fixed(11, 5, symmetric=True, round=S.RNA),
    "fixed:8:-3": S.Fixed(8, -3),
    "fixed:4:12": S.Fixed(4, 12),
    "fixed:64:0": S.Fixed(64, 0),
    "ufixed:1:0,round=rdn": S.Fixed(1, 0, signed=False, round=S.RDN),
    "dfixed:8": S.DynamicFixed(8),
    "dfixed:8:3": S.DynamicFixed(8, 3),
    "udfixed:8": S.DynamicFixed(8, signed=False),
    "dfixed:12,round=rtz,symmetric": S.DynamicFixed(12, round=S.RTZ, symmetric=True),
    "float:5:10": S.fp16,
    "float:4:3,special=fn": S.fp8_e4m3,
    "float:4:3,bias=5,subnormals=off,special=sat,round=rtz": S.Float(4, 3, bias=5, subnormals=False,
                                                                     special=S.Special.SAT, round=S.RTZ),
    "float:3:2,subnormals=on,special=ieee": S.Float(3, 2),
    "fp64": S.fp64, "fp32": S.fp32, "fp16": S.fp16, "bf16": S.bf16,
    "fp8_e5m2": S.fp8_e5m2, "fp8_e4m3": S.fp8_e4m3,
    "fp16,round=rtz": S.Float(5, 10, round=S.RTZ),
    "acc:40:8": S.Accumulator(40, 8),
    "acc:300:48,round=rna,overflow=sat": S.Accumulator(300, 48, round=S.RNA, overflow=S.SAT),
}


@pytest.mark.parametrize("text", list(DOCUMENTED))
def test_parse_documented_forms(text):
    fmt = S.parse_format(text)
    assert fmt == DOCUMENTED[text]
    assert S.parse_format(str(fmt)) == fmt
    assert S.parse_format(fmt) is fmt


def test_aliases_print_as_aliases_or_round_trip():
    for a in ["fp64", "fp32", "fp16", "bf16", "fp8_e5m2", "fp8_e4m3"]:
        f = getattr(S, a)
        assert S.parse_format(str(f)) == f


def test_paper_format():
    """The paper's "10-bit propagations with range 5" are Fixed(11, 5, symmetric, RNA)."""
    assert S.paper_format(10, 5) == S.Fixed(11, 5, symmetric=True, round=S.RNA)
    assert S.parse_format(str(S.paper_format(10, 5))) == S.paper_format(10, 5)


# ---------------------------------------------------------------- random round trips
fixed_st = st.builds(
    lambda w, f, signed, sym, r, o: S.Fixed(w, f, signed=signed, round=r, symmetric=sym and signed and w > 1,
                                            overflow=S.SAT if (sym and signed and w > 1) else o),
    st.integers(1, 64), st.integers(-40, 80), st.booleans(), st.booleans(), st.sampled_from(ROUNDS),
    st.sampled_from([S.SAT, S.WRAP]))
dfixed_st = st.builds(
    lambda w, f, signed, sym, r: S.DynamicFixed(w, f, signed=signed, round=r, symmetric=sym and signed and w > 1),
    st.integers(1, 64), st.integers(-20, 40), st.booleans(), st.booleans(), st.sampled_from(ROUNDS))
float_st = st.builds(
    lambda e, m, db, sub, sp, r: S.Float(e, m, bias=None if db is None else (1 << (e - 1)) - 1 + db,
                                         subnormals=sub, special=sp, round=r),
    st.integers(2, 10), st.integers(1, 40), st.one_of(st.none(), st.integers(-3, 3)), st.booleans(),
    st.sampled_from(SPECIALS), st.sampled_from(ROUNDS))
acc_st = st.builds(lambda w, f, r, o: S.Accumulator(w, f, round=r, overflow=o),
                   st.integers(2, 65536), st.integers(-100, 2200), st.sampled_from(ROUNDS),
                   st.sampled_from([S.SAT, S.WRAP]))


@SETTINGS
@given(st.one_of(fixed_st, dfixed_st, float_st, acc_st))
def test_str_round_trips(fmt):
    text = str(fmt)
    assert "\n" not in text and " " not in text
    back = S.parse_format(text)
    assert back == fmt and hash(back) == hash(fmt) and type(back) is type(fmt)
    assert str(back) == text


# ---------------------------------------------------------------- errors
BAD = [
    # (string, a substring the message must contain: the bad part)
    ("fixed:0:4", "0"), ("fixed:-3:4", "-3"), ("fixed:65:0", "65"), ("ufixed:0:2", "0"),
    ("dfixed:0", "0"), ("dfixed:65", "65"), ("udfixed:-1", "-1"),
    ("float:1:3", "1"), ("float:0:3", "0"), ("float:12:3", "12"), ("float:5:0", "0"), ("float:5:53", "53"),
    ("acc:1:0", "1"), ("acc:65537:0", "65537"),
    ("fixed:8:4,round=foo", "foo"), ("fixed:8:4,round=nearest", "nearest"), ("fp16,round=banker", "banker"),
    ("fixed:8:4,rounding=rne", "rounding"), ("fixed:8:4,bogus", "bogus"), ("fixed:8:4,overflow=clip", "clip"),
    ("float:5:10,special=xyz", "xyz"), ("float:5:10,subnormals=maybe", "maybe"), ("float:5:10,bias=x", "x"),
    ("float:5:10,overflow=wrap", "overflow"), ("fixed:8:4,bias=3", "bias"), ("fixed:8:4,special=fn", "special"),
    ("ufixed:8:4,symmetric", "symmetric"), ("fixed:8:4,symmetric,overflow=wrap", "symmetric"),
    ("", ""), ("garbage", "garbage"), ("fixed", "fixed"), ("fixed:8", "fixed:8"), ("fixed:8:4:2", "fixed:8:4:2"),
    ("fixed:a:b", "a"), ("fixed:8:x", "x"), ("fp17", "fp17"), ("float:5", "float:5"), ("fixed:8:4,", "fixed:8:4,"),
    ("fixed:8.5:4", "8.5"), ("int8", "int8"), ("float:e:m", "e"),
    # int() reads other scripts' digits: a fullwidth 8, an Arabic-Indic 4, a fullwidth bias
    ("fixed:\uff18:4", "\uff18"), ("fixed:8:\u0664", "\u0664"), ("float:5:10,bias=\uff11\uff15", "\uff11\uff15"),
]


@pytest.mark.parametrize("text,part", BAD, ids=[t or "<empty>" for t, _ in BAD])
def test_format_error_names_bad_part(text, part):
    with pytest.raises(S.FormatError) as e:
        S.parse_format(text)
    msg = str(e.value)
    assert isinstance(e.value, ValueError)
    assert "\n" not in msg.strip() and msg.strip()
    assert part in msg, f"message {msg!r} does not name {part!r}"
    # ... and shows what is accepted: a format form, or the accepted values of the option
    assert any(form in msg for form in ("fixed:W:F", "float:E:M", "rne", "sat", "ieee", "on", "accepted")), msg


@pytest.mark.parametrize("obj", [42, None, 3.5, ["fixed:8:4"]])
def test_non_string_is_format_error(obj):
    with pytest.raises(S.FormatError):
        S.parse_format(obj)


def test_format_error_is_value_error():
    assert issubclass(S.FormatError, ValueError)
