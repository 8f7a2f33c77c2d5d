"""Scoreboard: every output code and overflow flag against ``mac_reference`` (and a capture).

Vectorized over all tiles at once with numpy; only the first few mismatches
are turned into readable report entries (tile, element, K, operands, expected
and actual codes in hex and as values, formats).
"""

from __future__ import annotations

import numpy as np

from .monitor import Results
from .schedule import Table
from .tiles import TileSet

MAX_REPORTED = 20
MAX_OPERANDS = 16


def signed_format(fmt: str | None) -> bool:
    """Whether a manifest format string has two's-complement codes (signed fixed point)."""
    return bool(fmt) and fmt.split(":", 1)[0] in ("fixed", "dfixed")


def to_codes(bits: np.ndarray, width: int, signed: bool) -> np.ndarray:
    """Unsigned bit patterns -> ``fewbits.sim`` codes (two's complement for signed fixed point)."""
    if signed and width < 64:
        return np.where(bits >= (1 << (width - 1)), bits - (1 << width), bits)
    return bits


def _hex(code: int, width: int) -> str:
    return "0x" + format(int(code) & ((1 << width) - 1), f"0{max(1, -(-width // 4))}x")


def add_values(entries: list[dict]) -> None:
    """Decode the codes of report entries into values (host side: needs ``fewbits.sim``, i.e. torch)."""
    import torch
    from fewbits.sim import parse_format

    def value(fmt, h):
        v = float(fmt.decode(torch.tensor([int(h, 16)], dtype=torch.int64))[0]) if h.startswith("0x") else h
        return v if isinstance(v, str) or (v == v and abs(v) != float("inf")) else str(v)

    for e in entries:
        if e.get("kind") != "mismatch":
            continue
        fo = parse_format(e["formats"]["out_fmt"])
        z = e["expected"]
        e["expected_value"] = value(fo, _signed_hex(z, fo))
        e["actual_value"] = value(fo, _signed_hex(e["actual"], fo))
        if "capture" in e:
            e["capture_value"] = value(fo, _signed_hex(e["capture"], fo))


def _signed_hex(h: str, fmt) -> str:
    if not h.startswith("0x") or fmt.kind == "float" or not fmt.signed:
        return h
    v = int(h, 16)
    if v >= 1 << (fmt.width - 1):
        v -= 1 << fmt.width
    return ("-0x" if v < 0 else "0x") + format(abs(v), "x")


class Scoreboard:
    """Compares the monitor's ``Results`` with a ``TileSet``'s expectations under a ``Table``'s timing."""

    def __init__(self, ts: TileSet, table: Table, design):
        self.ts, self.table, self.design = ts, table, design
        z = design.port("z")
        self.wz, self.signed = z.element_width, signed_format(z.format)
        self.widths = {r: design.port(r).element_width for r in ("a", "b", "bias")}

    def compare(self, res: Results) -> dict:
        ts, tb = self.ts, self.table
        R, C = ts.ref_z.shape[1:]
        due_c, due_t = tb.due_cycle, tb.due_tile
        # timing: the result of each due tile must be in exactly its cycle, nothing else may appear
        idx = np.searchsorted(res.cycle, due_c)
        idx_c = np.clip(idx, 0, max(len(res.cycle) - 1, 0))
        found = (idx < len(res.cycle)) & (res.cycle[idx_c] == due_c) if len(res.cycle) else np.zeros(len(due_c), bool)
        extra = ~np.isin(res.cycle, due_c)
        tiles = due_t[found]
        rows = idx[found]
        z = to_codes(res.z_bits[rows], self.wz, self.signed).reshape(-1, R, C)
        ovf = res.ovf[rows].reshape(-1, R, C)
        unk = res.unknown[rows][:, None, None] | (res.z_bits[rows].reshape(-1, R, C) < 0)
        ref_z, ref_o = ts.ref_z[tiles], ts.ref_ovf[tiles]
        bad_z = (z != ref_z) | unk
        bad_o = ovf != ref_o
        bad = bad_z | bad_o
        cm = ts.cap_mask[tiles]
        cap_bad = cm & ((z != ts.cap_z[tiles]) | (ovf != ts.cap_ovf[tiles]) | unk)
        ref_vs_cap = cm & ((ref_z != ts.cap_z[tiles]) | (ref_o != ts.cap_ovf[tiles]))
        macs = int((ts.tile_k[tiles]).sum()) * R * C
        report = []
        for n, i, j in np.argwhere(bad | cap_bad)[:MAX_REPORTED]:
            report.append(self._entry(int(tiles[n]), int(i), int(j), int(z[n, i, j]), bool(ovf[n, i, j]),
                                      bool(unk[n, i, j]), int(due_c[found][n])))
        for n in np.nonzero(~found)[0][: max(0, MAX_REPORTED - len(report))]:
            report.append({"kind": "missing", "tile": int(due_t[n]), "cycle": int(due_c[n]),
                           **self._where(int(due_t[n]))})
        for e in np.nonzero(extra)[0][: max(0, MAX_REPORTED - len(report))]:
            report.append({"kind": "unexpected out_valid", "cycle": int(res.cycle[e])})
        return {
            "tiles_expected": int(len(due_t)), "tiles_checked": int(found.sum()),
            "results_seen": int(len(res.cycle)), "missing": int((~found).sum()), "unexpected": int(extra.sum()),
            "elements_checked": int(bad.size), "macs_checked": macs,
            "mismatches": int(bad.sum()), "code_mismatches": int(bad_z.sum()), "flag_mismatches": int(bad_o.sum()),
            "unknown_outputs": int(unk.sum()),
            "capture_elements_checked": int(cm.sum()), "capture_mismatches": int(cap_bad.sum()),
            "reference_vs_capture_mismatches": int(ref_vs_cap.sum()),
            "first_mismatches": report,
        }

    def _where(self, t: int) -> dict:
        src = self.ts.sources[int(self.ts.tile_src[t])]
        ti, tj, kc, k0 = (int(v) for v in self.ts.tile_pos[t])
        return {"source": src["name"], "tile_row": ti, "tile_col": tj, "k_chunk": kc, "k_offset": k0,
                "K": int(self.ts.tile_k[t])}

    def _entry(self, t, i, j, z, ovf, unknown, cycle) -> dict:
        ts = self.ts
        src = ts.sources[int(ts.tile_src[t])]
        R, C = ts.ref_z.shape[1:]
        off, k = int(ts.tile_off[t]), int(ts.tile_k[t])
        a = ts.steps_a[off:off + k, i][:MAX_OPERANDS].tolist()
        b = ts.steps_b[off:off + k, j][:MAX_OPERANDS].tolist()
        wo = self.wz
        exp_z, exp_o = int(ts.ref_z[t, i, j]), bool(ts.ref_ovf[t, i, j])
        e = {"kind": "mismatch", "tile": t, "cycle": cycle, **self._where(t), "i": i, "j": j,
             "row": int(ts.tile_pos[t, 0]) * R + i, "col": int(ts.tile_pos[t, 1]) * C + j,
             "a_codes": [_hex(c, self.widths["a"]) for c in a],
             "b_codes": [_hex(c, self.widths["b"]) for c in b],
             "operands_truncated": k > MAX_OPERANDS,
             "bias": _hex(int(ts.bias[t, j]), self.widths["bias"]),
             "shift": int(ts.shift[t]), "bias_shift": int(ts.bias_shift[t]),
             "expected": _hex(exp_z, wo), "expected_ovf": exp_o,
             "actual": "x" if unknown else _hex(z, wo), "actual_ovf": ovf,
             "formats": {k2: src[k2] for k2 in ("a_fmt", "b_fmt", "out_fmt", "bias_fmt", "acc_fmt")}}
        if ts.cap_mask[t, i, j]:
            e["capture"] = _hex(int(ts.cap_z[t, i, j]), wo)
            e["capture_ovf"] = bool(ts.cap_ovf[t, i, j])
        return e
