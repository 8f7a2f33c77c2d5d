"""MacSpec: frozen/hashable, JSON round trip, process-stable key, compute() == mac_reference, validation."""
from __future__ import annotations

import json
import random
import subprocess
import sys

import fewbits.sim as S
import pytest
import torch

from . import oracles as O
from .helpers import model_of

SPECS = [
    dict(a_fmt=S.Fixed(8, 4), b_fmt=S.Fixed(8, 4), out_fmt=S.Fixed(8, 4)),
    dict(a_fmt=S.Fixed(8, 4), b_fmt=S.Fixed(6, 2, signed=False), out_fmt=S.Fixed(10, 3, round=S.RNA, overflow=S.WRAP),
         rows=4, cols=8, k_max=784),
    dict(a_fmt=S.paper_format(10, 5), b_fmt=S.paper_format(12, 3), out_fmt=S.paper_format(10, 5),
         bias_fmt=S.Fixed(12, 6), rows=2, cols=3, k_max=100),
    dict(a_fmt=S.DynamicFixed(8, 3), b_fmt=S.DynamicFixed(8, 2), out_fmt=S.DynamicFixed(8, 1), k_max=64),
    dict(a_fmt=S.fp16, b_fmt=S.fp16, out_fmt=S.fp32, rows=32, cols=32),
    dict(a_fmt=S.fp8_e4m3, b_fmt=S.fp8_e5m2, out_fmt=S.bf16, bias_fmt=S.fp8_e4m3,
         acc_fmt=S.Accumulator(24, 10, round=S.RTZ, overflow=S.WRAP)),
    dict(a_fmt=S.Float(4, 3, subnormals=False, special=S.Special.SAT), b_fmt=S.fp8_e4m3,
         out_fmt=S.Float(5, 2, round=S.RDN), k_max=1),
    dict(a_fmt=S.Fixed(4, 0), b_fmt=S.Fixed(4, 0), out_fmt=S.Fixed(8, 0),
         acc_fmt=S.Accumulator(9, 0, overflow=S.WRAP), k_max=4096),
]
IDS = [f"spec{i}" for i in range(len(SPECS))]


@pytest.mark.parametrize("kw", SPECS, ids=IDS)
def test_resolution_equality_hash(kw):
    s = S.MacSpec(**kw)
    assert s == S.MacSpec(**kw) and hash(s) == hash(S.MacSpec(**kw))
    assert s.bias_fmt == kw.get("bias_fmt", kw["out_fmt"])
    if "acc_fmt" in kw:
        assert s.acc_fmt == kw["acc_fmt"]
    else:
        assert s.acc_fmt == S.default_accumulator(kw["a_fmt"], kw["b_fmt"], s.k_max, s.bias_fmt)
    # resolved and explicit spellings are the same spec
    assert s == S.MacSpec(**{**kw, "acc_fmt": s.acc_fmt, "bias_fmt": s.bias_fmt})
    with pytest.raises(Exception):
        s.rows = 3


def test_inequality():
    base = dict(a_fmt=S.Fixed(8, 4), b_fmt=S.Fixed(8, 4), out_fmt=S.Fixed(8, 4), rows=2, cols=2, k_max=16)
    variants = [dict(a_fmt=S.Fixed(8, 3)), dict(b_fmt=S.Fixed(8, 4, signed=False)), dict(out_fmt=S.Fixed(8, 4, round=S.RNA)),
                dict(bias_fmt=S.Fixed(9, 4)), dict(rows=3), dict(cols=1), dict(k_max=17),
                dict(acc_fmt=S.Accumulator(30, 8))]
    specs = {S.MacSpec(**base)} | {S.MacSpec(**{**base, **v}) for v in variants}
    assert len(specs) == 1 + len(variants)
    assert len({s.key() for s in specs}) == len(specs)


@pytest.mark.parametrize("kw", SPECS, ids=IDS)
def test_json_round_trip(kw):
    s = S.MacSpec(**kw)
    text = s.to_json()
    data = json.loads(text)  # real JSON, with the format strings readable in it
    assert str(kw["a_fmt"]) in text and str(kw["out_fmt"]) in text
    assert isinstance(data, dict)
    back = S.MacSpec.from_json(text)
    assert back == s and hash(back) == hash(s) and back.key() == s.key()
    assert S.MacSpec.from_dict(s.to_dict()) == s
    assert S.MacSpec.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert back.to_json() == text


def test_key_is_a_sha256_hex_digest():
    """SIM_API: key() is "stable sha256 hex of the canonical JSON" -- 64 lower-case hex digits."""
    for kw in SPECS:
        k = S.MacSpec(**kw).key()
        assert len(k) == 64 and k == k.lower() and int(k, 16) >= 0, k


def test_key_is_stable_across_processes(tmp_path):
    specs = [S.MacSpec(**kw) for kw in SPECS]
    keys = [s.key() for s in specs]
    assert len(set(keys)) == len(keys)
    code = ("import sys, fewbits.sim as S\n"
            "for line in sys.stdin.read().splitlines():\n"
            "    print(S.MacSpec.from_json(line).key())\n")
    for seed in ("0", "12345"):  # different string-hash seeds: the key must not use hash()
        out = subprocess.run([sys.executable, "-c", code], input="\n".join(s.to_json() for s in specs),
                             capture_output=True, text=True, check=True, cwd=tmp_path,
                             env={"PYTHONHASHSEED": seed, "PATH": "", "PYTHONDONTWRITEBYTECODE": "1"})
        assert out.stdout.split() == keys


@pytest.mark.parametrize("kw", SPECS, ids=IDS)
def test_compute_equals_mac_reference(kw):
    s = S.MacSpec(**kw)
    rng = random.Random(900 + SPECS.index(kw))  # seed 900+i for spec{i}
    K = min(s.k_max, 7)
    R, C = min(s.rows, 3), min(s.cols, 4)

    def codes(fmt, n):
        m = model_of(fmt)
        if isinstance(m, O.FixedModel):
            return [m.pattern(rng.randint(m.min_code, m.max_code)) for _ in range(n)]
        pool = m.finite_codes() if m.width <= 12 else None
        out = []
        while len(out) < n:
            c = rng.choice(pool) if pool else rng.getrandbits(m.width)
            if not (m.is_nan(c) or m.is_inf(c)):
                out.append(c)
        return out

    a = torch.tensor([codes(s.a_fmt, K) for _ in range(R)])
    b = torch.tensor([codes(s.b_fmt, C) for _ in range(K)])
    bias = torch.tensor(codes(s.bias_fmt, C))
    z, o = s.compute(a, b, bias)
    z2, o2 = S.mac_reference(a, b, s.a_fmt, s.b_fmt, s.acc_fmt, s.out_fmt, bias_codes=bias, bias_fmt=s.bias_fmt)
    assert torch.equal(z, z2) and torch.equal(o, o2)
    z, o = s.compute(a, b)
    z2, o2 = S.mac_reference(a, b, s.a_fmt, s.b_fmt, s.acc_fmt, s.out_fmt)
    assert torch.equal(z, z2) and torch.equal(o, o2)


def test_compute_shift():
    s = S.MacSpec(S.DynamicFixed(8, 3), S.DynamicFixed(8, 2), S.DynamicFixed(8), k_max=16)
    a = torch.tensor([[100, -128, 127]])
    b = torch.tensor([[3], [-7], [127]])
    for shift in (0, 2, 5, 9):
        z, o = s.compute(a, b, shift=shift)
        z2, o2 = S.mac_reference(a, b, s.a_fmt, s.b_fmt, s.acc_fmt, s.out_fmt, shift=shift)
        assert torch.equal(z, z2) and torch.equal(o, o2)


def test_compute_bias_shift():
    """The runtime bias alignment reaches mac_reference: a bias shift that moves the bias changes z."""
    s = S.MacSpec(S.DynamicFixed(8, 3), S.DynamicFixed(8, 2), S.DynamicFixed(8), bias_fmt=S.DynamicFixed(8), k_max=16)
    a = torch.tensor([[10, -12, 7]])
    b = torch.tensor([[3], [-7], [5]])
    bias = torch.tensor([-77])
    outs = set()
    for bias_shift in (0, 1, 3):
        z, o = s.compute(a, b, bias, shift=4, bias_shift=bias_shift)
        z2, o2 = S.mac_reference(a, b, s.a_fmt, s.b_fmt, s.acc_fmt, s.out_fmt, bias_codes=bias, bias_fmt=s.bias_fmt,
                                 shift=4, bias_shift=bias_shift)
        assert torch.equal(z, z2) and torch.equal(o, o2)
        outs.add(int(z[0, 0]))
    assert len(outs) == 3


@pytest.mark.parametrize("bad", [dict(rows=0), dict(rows=33), dict(cols=0), dict(cols=33), dict(k_max=0),
                                 dict(k_max=-1),
                                 dict(acc_fmt=S.Accumulator(16, 8, overflow=S.SAT), k_max=2),
                                 dict(acc_fmt=S.Accumulator(20, 8, overflow=S.SAT), k_max=1024)],
                         ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
def test_validation(bad):
    kw = dict(a_fmt=S.Fixed(8, 4), b_fmt=S.Fixed(8, 4), out_fmt=S.Fixed(8, 4), **bad)
    with pytest.raises(S.FormatError) as e:
        S.MacSpec(**kw)
    assert "\n" not in str(e.value)


def test_narrow_wrapping_accumulator_is_allowed():
    s = S.MacSpec(S.Fixed(8, 4), S.Fixed(8, 4), S.Fixed(8, 4), acc_fmt=S.Accumulator(12, 8, overflow=S.WRAP), k_max=1024)
    assert s.acc_fmt.width == 12
    # and the exact-width SAT accumulator is accepted: default_accumulator claims it is wide enough
    d = S.default_accumulator(S.Fixed(8, 4), S.Fixed(8, 4), 1024, S.Fixed(8, 4))
    assert S.MacSpec(S.Fixed(8, 4), S.Fixed(8, 4), S.Fixed(8, 4), acc_fmt=S.Accumulator(d.width, d.frac, overflow=S.SAT),
                     k_max=1024).acc_fmt.width == d.width


def test_dynamic_flag():
    assert S.MacSpec(S.DynamicFixed(8, 2), S.Fixed(8, 4), S.Fixed(8, 4)).dynamic
    assert S.MacSpec(S.Fixed(8, 2), S.Fixed(8, 4), S.DynamicFixed(8)).dynamic
    assert not S.MacSpec(S.Fixed(8, 2), S.Fixed(8, 4), S.Fixed(8, 4)).dynamic
