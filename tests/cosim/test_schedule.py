"""schedule: every tile fed once to completion (plus aborted feeds), results due exactly latency after last."""

import numpy as np
import pytest
from fewbits.cosim import schedule
from fewbits.cosim.tiles import TileSet


def fake_tiles(rng, n, R=2, C=3):
    k = rng.integers(1, 6, size=n)
    off = np.concatenate([[0], np.cumsum(k)[:-1]])
    S = int(k.sum())
    z = np.zeros((n, R, C), dtype=np.int64)
    return TileSet(rng.integers(0, 16, (S, R)), rng.integers(0, 16, (S, C)), off, k,
                   rng.integers(0, 16, (n, C)), rng.integers(0, 4, n), z, z.astype(bool), z, z.astype(bool),
                   z.astype(bool), np.zeros(n, dtype=np.int64), np.zeros((n, 4), dtype=np.int64), [{}],
                   rng.integers(-8, 8, n))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plan(seed):
    rng = np.random.default_rng(seed)
    ts = fake_tiles(rng, 40)
    L = 3
    plan = schedule.Plan(idle_prob=0.3, reset_prob=0.3, shuffle=True, seed=seed)
    t = schedule.build(ts, L, {"a": 4, "b": 4, "bias": 4, "shift": 8, "bias_shift": 8}, plan)
    schedule.check_due(t, L)
    assert sorted(t.due_tile.tolist()) == list(range(40)) and t.aborted > 0
    valid = (t.ctrl & schedule.VALID) != 0
    for tile, cyc in zip(t.due_tile, t.due_cycle):
        last = cyc - L
        assert t.ctrl[last] & schedule.LAST and valid[last]
        # the K steps of this feed, backwards from last to its first, are the tile's operands in order
        k, off = int(ts.tile_k[tile]), int(ts.tile_off[tile])
        rows = np.nonzero(valid[: last + 1])[0][-k:]
        assert t.ctrl[rows[0]] & schedule.FIRST
        assert np.array_equal(t.a[rows], ts.steps_a[off:off + k])
        assert np.array_equal(t.b[rows], ts.steps_b[off:off + k])
        assert np.array_equal(t.bias[rows[0]], ts.bias[tile]) and t.shift[rows[0]] == ts.shift[tile]
        assert t.bias_shift[rows[0]] == ts.bias_shift[tile]
    assert (t.ctrl[-(L + 2):] == 0).all() and (t.ctrl[:2] == schedule.RST).all()


def test_back_to_back_without_idle():
    """No idle cycles, no resets: each tile's first step follows the previous tile's last step directly."""
    rng = np.random.default_rng(3)
    ts = fake_tiles(rng, 25)
    t = schedule.build(ts, 4, {"a": 4, "b": 4, "bias": 4}, schedule.Plan(seed=3))
    assert t.cycles == 2 + int(ts.tile_k.sum()) + 4 + 2
    first = np.nonzero(t.ctrl & schedule.FIRST)[0]
    last = np.nonzero(t.ctrl & schedule.LAST)[0]
    assert np.array_equal(first[1:], last[:-1] + 1)
    assert np.array_equal(t.due_cycle, last + 4)
