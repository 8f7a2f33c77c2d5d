"""Yosys proofs that the generated Requantizer and MacUnit equal the naive contract references, for all inputs."""

import pytest
from fewbits.hw.eda.formal import (
    FormalError,
    RefDynRequantizer,
    RefMacUnit,
    RefRequantizer,
    prove_mac_unit,
    prove_requantizer,
)
from fewbits.hw.mac import MacUnit
from fewbits.hw.requant import Requantizer
from fewbits.sim import Accumulator, DynamicFixed, Fixed, MacSpec, Overflow, Rounding

REQUANT = [
    (Accumulator(10, 4), dict(width=5, frac=1)),             # shift 3
    (Accumulator(9, 6), dict(width=4, frac=0, signed=False)),  # shift 6, unsigned
    (Accumulator(8, 1), dict(width=6, frac=3)),              # shift -2 (left, saturating)
    (Accumulator(7, 9), dict(width=3, frac=0)),              # shift 9 > width
]


@pytest.mark.parametrize("ovf", list(Overflow), ids=str)
@pytest.mark.parametrize("mode", list(Rounding), ids=str)
@pytest.mark.parametrize("acc,out", REQUANT, ids=str)
def test_requantizer_equivalent(tmp_path, acc, out, mode, ovf):
    out = Fixed(round=mode, overflow=ovf, **out)
    prove_requantizer(Requantizer(acc, out), RefRequantizer(acc, out), tmp_path)


def prove_dynamic(tmp_path, mode, ovf):
    acc, out = Accumulator(6, 0), DynamicFixed(4, round=mode, overflow=ovf)
    gate = Requantizer(acc, out, dynamic=True)
    prove_requantizer(gate, RefDynRequantizer(acc, out, gate.shift_width), tmp_path)


def test_runtime_shift_requantizer_equivalent(tmp_path):
    """Every value of the signed runtime shift, each compared with the static reference for it."""
    prove_dynamic(tmp_path, Rounding.RNE, Overflow.SAT)


@pytest.mark.slow
@pytest.mark.parametrize("ovf", list(Overflow), ids=str)
@pytest.mark.parametrize("mode", list(Rounding), ids=str)
def test_runtime_shift_requantizer_equivalent_all_modes(tmp_path, mode, ovf):
    prove_dynamic(tmp_path, mode, ovf)


MAC = [
    MacSpec(Fixed(3, 1), Fixed(3, 1), Fixed(4, 1), k_max=4),
    MacSpec(Fixed(4, 2, signed=False), Fixed(3, 0), Fixed(3, 0, round=Rounding.RNA, overflow=Overflow.WRAP),
            bias_fmt=Fixed(3, 1), k_max=3),
    MacSpec(Fixed(3, 0), Fixed(2, 1, signed=False), Fixed(4, 0, round=Rounding.RTZ, symmetric=True), k_max=2),
    MacSpec(Fixed(2, 0), Fixed(3, 2), Fixed(3, 1, round=Rounding.RDN), k_max=5),
]


@pytest.mark.parametrize("spec", MAC, ids=lambda s: f"{s.a_fmt}x{s.b_fmt}->{s.out_fmt}")
def test_mac_unit_equivalent(tmp_path, spec):
    prove_mac_unit(MacUnit(spec), RefMacUnit(spec), tmp_path)


def test_proofs_can_fail(tmp_path):
    """A reference with another rounding mode must not be proven equal (the check is not vacuous)."""
    acc = Accumulator(10, 4)
    with pytest.raises(FormalError):
        prove_requantizer(Requantizer(acc, Fixed(5, 1, round=Rounding.RNE)),
                          RefRequantizer(acc, Fixed(5, 1, round=Rounding.RNA)), tmp_path / "rq")
    spec = MAC[0]
    other = MacSpec(spec.a_fmt, spec.b_fmt, Fixed(4, 1, round=Rounding.RTZ), k_max=4)
    with pytest.raises(FormalError):
        prove_mac_unit(MacUnit(spec), RefMacUnit(other), tmp_path / "mac")
