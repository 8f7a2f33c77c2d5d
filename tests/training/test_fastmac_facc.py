"""The float-accumulator fast path (``fastmac.float_acc_sums``) == ``fewbits.sim.mac_reference``, codes
and flags, and the trainer's matmuls use the run's accumulator (DESIGN.md, the arithmetic contract)."""

import math

import pytest
import torch
from fewbits.sim import bf16, fp8_e4m3, fp16, fp32, mac_reference, parse_format
from fewbits.sim.accumulator import as_accumulator
from fewbits.sim.run import RunSpec
from fewbits.training import fastmac
from fewbits.training.qcore import QT, QuantState


def _acc(text):
    return as_accumulator(parse_format(text))


def _qt(codes, fmt):
    return QT(fmt.decode(codes), codes, fmt)


def _codes(fmt, shape, gen, spread=True):
    """Finite codes of a float format: random, with a share of zeros, ones and the largest values."""
    vals = torch.randn(shape, generator=gen, dtype=torch.float64) * torch.exp2(
        torch.randint(-6, 7, shape, generator=gen).to(torch.float64) if spread else torch.zeros(shape))
    pick = torch.randint(0, 10, shape, generator=gen)
    vals = torch.where(pick == 0, torch.zeros(shape, dtype=torch.float64), vals)
    vals = torch.where(pick == 1, torch.full(shape, fmt.max, dtype=torch.float64) * torch.sign(vals), vals)
    return fmt.encode(vals)


def _fast(a_codes, b_codes, fmt_a, fmt_b, acc, bias_codes=None, bias_fmt=None):
    a, b = _qt(a_codes, fmt_a), _qt(b_codes, fmt_b)
    bias = None if bias_codes is None else _qt(bias_codes.reshape(1, -1), bias_fmt)
    assert fastmac.float_acc_applies(a, b, bias, acc)
    return fastmac.float_acc_sums(a, b, bias, acc)


def _check(a_codes, b_codes, fmt_a, fmt_b, acc, bias_codes=None, bias_fmt=None):
    s = _fast(a_codes, b_codes, fmt_a, fmt_b, acc, bias_codes, bias_fmt)
    z, ovf = mac_reference(a_codes, b_codes, fmt_a, fmt_b, acc, acc.fmt, bias_codes, bias_fmt)
    got = acc.fmt.encode(s)
    assert torch.equal(got, z)  # codes: -0 and +0 differ
    return s


@pytest.mark.parametrize("seed", [31, 32])
@pytest.mark.parametrize("acc_text", ["fp32", "fp32,chunk=2", "fp32,chunk=3", "bf16,chunk=16", "fp16",
                                      "float:8:10,chunk=4", "float:8:10,round=rtz", "float:8:10,round=rna,chunk=5",
                                      "float:6:7,round=rdn,chunk=2", "float:4:3,special=fn", "fp32,chunk=40"])
@pytest.mark.parametrize("ops", ["fp8_e4m3", "fp16", "bf16"])
def test_float_acc_sums_equal_mac_reference(ops, acc_text, seed):
    """Random operands with zeros and maxima, a bias, K = 40 (a chunk not dividing it and a chunk of all K)."""
    gen = torch.Generator().manual_seed(seed)
    fmt = {"fp8_e4m3": fp8_e4m3, "fp16": fp16, "bf16": bf16}[ops]
    acc = _acc(acc_text)
    a, b = _codes(fmt, (7, 40), gen), _codes(fmt, (40, 9), gen)
    _check(a, b, fmt, fmt, acc)
    _check(a, b, fmt, fmt, acc, _codes(fmt, (9,), gen), fmt)


@pytest.mark.parametrize("seed", [41])
def test_cancellation_and_ties_equal_mac_reference(seed):
    """Chunks that cancel to exactly zero (+0, never -0) and sums that tie in the accumulator."""
    gen = torch.Generator().manual_seed(seed)
    x = fp16.decode(_codes(fp16, (5, 8), gen))
    a = torch.cat([x, x], dim=1)  # a @ [b; -b] cancels exactly
    b = fp16.decode(_codes(fp16, (8, 6), gen))
    bb = torch.cat([b, -b], dim=0)
    for acc in ("float:5:3", "float:5:3,chunk=16", "float:5:3,chunk=3,round=rdn", "float:5:3,round=rtz"):
        acc = _acc(acc)
        s = _check(fp16.encode(a), fp16.encode(bb), fp16, fp16, acc)
        if acc.chunk == 16:
            assert bool((s == 0).all()) and not bool(torch.signbit(s).any())
    # 1 + 2**-4: a tie halfway between two float:5:3 values (RNE to 1, RNA to 1.125)
    a = fp16.encode(torch.tensor([[1.0, 2.0 ** -4, 2.0 ** -4, 2.0 ** -4]], dtype=torch.float64))
    b = fp16.encode(torch.ones((4, 1), dtype=torch.float64))
    for rnd in ("rne", "rna", "rtz", "rdn"):
        _check(a, b, fp16, fp16, _acc(f"float:5:3,round={rnd}"))


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("acc_text", ["fp32", "fp32,chunk=2"])
def test_double_rounding_case_exists_and_fast_path_is_exact(acc_text, sign):
    """s + x*y rounded to float64 lands on an fp32 tie (RNE then goes to even); one rounding of the
    exact sum does not.  Chunk 1: s is the running sum of the first product; chunk 2: one chunk."""
    import numpy as np

    s, x, y = 2.0 ** 30 + 2.0 ** 7, 2.0 ** 6 * (1 + 2.0 ** -15), 1 - 2.0 ** -15  # x*y = 2**6 - 2**-24
    twice = float(np.float32(np.float64(s) + np.float64(x) * np.float64(y)))
    assert twice == s + 2.0 ** 7  # the trap exists: float64 rounds onto the tie s + 2**6, RNE goes even
    a = fp32.encode(torch.tensor([[sign * s, sign * x]], dtype=torch.float64))
    b = fp32.encode(torch.tensor([[1.0], [y]], dtype=torch.float64))
    got = _check(a, b, fp32, fp32, _acc(acc_text))
    assert got.item() == sign * s  # the exact sum is just below the tie: one rounding keeps s


def test_inexact_error_sum_is_recomputed():
    """A chunk whose TwoSum errors (-2**-90, then 2**-10) do not sum exactly in float64: the element
    must be recomputed.  Summed naively, the running sum lands on the fp32 tie 2**60 + 2**37 + 2**36
    and RNE goes up; the exact sum is 2**-90 below it and rounds down."""
    a = fp32.encode(torch.tensor([[2.0 ** 60 + 2.0 ** 37, 2.0 ** 36, -2.0 ** -90, 2.0 ** -10, -2.0 ** -10]],
                                 dtype=torch.float64))
    b = fp32.encode(torch.ones((5, 1), dtype=torch.float64))
    got = _check(a, b, fp32, fp32, _acc("fp32,chunk=5"))
    assert got.item() == 2.0 ** 60 + 2.0 ** 37


def test_specials_go_to_the_reference():
    """NaN and infinite operands, and an IEEE accumulator overflowing to inf mid-tile."""
    a = fp16.encode(torch.tensor([[1.0, math.nan, 2.0], [65504.0, 65504.0, -65504.0], [math.inf, 1.0, 1.0]],
                                 dtype=torch.float64))
    b = fp16.encode(torch.tensor([[65504.0], [1.0], [65504.0]], dtype=torch.float64))
    for acc in ("fp16", "float:5:10,special=fn", "fp32", "float:5:10,chunk=2"):
        _check(a, b, fp16, fp16, _acc(acc))


@pytest.mark.parametrize("acc", ["fp32", "bf16,chunk=4"])
def test_quant_state_uses_the_run_accumulator(acc):
    """QuantState.matmul with a float-accumulator RunSpec: codes and flags == mac_reference with it."""
    gen = torch.Generator().manual_seed(51)
    qs = QuantState(RunSpec.parse("fp16", "fp16", acc=acc))
    seen = []
    qs.mac_hooks.append(lambda tag, a, b, bias, out, ovf: seen.append((out.codes, ovf)))
    a, b, bias = _codes(fp16, (6, 50), gen), _codes(fp16, (50, 5), gen), _codes(fp16, (5,), gen)
    qs.matmul("L0:forward", _qt(a, fp16), _qt(b, fp16), "L0.z", bias=_qt(bias.reshape(1, -1), fp16))
    z, ovf = mac_reference(a, b, fp16, fp16, acc, fp16, bias, fp16)
    assert torch.equal(seen[0][0], z) and torch.equal(seen[0][1].bool(), ovf.bool())
    exact, _ = mac_reference(a, b, fp16, fp16, None, fp16, bias, fp16)
    assert not torch.equal(exact, z) or acc == "fp32"  # bf16 rounding is visible on these sums


def test_run_spec_accumulator():
    """The spec names its accumulator (the exact one keeps the old keys); bad ones are one line."""
    from fewbits.sim import FormatError

    assert "acc" not in RunSpec.parse("fp16", "fp16").to_dict()
    r = RunSpec.parse("fp16", "fp16", acc="fp32,chunk=4")
    assert r.to_dict()["acc"] == "fp32,chunk=4" and RunSpec.from_dict(r.to_dict()) == r
    assert str(r.mac("weight_grad").acc_fmt) == "fp32,chunk=4"
    for bad in ("acc:40:20", "float:8:10,chunk=0"):
        with pytest.raises(FormatError):
            RunSpec.parse("fp16", "fp16", acc=bad)
    with pytest.raises(FormatError, match="dynamic fixed point"):
        RunSpec.parse("dfixed:10", "dfixed:12", acc="fp32")


def test_capture_carries_the_run_accumulator(tmp_path):
    """A run with --acc fp32 captures its matmuls with that accumulator, and they replay bit-exact."""
    from fewbits.sim.capture import read_capture, replay
    from fewbits.training.trainer import TrainConfig, Trainer

    cfg = TrainConfig(dataset="digits", net="mlp-small", prop="fp16", update="fp16", acc="bf16,chunk=4", epochs=1,
                      capture=("L0",), capture_step=0, limit_train=100, seed=61)
    path = Trainer(cfg, tmp_path, progress=False).run_until_captured()
    cap = read_capture(path)
    assert cap.matmuls and all(str(m.acc_fmt) == "bf16,chunk=4" for m in cap.matmuls)
    assert all(replay(path).values())
