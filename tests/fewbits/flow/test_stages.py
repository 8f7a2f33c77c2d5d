"""fewbits.flow.stages: the one stage table is what ``plan`` reads."""

from __future__ import annotations

import dataclasses

from fewbits.flow import stages as st
from fewbits.flow.config import parse_sweep

from ..conftest import tiny_toml


def _point():
    return parse_sweep(tiny_toml(targets=("cmos",)), "a.toml").points[0]


def test_plan_follows_the_table():
    point = _point()
    names = [i.stage.name for i in st.plan(point)]
    assert list(dict.fromkeys(names)) == [s.name for s in st.STAGES if "run" in s.kinds]
    assert [s.name for s in st.STAGES if "run" not in s.kinds] == ["part_synth", "part_power"]
    assert st.BY_NAME == {s.name: s for s in st.STAGES}
    for s in st.STAGES:  # a stage needs only stages above it in the table
        above = {t.name for t in st.STAGES[: st.STAGES.index(s)]}
        assert set(s.needs) <= above, s.name


def test_a_row_added_or_reordered_in_the_table_is_planned(monkeypatch):
    point = _point()
    extra = st.Stage("lint", ("verilog",), lambda p, spec: {"k": 1}, lambda *a: {}, lambda: None)
    table = (st.STAGES[1], st.STAGES[0], extra, *st.STAGES[2:])
    monkeypatch.setattr(st, "STAGES", table)
    plan = st.plan(point)
    assert [i.name for i in plan][:3] == ["verilog", "train", "lint"]
    assert plan[2] == st.Instance("lint", extra, {"k": 1}, ("verilog",))
    monkeypatch.setattr(st, "STAGES", (dataclasses.replace(st.BY_NAME["train"]),))
    assert [i.name for i in st.plan(point)] == ["train"]


def test_switched_off_stages_have_no_instance():
    point = _point()
    point = {**point, "cosim": {**point["cosim"], "enabled": False}, "power": {**point["power"], "enabled": False}}
    assert "cosim" not in [i.name for i in st.plan(point)] and "power" not in [i.name for i in st.plan(point)]


def test_other_point_kinds_read_the_same_table():
    from fewbits.flow import paper, parts

    (pp,) = parts.points(["fixed:4:2"], ["cmos", "ice40"], parts=("multiplier",), power=True)
    assert [(i.stage.name, i.name) for i in st.plan(pp)] == [
        ("part_synth", "multiplier.cmos"), ("part_synth", "multiplier.ice40"), ("part_power", "multiplier.power")]
    tp = paper.point("digits", "mlp-small", 1, 0, "dfixed:10", "dfixed:12", True)
    assert [i.name for i in st.plan(tp)] == ["train"]


def test_cosim_without_corners_checks_the_capture_and_the_random_tiles_only(tiny_sweep, tmp_path):
    """``[cosim] corners = false`` (the demo's): the same design, its captured data and random tiles, bit for bit;
    the stored co-simulation (corners on) had the corner cases besides."""
    import json

    from fewbits.flow.store import Store

    root, points, records = tiny_sweep
    store = Store(root)
    rec = records[0]
    inputs = {n: store.get_stage(n, rec["stages"][n]["key"]) for n in ("train", "verilog")}
    stored = store.get_stage("cosim", rec["stages"]["cosim"]["key"])
    cfg = {**stored["config"], "corners": False}
    res = st.BY_NAME["cosim"].run(cfg, inputs, tmp_path, store)
    kinds = {s["kind"] for s in json.loads((tmp_path / "report.json").read_text())["sources"]}
    before = {s["kind"] for s in json.loads((root / stored["result"]["report"]).read_text())["sources"]}
    assert res["ok"] and res["mismatches"] == 0 and kinds == {"capture", "random"} and "corner" in before
    assert res["capture_elements_checked"] == stored["result"]["capture_elements_checked"] > 0
    assert res["macs_checked"] < stored["result"]["macs_checked"]
