"""Fixed-width hex text, vectorized: how stimulus reaches the testbench and results come back.

Every field of a line has a fixed number of hex digits (Verilog's ``%h`` of a
w-bit value prints ``ceil(w/4)`` digits), so a whole file is one numpy array
of characters: no per-element Python on either side.
"""

from __future__ import annotations

import numpy as np

_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_LUT = np.full(256, 255, dtype=np.int64)
for _i, _c in enumerate(b"0123456789abcdef"):
    _LUT[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _LUT[_c] = 10 + _i
UNKNOWN = -1  # a field holding x or z bits


def digits(width: int) -> int:
    return max(1, -(-int(width) // 4))


def encode_lines(fields: list[np.ndarray], widths: list[int]) -> bytes:
    """Lines of space-separated hex fields; ``fields[f]`` is an int64 column of N values (two's complement ok)."""
    n = len(fields[0]) if fields else 0
    ds = [digits(w) for w in widths]
    line = sum(ds) + len(ds)  # one space or newline after every field
    out = np.empty((n, line), dtype=np.uint8)
    pos = 0
    for col, w, d in zip(fields, widths, ds):
        v = np.asarray(col, dtype=np.int64)
        if w < 64:
            v = v & ((1 << w) - 1)
        for i in range(d):
            out[:, pos + i] = _DIGITS[(v >> (4 * (d - 1 - i))) & 15]
        out[:, pos + d] = ord(" ")
        pos += d + 1
    if n:
        out[:, -1] = ord("\n")
    return out.tobytes()


def decode_lines(data: bytes, fields: list[tuple[str, int]]) -> dict[str, np.ndarray]:
    """Parse lines written by the testbench. ``fields``: (name, width) with kind by name suffix.

    A field whose name ends in ``:bits`` is a ``%b`` string of ``width`` characters, returned as
    an (N, width) bool array with element 0 = the least significant bit; others are ``%h``
    fields returned as int64 (``UNKNOWN`` where the simulator printed x/z).
    """
    lens = [w if name.endswith(":bits") else digits(w) for name, w in fields]
    line = sum(lens) + len(lens)
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size % line:
        raise ValueError(f"testbench output of {buf.size} bytes is not a whole number of {line}-byte lines")
    rows = buf.reshape(-1, line)
    out = {}
    pos = 0
    for (name, w), d in zip(fields, lens):
        chunk = rows[:, pos:pos + d]
        if name.endswith(":bits"):
            bits = chunk[:, ::-1]
            out[name[:-5]] = bits == ord("1")
            out[name[:-5] + ":unknown"] = ~((bits == ord("0")) | (bits == ord("1"))).all(axis=1)
        else:
            vals = _LUT[chunk]
            bad = (vals == 255).any(axis=1)
            acc = np.zeros(len(rows), dtype=np.int64)
            for i in range(d):
                acc = (acc << 4) | np.where(vals[:, i] == 255, 0, vals[:, i])
            out[name] = np.where(bad, UNKNOWN, acc)
        pos += d + 1
    return out
