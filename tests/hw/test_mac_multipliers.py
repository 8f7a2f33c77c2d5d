"""MAC arrays with generated multipliers (MacSpec.multiplier) are bit-exact against mac_reference;
the default spec serializes exactly as before."""

import random

import pytest
from fewbits.hw.cases import random_tiles
from fewbits.hw.mac import MacArray
from fewbits.sim import FormatError, Fixed, MacSpec, Rounding

from .test_mac import run_and_check


@pytest.mark.parametrize("arch", ["booth", "dadda"])
@pytest.mark.parametrize("seed", [0, 1])
def test_array_bit_exact(arch, seed):
    rng = random.Random(seed)
    a = Fixed(rng.choice([5, 8]), 3, signed=rng.random() < 0.7)
    b = Fixed(rng.choice([4, 7]), 2, signed=rng.random() < 0.7)
    spec = MacSpec(a, b, Fixed(9, 4, round=Rounding.RNE), rows=2, cols=2, k_max=4, multiplier=arch)
    run_and_check(MacArray(2, 2, spec=spec), spec, random_tiles(spec, rng, 6))


def test_spec_dict_default_unchanged():
    spec = MacSpec(Fixed(4, 1), Fixed(4, 1), Fixed(6, 2))
    assert "multiplier" not in spec.to_dict()
    booth = MacSpec(Fixed(4, 1), Fixed(4, 1), Fixed(6, 2), multiplier="booth")
    assert booth.to_dict()["multiplier"] == "booth"
    assert MacSpec.from_json(booth.to_json()) == booth
    with pytest.raises(FormatError, match="accepted yosys, booth, dadda"):
        MacSpec(Fixed(4, 1), Fixed(4, 1), Fixed(6, 2), multiplier="array")


@pytest.mark.parametrize("arch,mark", [("booth", "booth0_neg"), ("dadda", "tree_sum")])
def test_spec_multiplier_reaches_the_pe(arch, mark):
    from amaranth.back import rtlil
    from fewbits.hw.mac import MacUnit

    spec = MacSpec(Fixed(4, 1), Fixed(4, 1), Fixed(6, 2), multiplier=arch)
    assert mark in rtlil.convert(MacUnit(spec), name="pe")
    assert mark not in rtlil.convert(MacUnit(MacSpec(Fixed(4, 1), Fixed(4, 1), Fixed(6, 2))), name="pe")
