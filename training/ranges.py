"""The dynamic fixed point range controller (DESIGN.md, after the paper's ``new_range``).

Each tensor group keeps a number of integer bits.  While training, every
quantization of the group adds its element count, its overflow count at the
current range and its overflow count at one integer bit fewer.  Every
``update_every`` batches the controller moves each group:

- overflow rate above ``max_overflow`` -> one more integer bit;
- else, if one integer bit fewer would also stay at or under it -> one fewer;
- else keep.

A group that has never seen a non-zero value is *unset*: its first non-zero
tensor sets the range to the fewest integer bits that hold that tensor's
largest magnitude.  While ``tracking`` (the trainer's first epoch), ranges
follow the data every batch instead: one more integer bit after any overflow,
else the fewest that hold the batch's largest magnitude -- parameters that
start at zero (biases, the softmax weights) grow quickly at first.  So short
runs need no warm-up; the paper's high-precision warm-up epochs are available
too.
"""

from __future__ import annotations

import dataclasses
import math

import torch

DEFAULT_INT_BITS = 0
MORE, FEWER, KEEP = 1, -1, 0


def decide(rate: float, rate_narrower: float, max_overflow: float) -> int:
    """The controller's three branches: +1 integer bit, -1, or 0."""
    if rate > max_overflow:
        return MORE
    if rate_narrower <= max_overflow:
        return FEWER
    return KEEP


def int_bits_for(max_abs: float, fmt) -> int:
    """Fewest integer bits whose range (at ``fmt``'s width) holds ``max_abs`` without saturating."""
    return _int_bits_for(max_abs, fmt.width - (1 if fmt.signed else 0))


def _int_bits_for(max_abs: float, mag: int) -> int:
    top = (1 << mag) - 1
    # smallest n with max_abs <= top * 2**(n - mag)
    n = math.ceil(math.log2(max_abs / top)) + mag if max_abs > 0 else DEFAULT_INT_BITS
    while max_abs > math.ldexp(top, n - mag):
        n += 1
    while n > -4096 and max_abs <= math.ldexp(top, n - 1 - mag):
        n -= 1
    return n


@dataclasses.dataclass
class GroupState:
    int_bits: int = DEFAULT_INT_BITS
    set: bool = False
    count: int = 0
    overflow: int = 0
    overflow_narrower: int = 0
    moves: int = 0  # number of range changes (for reports)
    track_max: float = 0.0  # largest magnitude since the last batch (tracking)
    track_ovf: bool = False
    track_mag: int = 0  # magnitude bits of the format seen while tracking (0 = not seen)


class RangeController:
    """Per-group ranges of a dynamic fixed point run, and their overflow statistics."""

    def __init__(self, max_overflow: float = 1e-4, update_every: int = 100):
        self.max_overflow = float(max_overflow)
        self.update_every = int(update_every)
        self.groups: dict[str, GroupState] = {}
        self.batches = 0
        self.epoch_count = 0
        self.epoch_overflow = 0
        self.tracking = False

    def state(self, name: str) -> GroupState:
        g = self.groups.get(name)
        if g is None:
            g = self.groups[name] = GroupState()
        return g

    def int_bits(self, name: str) -> int:
        return self.state(name).int_bits

    def maybe_init(self, name: str, x: torch.Tensor, fmt) -> bool:
        """Set an unset group's range from its first non-zero tensor; True if it changed."""
        g = self.state(name)
        if g.set:
            return False
        m = float(x.detach().abs().max()) if x.numel() else 0.0
        if not math.isfinite(m) or m == 0.0:
            return False
        g.int_bits = int_bits_for(m, fmt)
        g.set = True
        return True

    def observe(self, name: str, codes: torch.Tensor, ovf: torch.Tensor, fmt) -> None:
        """Count one quantization of ``name``: ``codes``/``ovf`` from ``fmt.encode_ovf`` (or a MAC).

        The overflow at one integer bit fewer is exact from the codes: a value
        ``c * 2**-f`` is code ``2c`` at ``frac = f + 1``, which overflows iff
        ``2c`` leaves the code range (or ``c`` already saturated).
        """
        n = codes.numel()
        o = int(ovf.sum())
        narrower, max_abs = o, 0.0
        if fmt is not None and fmt.kind == "dfixed":
            if n and self.tracking:
                max_abs = math.ldexp(float(codes.abs().max()), -fmt.frac)
            c2 = codes * 2
            narrower = int((ovf | (c2 > fmt.max_code) | (c2 < fmt.min_code)).sum())
        self.observe_counts(name, n, o, narrower, max_abs, fmt)

    def observe_counts(self, name: str, n: int, overflow: int, narrower: int, max_abs: float, fmt) -> None:
        """Count one quantization of ``name`` from its totals: ``n`` elements, ``overflow`` of them
        saturated, ``narrower`` would saturate at one integer bit fewer, ``max_abs`` the largest
        magnitude after saturation (``fewbits.training.fastq`` computes these without codes)."""
        g = self.state(name)
        g.count += n
        g.overflow += overflow
        self.epoch_count += n
        self.epoch_overflow += overflow
        if fmt is not None and fmt.kind == "dfixed":
            if self.tracking:
                g.track_ovf = g.track_ovf or overflow > 0
                if n:
                    g.track_max = max(g.track_max, max_abs)
                g.track_mag = fmt.width - (1 if fmt.signed else 0)
            g.overflow_narrower += narrower

    def end_batch(self) -> bool:
        """Call after every training batch; applies the update every ``update_every`` batches."""
        self.batches += 1
        if self.tracking:
            self.track()
            return True
        if self.update_every > 0 and self.batches % self.update_every == 0:
            self.update()
            return True
        return False

    def update(self) -> dict[str, int]:
        """Move every observed group one step by the three-branch rule and reset the counters."""
        moves = {}
        for name, g in self.groups.items():
            if g.count == 0:
                continue
            step = decide(g.overflow / g.count, g.overflow_narrower / g.count, self.max_overflow)
            g.int_bits += step
            if step:
                g.moves += 1
            moves[name] = step
            g.count = g.overflow = g.overflow_narrower = 0
        return moves

    def track(self) -> None:
        """Follow the data (first epoch): +1 integer bit after an overflow, else fit the largest magnitude."""
        for g in self.groups.values():
            if not g.track_mag:
                continue
            if g.track_ovf:
                g.int_bits += 1
            elif g.track_max > 0:
                g.int_bits = _int_bits_for(g.track_max, g.track_mag)
                g.set = True
            g.track_max, g.track_ovf = 0.0, False
            g.count = g.overflow = g.overflow_narrower = 0

    def take_epoch_rate(self) -> float:
        """Overall overflow rate since the last call (for progress bars and history)."""
        r = self.epoch_overflow / self.epoch_count if self.epoch_count else 0.0
        self.epoch_count = self.epoch_overflow = 0
        return r

    # ---- persistence (checkpoints, result.json) -----------------------
    def state_dict(self) -> dict:
        return {
            "max_overflow": self.max_overflow,
            "update_every": self.update_every,
            "batches": self.batches,
            "epoch_count": self.epoch_count,
            "epoch_overflow": self.epoch_overflow,
            "tracking": self.tracking,
            "groups": {k: dataclasses.asdict(v) for k, v in self.groups.items()},
        }

    def load_state_dict(self, d: dict) -> None:
        self.max_overflow = float(d["max_overflow"])
        self.update_every = int(d["update_every"])
        self.batches = int(d["batches"])
        self.epoch_count = int(d["epoch_count"])
        self.epoch_overflow = int(d["epoch_overflow"])
        self.tracking = bool(d["tracking"])
        self.groups = {k: GroupState(**v) for k, v in d["groups"].items()}
