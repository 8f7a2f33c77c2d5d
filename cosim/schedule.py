"""Tiles -> a cycle-by-cycle stimulus table, and the cycle at which each tile's result is due.

The same table drives the design from the stimulus file (stream mode) or from
cocotb one cycle at a time (port mode).  Between K steps there may be idle
cycles (``in_valid`` low, every other input random: the design must ignore
them); bias, shift and bias shift are random except on the ``in_first`` step
(they are sampled only there); a reset may cut a tile short, after which that tile is
fed again from its first step and must come out right.
"""

from __future__ import annotations

import dataclasses

import numpy as np

RST, VALID, FIRST, LAST = 1, 2, 4, 8


@dataclasses.dataclass
class Plan:
    """How to interleave tiles: idle-cycle probability/length, reset probability, order."""

    idle_prob: float = 0.0
    idle_max: int = 3
    reset_prob: float = 0.0
    shuffle: bool = False
    garbage: bool = True  # random data on idle cycles / non-first bias and shift
    seed: int = 0
    lead_reset: int = 2

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Table:
    """One row per cycle: control bits, and per element the code on each input port."""

    ctrl: np.ndarray  # (T,) RST|VALID|FIRST|LAST
    a: np.ndarray  # (T, R)
    b: np.ndarray  # (T, C)
    bias: np.ndarray  # (T, C)
    shift: np.ndarray  # (T,)
    due_tile: np.ndarray  # (E,) tile index of each expected result, in order
    due_cycle: np.ndarray  # (E,) cycle its out_valid must be high
    aborted: int = 0  # tiles cut short by a reset (and fed again)
    bias_shift: np.ndarray | None = None  # (T,) in_bias_shift

    @property
    def cycles(self) -> int:
        return len(self.ctrl)


def _rand_codes(rng, shape, width: int) -> np.ndarray:
    return rng.integers(0, 1 << width, size=shape, dtype=np.int64) if width < 63 else \
        rng.integers(0, 1 << 62, size=shape, dtype=np.int64)


def build(ts, latency: int, widths: dict, plan: Plan) -> Table:
    """The stimulus table for every tile of ``ts``; ``widths``: element widths of a, b, bias, shift, bias_shift."""
    rng = np.random.default_rng(plan.seed)
    n = ts.n
    order = rng.permutation(n) if plan.shuffle else np.arange(n)
    R, C = ts.steps_a.shape[1], ts.steps_b.shape[1]
    # feeds: (tile, steps fed, aborted?) ; idle cycles before each step
    rows_step, rows_tile, rows_ctrl = [], [], []
    due_tile, due_cycle = [], []
    t = 0

    def emit(step, tile_idx, ctrl):
        nonlocal t
        rows_step.append(step)
        rows_tile.append(tile_idx)
        rows_ctrl.append(ctrl)
        t += len(ctrl)

    emit(np.full(plan.lead_reset, -1), np.full(plan.lead_reset, -1), np.full(plan.lead_reset, RST))
    aborted = 0
    for ti in order:
        k = int(ts.tile_k[ti])
        off = int(ts.tile_off[ti])
        feeds = [k]
        if plan.reset_prob and rng.random() < plan.reset_prob:
            feeds = [int(rng.integers(1, k + 1)) if k > 1 else 1, k]
            aborted += 1
        for fi, steps in enumerate(feeds):
            cut = fi < len(feeds) - 1
            if cut:  # let the previous result leave the pipeline before this reset
                emit(np.full(latency, -1), np.full(latency, -1), np.zeros(latency, dtype=np.int64))
            if plan.idle_prob:
                idle = np.where(rng.random(steps) < plan.idle_prob, rng.integers(1, plan.idle_max + 1, steps), 0)
            else:
                idle = np.zeros(steps, dtype=np.int64)
            L = int(idle.sum()) + steps
            pos = np.cumsum(idle + 1) - 1  # row of each K step within the feed
            step = np.full(L, -1)
            step[pos] = off + np.arange(steps)
            tl = np.full(L, ti)
            ctrl = np.zeros(L, dtype=np.int64)
            ctrl[pos] = VALID
            ctrl[pos[0]] |= FIRST
            if not cut:
                ctrl[pos[-1]] |= LAST
            if plan.garbage:
                idle_rows = step < 0
                ctrl[idle_rows] |= rng.integers(0, 4, int(idle_rows.sum())) * FIRST  # FIRST|LAST noise
            start = t
            emit(step, tl, ctrl)
            if cut:
                nr = int(rng.integers(1, 3))
                emit(np.full(nr, -1), np.full(nr, -1), np.full(nr, RST))
            else:
                due_tile.append(ti)
                due_cycle.append(start + int(pos[-1]) + latency)
    tail = latency + 2
    emit(np.full(tail, -1), np.full(tail, -1), np.zeros(tail, dtype=np.int64))
    step = np.concatenate(rows_step)
    tile_idx = np.concatenate(rows_tile)
    ctrl = np.concatenate(rows_ctrl).astype(np.int64)
    T = len(ctrl)
    has = step >= 0
    a = _rand_codes(rng, (T, R), widths["a"]) if plan.garbage else np.zeros((T, R), dtype=np.int64)
    b = _rand_codes(rng, (T, C), widths["b"]) if plan.garbage else np.zeros((T, C), dtype=np.int64)
    a[has] = ts.steps_a[step[has]]
    b[has] = ts.steps_b[step[has]]
    first = (ctrl & FIRST).astype(bool) & has
    bias = _rand_codes(rng, (T, C), widths["bias"]) if plan.garbage else np.zeros((T, C), dtype=np.int64)
    sw = widths.get("shift") or 1
    shift = _rand_codes(rng, T, sw) if plan.garbage else np.zeros(T, dtype=np.int64)
    bw = widths.get("bias_shift") or 1
    bias_shift = _rand_codes(rng, T, bw) if plan.garbage else np.zeros(T, dtype=np.int64)
    bias[first] = ts.bias[tile_idx[first]]
    shift[first] = ts.shift[tile_idx[first]]
    bias_shift[first] = ts.bias_shift[tile_idx[first]]
    if not plan.garbage:
        # hold bias and shifts over the whole feed (what a simple host would do)
        live = tile_idx >= 0
        bias[live] = ts.bias[tile_idx[live]]
        shift[live] = ts.shift[tile_idx[live]]
        bias_shift[live] = ts.bias_shift[tile_idx[live]]
    due_tile, due_cycle = np.array(due_tile, dtype=np.int64), np.array(due_cycle, dtype=np.int64)
    return Table(ctrl, a, b, bias, shift, due_tile, due_cycle, aborted, bias_shift)


def check_due(table: Table, latency: int) -> None:
    """Sanity of the plan itself: no reset between a due tile's last step and its result."""
    rst = np.concatenate([[0], np.cumsum((table.ctrl & RST) != 0)])
    lo = table.due_cycle - latency
    bad = rst[table.due_cycle] - rst[lo] != 0
    if bad.any():
        raise AssertionError(f"plan error: reset inside the latency window of {int(bad.sum())} tiles")
