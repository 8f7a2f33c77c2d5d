"""sim.capture: the one writer and validating reader of the capture format, and its one mismatch rule."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from fewbits.sim import Fixed, MacSpec, parse_format
from fewbits.sim.capture import (ARRAYS, MANIFEST, CapturedMatmul, CaptureError, convert_exact, fit, read_capture,
                                 replay, write_capture)


def _matmul(seed: int, fmt="fixed:8:4", bias=True, name="L0.forward") -> CapturedMatmul:
    rng = np.random.default_rng(seed)
    f = parse_format(fmt)
    a = rng.integers(f.min_code, f.max_code + 1, (5, 7), dtype=np.int64)
    b = rng.integers(f.min_code, f.max_code + 1, (7, 3), dtype=np.int64)
    bz = rng.integers(f.min_code, f.max_code + 1, 3, dtype=np.int64) if bias else None
    spec = MacSpec(f, f, f, bias_fmt=f if bias else None, rows=1, cols=1, k_max=64)
    z, ovf = spec.compute(torch.from_numpy(a), torch.from_numpy(b), None if bz is None else torch.from_numpy(bz))
    return CapturedMatmul(name, name.split(".")[0], name.split(".")[1], a, b, z.numpy(), ovf.numpy(), f, f, f,
                          bz, f if bias else None)


def _one_line_naming(exc, *words):
    msg = str(exc.value)
    assert "\n" not in msg, msg
    for w in words:
        assert str(w) in msg, (w, msg)


@pytest.mark.parametrize("seed", [3], ids=lambda s: f"seed{s}")
def test_round_trip(tmp_path, seed):
    ms = [_matmul(seed), _matmul(seed + 1, "dfixed:9", bias=False, name="L1.weight_grad")]
    path = write_capture(tmp_path / "cap", ms, step=4, meta={"epoch": 2})
    assert path == tmp_path / "cap" / MANIFEST
    for where in (tmp_path / "cap", path, tmp_path / "cap" / ARRAYS):
        cap = read_capture(where)
        assert cap.step == 4 and cap.meta["epoch"] == 2 and [m.name for m in cap.matmuls] == ["L0.forward",
                                                                                              "L1.weight_grad"]
        for got, want in zip(cap.matmuls, ms):
            assert np.array_equal(got.a, want.a) and np.array_equal(got.b, want.b)
            assert np.array_equal(got.z, want.z) and np.array_equal(got.overflow, want.overflow)
            assert got.overflow.dtype == np.bool_ and got.a.dtype == np.int64
            assert (got.a_fmt, got.b_fmt, got.out_fmt, got.bias_fmt) == (want.a_fmt, want.b_fmt, want.out_fmt,
                                                                         want.bias_fmt)
            assert (want.bias is None) == (got.bias is None)
            assert want.bias is None or np.array_equal(got.bias, want.bias)
    assert all(replay(tmp_path / "cap").values())


def _damage(tmp_path, seed, edit):
    write_capture(tmp_path, [_matmul(seed)])
    doc = json.loads((tmp_path / MANIFEST).read_text())
    edit(doc)
    (tmp_path / MANIFEST).write_text(json.dumps(doc))


@pytest.mark.parametrize("seed", [5], ids=lambda s: f"seed{s}")
def test_truncated_npz(tmp_path, seed):
    write_capture(tmp_path, [_matmul(seed)])
    data = (tmp_path / ARRAYS).read_bytes()
    (tmp_path / ARRAYS).write_bytes(data[: len(data) // 2])
    with pytest.raises(CaptureError) as e:
        read_capture(tmp_path)
    _one_line_naming(e, tmp_path / ARRAYS, "unreadable arrays")


@pytest.mark.parametrize("seed", [6], ids=lambda s: f"seed{s}")
@pytest.mark.parametrize("field,edit", [
    ("rows", lambda e: e.update(rows=e["rows"] + 1)),        # JSON says 6 rows, arrays hold 5
    ("cols", lambda e: e.update(cols=e["cols"] - 1)),
    ("bias", lambda e: e.update(bias="L0.forward.a")),        # a (5, 7) array where a bias of 3 codes belongs
    ("z", lambda e: e.update(z="nothing.here")),
    ("out_fmt", lambda e: e.update(out_fmt="fixed:banana")),
    ("k_str", lambda e: e.update(k=str(e["k"]))),           # "7": a string where a JSON integer belongs
    ("cols_float", lambda e: e.update(cols=e["cols"] + 0.5)),
    ("rows_bool", lambda e: e.update(rows=True)),
])
def test_json_and_arrays_disagree(tmp_path, seed, field, edit):
    _damage(tmp_path, seed, lambda doc: edit(doc["matmuls"][0]))
    with pytest.raises(CaptureError) as e:
        read_capture(tmp_path)
    named = {"rows": ".a", "cols": ".b", "bias": ".bias", "z": ".z", "out_fmt": ".out_fmt", "k_str": ".k",
             "cols_float": ".cols", "rows_bool": ".rows"}[field]
    _one_line_naming(e, tmp_path / MANIFEST, "L0.forward", named)


@pytest.mark.parametrize("seed", [7], ids=lambda s: f"seed{s}")
@pytest.mark.parametrize("rel", ["../outside.npz", "/etc/passwd", "sub/../../x.npz"])
def test_arrays_path_escaping_the_folder(tmp_path, seed, rel):
    (tmp_path / "cap").mkdir()
    write_capture(tmp_path, [_matmul(seed)])
    (tmp_path / "cap" / ARRAYS).write_bytes((tmp_path / ARRAYS).read_bytes())
    (tmp_path / "outside.npz").write_bytes((tmp_path / ARRAYS).read_bytes())
    doc = json.loads((tmp_path / MANIFEST).read_text())
    doc["arrays"] = rel
    (tmp_path / "cap" / MANIFEST).write_text(json.dumps(doc))
    with pytest.raises(CaptureError) as e:
        read_capture(tmp_path / "cap")
    _one_line_naming(e, tmp_path / "cap" / MANIFEST, "arrays", "leaves the capture folder")


def test_missing_and_unreadable_manifest(tmp_path):
    with pytest.raises(CaptureError) as e:
        read_capture(tmp_path / "nope")
    _one_line_naming(e, tmp_path / "nope", "no capture")
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(CaptureError) as e:
        read_capture(tmp_path)
    _one_line_naming(e, tmp_path / MANIFEST, "unreadable JSON")


def test_zip_member_missing(tmp_path):
    write_capture(tmp_path, [_matmul(8)])
    with zipfile.ZipFile(tmp_path / ARRAYS) as z:
        keep = {n: z.read(n) for n in z.namelist() if not n.startswith("L0.forward.ovf")}
    with zipfile.ZipFile(tmp_path / ARRAYS, "w") as z:
        for n, d in keep.items():
            z.writestr(n, d)
    with pytest.raises(CaptureError) as e:
        read_capture(tmp_path)
    _one_line_naming(e, "L0.forward", ".overflow", "names no array")


# ---------------------------------------------------------------- the one mismatch rule

@pytest.mark.parametrize("seed", [9], ids=lambda s: f"seed{s}")
def test_convert_exact_only_when_every_value_survives(seed):
    rng = np.random.default_rng(seed)
    src = Fixed(6, 3)
    codes = rng.integers(src.min_code, src.max_code + 1, 50, dtype=np.int64)
    wide = convert_exact(codes, src, Fixed(8, 3))
    assert np.array_equal(wide, codes)                              # same grid, more room: codes as they are
    finer = convert_exact(codes, src, Fixed(10, 5))
    assert np.array_equal(finer, codes * 4)                         # values kept on a finer grid
    assert convert_exact(codes | 1, src, Fixed(8, 2)) is None       # odd codes lose their last bit
    assert convert_exact(np.array([31]), src, Fixed(5, 3)) is None  # out of range
    assert np.array_equal(convert_exact(codes & ~1, src, Fixed(8, 2)), (codes & ~1) >> 1)
    f16 = parse_format("fp16")
    one = np.array([0x3C00, 0x8000])                                # 1.0 and -0.0
    assert np.array_equal(convert_exact(one, f16, parse_format("fp32")), [0x3F800000, 0x80000000])
    assert convert_exact(np.array([0x3C01]), f16, parse_format("float:5:4")) is None


@pytest.mark.parametrize("seed", [10], ids=lambda s: f"seed{s}")
def test_fit_converts_operands_exactly_and_skips_the_rest(seed):
    m = _matmul(seed, "fixed:6:3", bias=False)
    same = fit(m, MacSpec(Fixed(6, 3), Fixed(6, 3), Fixed(6, 3), rows=1, cols=1, k_max=64), compare_outputs=True)
    assert not isinstance(same, str) and not same.notes and np.array_equal(same.a, m.a)
    f8 = Fixed(8, 3)
    wider = fit(m, MacSpec(f8, f8, f8, rows=1, cols=1, k_max=64), compare_outputs=False)
    assert not isinstance(wider, str) and wider.notes and np.array_equal(wider.a, m.a)
    # the output format differs: a consumer comparing output codes skips the matmul, with the reason
    why = fit(m, MacSpec(f8, f8, f8, rows=1, cols=1, k_max=64), compare_outputs=True)
    assert isinstance(why, str) and "out fixed:6:3" in why
    c = Fixed(6, 1)  # a coarser grid: the odd codes do not survive
    why = fit(m, MacSpec(c, c, c, rows=1, cols=1, k_max=64), compare_outputs=False)
    assert isinstance(why, str) and "a fixed:6:3 is not exactly representable" in why


def test_dynamic_design_takes_the_captures_frac():
    m = _matmul(11, "dfixed:9", bias=True)
    m = CapturedMatmul(m.name, m.layer, m.matmul, m.a, m.b, m.z, m.overflow, m.a_fmt.with_frac(5),
                       m.b_fmt.with_frac(2), m.out_fmt.with_frac(4), m.bias, m.bias_fmt.with_frac(9))
    d = parse_format("dfixed:9")
    f = fit(m, MacSpec(d, d, d, rows=1, cols=1, k_max=64), compare_outputs=True)
    assert not isinstance(f, str) and not f.notes
    assert (f.fa.frac, f.fb.frac, f.fo.frac, f.fz.frac) == (5, 2, 4, 9)
    assert np.array_equal(f.bias, m.bias)
