"""flow.parts (`fewbits synth --sweep`) on the one engine: sweep ranges, one JSON per point + CSV, a failing point
does not stop the others, a second run recomputes nothing."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from fewbits.flow.parts import SweepRangeError
from fewbits.flow.parts import parse_range as parse_sweep
from fewbits.flow.parts import run as run_sweep
from fewbits.hw.eda.synth_report import quadratic_fit


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FEWBITS_CACHE", str(tmp_path_factory.getbasetemp() / "fewbits-cache"))


def test_parse_sweep():
    assert parse_sweep("fixed:2..4") == ["fixed:2:1", "fixed:3:1", "fixed:4:2"]
    assert parse_sweep("dfixed:4,8") == ["dfixed:4", "dfixed:8"]
    assert parse_sweep("float:5:2..3") == ["float:5:2", "float:5:3"]
    assert parse_sweep("fp16") == ["fp16"]
    for bad in ("fixed:1..4", "float:5:3..2", "fixed:9..3", "nonsense"):
        with pytest.raises(SweepRangeError, match="bad sweep"):
            parse_sweep(bad)


@pytest.mark.parametrize("seed", [7])
def test_quadratic_fit_recovers_a_quadratic(seed):
    rng = np.random.default_rng(seed)
    c = rng.uniform(1, 5, size=3)
    w = np.arange(2, 33)
    q = quadratic_fit(w, c[0] * w ** 2 + c[1] * w + c[2])
    assert q["c2"] == pytest.approx(c[0], rel=1e-9) and q["rel_rms_residual"] < 1e-9


@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")
def test_sweep_points_csv_and_failures(tmp_path):
    res = run_sweep(["fixed:2:1", "fixed:0:0", "fixed:4:2"], ["cmos"], tmp_path)
    assert res["ok"] == ["fixed:2:1", "fixed:4:2"] and len(res["failed"]) == 1 and "fixed:0:0" in res["failed"][0]
    names = sorted(p.name for p in (tmp_path / "points").glob("*.json"))
    assert names == ["fixed_0_0.json", "fixed_2_1.json", "fixed_4_2.json"]
    assert "error" in json.loads((tmp_path / "points" / "fixed_0_0.json").read_text())
    rows = list(csv.DictReader(open(res["csv"])))
    assert [(r["label"], r["part"]) for r in rows] == [("fixed:2:1", "multiplier"), ("fixed:2:1", "mac_unit"),
                                                       ("fixed:4:2", "multiplier"), ("fixed:4:2", "mac_unit")]
    t = {(r["label"], r["part"]): int(r["transistors"]) for r in rows}
    assert t[("fixed:2:1", "multiplier")] < t[("fixed:4:2", "multiplier")]
    assert t[("fixed:4:2", "multiplier")] < t[("fixed:4:2", "mac_unit")]
    # the docs' report reads the CSV and the point folder alike
    from fewbits.hw.eda.synth_report import plot, read_rows, tables

    rows = read_rows([res["csv"]])
    md = tables(rows)
    assert md == tables(read_rows([tmp_path]))
    assert f"| 4 | {t[('fixed:4:2', 'multiplier')]} |" in md
    pngs = plot(rows, tmp_path / "docs")
    assert all(p.stat().st_size > 1000 for p in pngs)
    # the engine's store: a second run finds every stage record and recomputes nothing
    records = sorted((tmp_path / "store" / "stages").glob("*/*.json"))
    before = {p: p.read_text() for p in records}
    assert len(before) == 5  # 2 formats x 2 parts synthesized, and the failed first stage of fixed:0:0
    again = run_sweep(["fixed:2:1", "fixed:0:0", "fixed:4:2"], ["cmos"], tmp_path)
    assert again["ok"] == res["ok"] and {p: p.read_text() for p in records} == before


@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")
def test_sweep_over_multiplier_architectures(tmp_path):
    """``--multiplier``: one point per format and architecture, each synthesized from its own MacSpec."""
    res = run_sweep(["fixed:4:2"], ["cmos"], tmp_path, parts=["multiplier"], multipliers=("yosys", "booth", "dadda"))
    assert res["ok"] == ["fixed:4:2", "fixed:4:2+booth", "fixed:4:2+dadda"] and not res["failed"]
    rows = list(csv.DictReader(open(res["csv"])))
    assert [r["multiplier"] for r in rows] == ["yosys", "booth", "dadda"]
    t = [int(r["transistors"]) for r in rows]
    assert len(set(t)) == 3, t   # three different netlists
    pts = {p.name: json.loads(p.read_text()) for p in (tmp_path / "points").glob("*.json")}
    assert pts["fixed_4_2_booth.json"]["spec"]["multiplier"] == "booth"
    assert "multiplier" not in pts["fixed_4_2.json"]["spec"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")
def test_full_fixed_sweep_is_roughly_quadratic(tmp_path):
    """The paper's premise on the real flow: fixed multiplier transistors ~ width^2 over 2..32."""
    res = run_sweep(parse_sweep("fixed:2..32"), ["cmos"], tmp_path, parts=("multiplier",))
    s = sorted((int(r["width"]), int(r["transistors"])) for r in res["rows"])
    q = quadratic_fit(*zip(*[p for p in s if p[0] >= 4]))
    assert q["c2"] > 0 and q["rel_rms_residual"] < 0.25
