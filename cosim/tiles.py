"""Matrices -> R×C tiles with K chunks <= k_max, plus the expected codes of every tile.

A vector source yields ``MatMul`` jobs (A M×K, B K×N, bias, formats, and for a
capture the training model's output codes).  ``tile`` pads them to whole tiles,
computes ``mac_reference`` once per K chunk on the whole matrix (vectorized, the
design's accumulator) and cuts everything into a flat ``TileSet``.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np


@dataclasses.dataclass
class MatMul:
    """One matrix product to verify; formats are ``fewbits.sim`` objects at their current frac."""

    name: str
    a: np.ndarray
    b: np.ndarray
    a_fmt: object
    b_fmt: object
    out_fmt: object
    bias: np.ndarray | None = None
    bias_fmt: object = None
    z: np.ndarray | None = None  # the training model's output codes (captures)
    ovf: np.ndarray | None = None
    kind: str = "random"


@dataclasses.dataclass
class TileSet:
    """Flat arrays of N tiles: K steps (column of A, row of B), bias, shifts, expected codes."""

    steps_a: np.ndarray  # (S, R) int64
    steps_b: np.ndarray  # (S, C)
    tile_off: np.ndarray  # (N,) first step of each tile
    tile_k: np.ndarray  # (N,)
    bias: np.ndarray  # (N, C) codes fed on in_bias
    shift: np.ndarray  # (N,) in_shift (0 when static)
    ref_z: np.ndarray  # (N, R, C) mac_reference
    ref_ovf: np.ndarray
    cap_z: np.ndarray  # (N, R, C) training model (where cap_mask)
    cap_ovf: np.ndarray
    cap_mask: np.ndarray  # (N, R, C) bool: a real captured element
    tile_src: np.ndarray  # (N,) index into sources
    tile_pos: np.ndarray  # (N, 4): row tile, col tile, k chunk, k offset
    sources: list  # dicts: name, kind, formats, shape
    bias_shift: np.ndarray | None = None  # (N,) in_bias_shift fa + fb - fbias (0 when static or no bias)

    def __post_init__(self):
        if self.bias_shift is None:
            self.bias_shift = np.zeros(len(self.tile_k), dtype=np.int64)

    @property
    def n(self) -> int:
        return len(self.tile_k)

    @property
    def macs(self) -> int:
        return int(self.tile_k.sum()) * self.ref_z.shape[1] * self.ref_z.shape[2]

    def save(self, path):
        arrays = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "sources"}
        np.savez(path, sources=np.array(json.dumps(self.sources)), **arrays)

    @classmethod
    def load(cls, path) -> "TileSet":
        with np.load(path) as z:
            kw = {k: z[k] for k in z.files if k != "sources"}
            kw["sources"] = json.loads(str(z["sources"]))
        return cls(**kw)

    @classmethod
    def concat(cls, sets: list["TileSet"]) -> "TileSet":
        sets = [s for s in sets if s.n]
        if not sets:
            raise ValueError("no tiles to verify")
        srcs, s_off = [], 0
        parts = {f.name: [] for f in dataclasses.fields(cls) if f.name != "sources"}
        for s in sets:
            for f in parts:
                v = getattr(s, f)
                if f == "tile_off":
                    v = v + s_off
                elif f == "tile_src":
                    v = v + len(srcs)
                parts[f].append(v)
            s_off += len(s.steps_a)
            srcs += s.sources
        return cls(sources=srcs, **{k: np.concatenate(v) for k, v in parts.items()})


def _np(t) -> np.ndarray:
    return t.numpy() if hasattr(t, "numpy") else np.asarray(t)


def _pad(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.zeros((rows, cols), dtype=x.dtype)
    out[: x.shape[0], : x.shape[1]] = x
    return out


def shifts_of(spec, mm: "MatMul") -> tuple[int, int]:
    """The runtime ``in_shift`` and ``in_bias_shift`` of ``mm`` on a dynamic design ((0, 0) for a static
    one; bias shift 0 without a bias), the latter clamped to its port: beyond the port's range every
    value acts alike (all bits shifted out: 0, or floor + sticky)."""
    if not spec.dynamic:
        return 0, 0
    from fewbits.hw.ports import shift_range
    from fewbits.sim.spec import runtime_shifts

    sh, bsh = runtime_shifts(mm.a_fmt.frac, mm.b_fmt.frac, mm.out_fmt.frac,
                             None if mm.bias is None else mm.bias_fmt.frac)
    lo, hi = shift_range(spec, "in_bias_shift")
    return int(sh), 0 if bsh is None else int(min(max(bsh, lo), hi))


def tile(mm: MatMul, spec) -> TileSet:
    """Cut ``mm`` into ``spec.rows × spec.cols`` tiles, K chunks of at most ``spec.k_max``."""
    import torch
    from fewbits.sim import mac_reference

    R, C, kmax = spec.rows, spec.cols, spec.k_max
    a, b = np.asarray(mm.a, dtype=np.int64), np.asarray(mm.b, dtype=np.int64)
    M, K = a.shape
    K2, N = b.shape
    if K != K2:
        raise ValueError(f"{mm.name}: bad shapes {a.shape} @ {b.shape}")
    tr, tc = -(-M // R), -(-N // C)
    ap, bp = _pad(a, tr * R, K), _pad(b, K, tc * C)
    bias = None if mm.bias is None else np.asarray(mm.bias, dtype=np.int64).reshape(-1)
    biasp = np.zeros(tc * C, dtype=np.int64)
    if bias is not None:
        biasp[: len(bias)] = bias
    chunks = [(k0, min(K, k0 + kmax)) for k0 in range(0, max(K, 1), kmax)]
    sh, bsh = shifts_of(spec, mm)  # the bias on its own grid
    steps_a, steps_b, offs, ks, zs, os_, pos = [], [], [], [], [], [], []
    s_off = 0
    for ci, (k0, k1) in enumerate(chunks):
        z, ovf = mac_reference(torch.from_numpy(ap[:, k0:k1]), torch.from_numpy(bp[k0:k1, :]), mm.a_fmt,
                               mm.b_fmt, spec.acc_fmt, mm.out_fmt,
                               None if bias is None else torch.from_numpy(biasp),
                               None if bias is None else mm.bias_fmt)
        z = _np(z).reshape(tr, R, tc, C).transpose(0, 2, 1, 3).reshape(-1, R, C)
        ovf = _np(ovf).reshape(tr, R, tc, C).transpose(0, 2, 1, 3).reshape(-1, R, C)
        kk = k1 - k0
        # steps of tile (i, j): A[iR:(i+1)R, k0:k1].T and B[k0:k1, jC:(j+1)C]
        sa = ap[:, k0:k1].reshape(tr, R, kk).transpose(0, 2, 1)  # (tr, kk, R)
        sb = bp[k0:k1, :].reshape(kk, tc, C).transpose(1, 0, 2)  # (tc, kk, C)
        ii, jj = np.meshgrid(np.arange(tr), np.arange(tc), indexing="ij")
        ii, jj = ii.reshape(-1), jj.reshape(-1)
        steps_a.append(sa[ii].reshape(-1, R))
        steps_b.append(sb[jj].reshape(-1, C))
        n = len(ii)
        offs.append(s_off + np.arange(n) * kk)
        s_off += n * kk
        ks.append(np.full(n, kk))
        zs.append(z)
        os_.append(ovf)
        pos.append(np.stack([ii, jj, np.full(n, ci), np.full(n, k0)], axis=1))
    n_all = sum(len(k) for k in ks)
    cap_z = np.zeros((n_all, R, C), dtype=np.int64)
    cap_ovf = np.zeros((n_all, R, C), dtype=bool)
    cap_mask = np.zeros((n_all, R, C), dtype=bool)
    if mm.z is not None and len(chunks) == 1:
        zc = _pad(np.asarray(mm.z, dtype=np.int64), tr * R, tc * C)
        oc = _pad(np.asarray(mm.ovf, dtype=bool), tr * R, tc * C)
        mk = _pad(np.ones((M, N), dtype=bool), tr * R, tc * C)
        cut = lambda x: x.reshape(tr, R, tc, C).transpose(0, 2, 1, 3).reshape(-1, R, C)  # noqa: E731
        cap_z, cap_ovf, cap_mask = cut(zc), cut(oc), cut(mk)
    src = {"name": mm.name, "kind": mm.kind, "a_fmt": str(mm.a_fmt), "b_fmt": str(mm.b_fmt),
           "out_fmt": str(mm.out_fmt), "bias_fmt": None if bias is None else str(mm.bias_fmt),
           "acc_fmt": str(spec.acc_fmt), "shape": [M, K, N], "shift": sh, "bias_shift": bsh, "k_chunks": len(chunks),
           "captured": mm.z is not None, "capture_checked": mm.z is not None and len(chunks) == 1}
    return TileSet(
        steps_a=np.concatenate(steps_a), steps_b=np.concatenate(steps_b),
        tile_off=np.concatenate(offs), tile_k=np.concatenate(ks),
        bias=np.tile(biasp.reshape(tc, C), (tr * len(chunks), 1)),
        shift=np.full(n_all, sh, dtype=np.int64), bias_shift=np.full(n_all, bsh, dtype=np.int64),
        ref_z=np.concatenate(zs), ref_ovf=np.concatenate(os_),
        cap_z=cap_z, cap_ovf=cap_ovf, cap_mask=cap_mask,
        tile_src=np.zeros(n_all, dtype=np.int64), tile_pos=np.concatenate(pos), sources=[src])
