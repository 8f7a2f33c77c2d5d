"""fewbits.flow.stages: the one stage table is what ``plan`` reads."""

from __future__ import annotations

import dataclasses

from fewbits.flow import stages as st
from fewbits.flow.config import parse_sweep

from ..conftest import tiny_toml


def _point():
    return parse_sweep(tiny_toml(targets=("cmos",)), "a.toml").points[0]


def test_plan_follows_the_table():
    point = parse_sweep(tiny_toml(targets=("cmos", "sky130")), "a.toml").points[0]   # every run stage applies
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


def test_sky130_target_plans_its_library_once_then_synthesis_and_power_on_it():
    from fewbits.flow.engine import stage_key

    plain, sky = (parse_sweep(tiny_toml(targets=t), "a.toml").points for t in (("cmos",), ("cmos", "sky130")))
    plans = [{i.name: i for i in st.plan(p)} for p in sky]
    for plan in plans:
        assert [n for n in plan if "sky130" in n] == ["tech.sky130", "synth.sky130", "power.sky130"]
        assert st.TECH in plan["synth.sky130"].needs and st.TECH in plan["power.sky130"].needs
        assert plan["power.sky130"].config == {**plan["power"].config, "tech": "sky130"}
    # one library for every point (same key: built once, under the store's lock)
    assert plans[0]["tech.sky130"].config == plans[1]["tech.sky130"].config
    assert plans[0]["tech.sky130"].config["library"]
    # adding the target changes no other stage's key (a store resumes with its records)
    for p0, p1 in zip(plain, sky):
        k0, k1 = {}, {}
        for i in st.plan(p0):
            k0[i.name] = stage_key(i, k0)
        for i in st.plan(p1):
            k1[i.name] = stage_key(i, k1)
        assert {n: k1[n] for n in k0} == k0
    off = parse_sweep(tiny_toml(targets=("cmos", "sky130"), power=False), "a.toml").points[0]
    assert [i.name for i in st.plan(off) if "sky130" in i.name] == ["tech.sky130", "synth.sky130"]


def test_power_sky130_false_keeps_sky130_area_and_clock_but_not_its_energy():
    """``[power] sky130 = false`` (a sweep that wants sky130 area and clock without the gate-level energy): no
    ``power.sky130`` stage, every other stage as with the switch on; ``--cost energy_sky130_pj`` is refused."""
    import pytest

    from fewbits.flow.engine import stage_key
    from fewbits.report.costs import CostError, check_sweep

    text = tiny_toml(targets=("cmos", "sky130"))
    on, off = (parse_sweep(t, "a.toml").points[0] for t in (text, text.replace("[power]\n", "[power]\nsky130 = false\n")))
    k_on, k_off = {}, {}
    for i in st.plan(on):
        k_on[i.name] = stage_key(i, k_on)
    for i in st.plan(off):
        k_off[i.name] = stage_key(i, k_off)
    assert set(k_on) - set(k_off) == {"power.sky130"} and set(k_off) <= set(k_on)
    assert {n: k_on[n] for n in k_off} == k_off
    check_sweep("area_um2", [off])
    with pytest.raises(CostError, match=r"\[power\] sky130 = true"):
        check_sweep("energy_sky130_pj", [off])
    check_sweep("energy_sky130_pj", [on])


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
