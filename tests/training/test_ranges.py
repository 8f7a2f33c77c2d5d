"""The range controller: its three branches, exact narrower-range overflow, tracking, persistence."""

import pytest
import torch
from fewbits.sim import DynamicFixed
from fewbits.training.ranges import (
    FEWER,
    KEEP,
    MORE,
    RangeController,
    decide,
    int_bits_for,
)


def test_decide_three_branches():
    assert decide(2e-4, 1.0, 1e-4) == MORE
    assert decide(0.0, 5e-5, 1e-4) == FEWER
    assert decide(5e-5, 2e-4, 1e-4) == KEEP


def _observe(c, name, fmt, n, over, narrower):
    """Feed ``n`` codes of which ``over`` saturate and ``narrower`` more only fit the current range."""
    codes = torch.zeros(n, dtype=torch.int64)
    ovf = torch.zeros(n, dtype=torch.bool)
    codes[:over] = fmt.max_code
    ovf[:over] = True
    codes[over:over + narrower] = fmt.max_code // 2 + 1  # 2c > max_code: overflows one bit fewer
    c.observe(name, codes, ovf, fmt)


@pytest.mark.parametrize("over,narrower,step", [(3, 0, MORE), (0, 0, FEWER), (0, 5, KEEP)])
def test_controller_update_moves_each_group(over, narrower, step):
    c = RangeController(max_overflow=1e-4, update_every=2)
    fmt = DynamicFixed(11, 4)
    c.state("g").int_bits = 6
    _observe(c, "g", fmt, 10000, over, narrower)
    assert c.end_batch() is False
    assert c.end_batch() is True  # the second batch triggers the update
    assert c.int_bits("g") == 6 + step
    assert c.state("g").count == 0  # counters reset


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_narrower_overflow_from_codes_equals_encode_ovf_one_bit_fewer(seed):
    gen = torch.Generator().manual_seed(seed)
    fmt = DynamicFixed(9, 5, symmetric=bool(seed % 2))
    x = torch.randn(5000, generator=gen, dtype=torch.float64) * 6
    codes, ovf = fmt.encode_ovf(x)
    c = RangeController()
    c.observe("g", codes, ovf, fmt)
    _, ovf1 = fmt.with_frac(fmt.frac + 1).encode_ovf(fmt.decode(codes))
    assert c.state("g").overflow == int(ovf.sum())
    assert c.state("g").overflow_narrower == int((ovf | ovf1).sum())


@pytest.mark.parametrize("m", [1e-6, 0.3, 1.0, 1.5, 100.0])
def test_int_bits_for_is_the_fewest_that_hold_the_maximum(m):
    fmt = DynamicFixed(11)
    n = int_bits_for(m, fmt)
    assert fmt.with_frac(10 - n).max >= m
    assert fmt.with_frac(10 - n + 1).max < m


def test_first_nonzero_tensor_sets_an_unset_group():
    c = RangeController()
    fmt = DynamicFixed(11)
    assert not c.maybe_init("g", torch.zeros(3), fmt)
    assert c.maybe_init("g", torch.tensor([0.2, -0.7]), fmt)
    assert c.int_bits("g") == int_bits_for(0.7, fmt)
    assert not c.maybe_init("g", torch.tensor([50.0]), fmt)  # only the first one


def test_tracking_follows_the_data_each_batch():
    c = RangeController(update_every=1000)
    c.tracking = True
    fmt = DynamicFixed(11, 10)
    c.state("g").int_bits = 0
    codes, ovf = fmt.encode_ovf(torch.tensor([5.0]))  # saturates
    c.observe("g", codes, ovf, fmt)
    c.end_batch()
    assert c.int_bits("g") == 1
    fmt = fmt.with_frac(9)
    codes, ovf = fmt.encode_ovf(torch.tensor([0.01]))
    c.observe("g", codes, ovf, fmt)
    c.end_batch()
    assert c.int_bits("g") == int_bits_for(fmt.decode(codes).item(), fmt)


def test_state_dict_round_trip():
    c = RangeController(3e-4, 7)
    _observe(c, "a", DynamicFixed(8, 2), 100, 1, 2)
    c.end_batch()
    d = RangeController()
    d.load_state_dict(c.state_dict())
    assert d.state_dict() == c.state_dict()
