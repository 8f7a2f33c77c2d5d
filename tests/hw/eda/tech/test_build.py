"""The characterized sky130 Liberty, built by ngspice from the PDK's netlists and models: exact LEF
areas, tables that behave like a CMOS cell's, a cache that is trusted only while intact; the full
library (build.FULL) behind ``slow``."""

import json
import shutil

import pytest
from fewbits.hw.eda import power_liberty
from fewbits.hw.eda.tech import build, pdk

LEF_AREA = {"inv_1": 3.7536, "buf_1": 3.7536, "nand2_1": 3.7536, "dfxtp_1": 20.0192}


def records(lib):
    return {r["name"].split("__")[1]: r for r in json.loads((lib.parent / "cells.json").read_text())["cells"]}


def rising(v):
    return all(a < b for a, b in zip(v, v[1:]))


def check_cells(lib, shorts):
    recs = records(lib)
    parsed = {c["args"][0]: c for c in power_liberty.parse(lib.read_text())["groups"] if c["name"] == "cell"}
    for short in shorts:
        r = recs[short]
        assert r["area"] == pdk.cell(short).area
        assert float(parsed[r["name"]]["attrs"]["area"]) == pdk.cell(short).area
        assert all(0.0003 < c < 0.02 for c in r["caps"].values()), (short, r["caps"])
        for od in r["outputs"].values():
            for arc in od["arcs"]:
                for t in ("cell_rise", "cell_fall", "rise_transition", "fall_transition"):
                    g = arc[t]
                    # grows with the load (a transition only from the middle load on: at the lightest load
                    # a slow input's ramp, not the load, sets the output's edge)
                    assert all(rising(row if t.startswith("cell") else row[1:]) for row in g), (short, t, "load", g)
                    assert all(v > 0 for row in g for v in row), (short, t, g)
                for t in ("cell_rise", "cell_fall", "rise_transition", "fall_transition"):
                    g = arc[t]   # grows with the input slew, where the slew is not hidden inside the delay
                    assert rising([g[i][-1] for i in range(3)]) or t.endswith("transition"), (short, t, "slew", g)
                    assert rising([g[i][1] for i in range(3)]) or (short == "dfxtp_1" and t.endswith("transition")), \
                        (short, t, "slew", g)
                # energy of a full output cycle (rise + fall internal, the loads' C V^2 excluded): positive
                cyc = [[a + b for a, b in zip(ra, rb)] for ra, rb in zip(arc["rise_power"], arc["fall_power"])]
                assert all(v > 0 for row in cyc for v in row), (short, "energy", cyc)
                # at the fastest input (no short-circuit current to trade against the load) it grows with the
                # load; in slew it need not be monotonic (the published inv_1 table is not either)
                assert rising(cyc[0]), (short, "energy vs load", cyc)
    return recs


def test_small_subset(small_lib):
    recs = check_cells(small_lib, ("inv_1", "buf_1", "nand2_1"))
    assert set(recs) == set(build.SMALL)
    ff = recs["dfxtp_1"]
    assert ff["area"] == LEF_AREA["dfxtp_1"]
    q = ff["outputs"]["Q"]["arcs"][0]
    for t in ("cell_rise", "cell_fall"):
        assert all(rising(row) for row in q[t]) and all(v > 0.05 for row in q[t] for v in row), (t, q[t])
    assert all(v > 0 for v in ff["ff"]["clock_rise_power"] + ff["ff"]["clock_fall_power"])
    assert all(-0.1 < v < 0.5 for v in ff["ff"]["rise_constraint"] + ff["ff"]["fall_constraint"])
    tech = json.loads(small_lib.with_name("tech.json").read_text())
    assert tech["model"] == build.model_name() and tech["timing"] and 100 < tech["register_ps"] < 1000
    power_liberty.load(small_lib)


def test_areas_equal_the_lef(small_lib):
    assert {k: r["area"] for k, r in records(small_lib).items()} == LEF_AREA


@pytest.mark.parametrize("damage", ["truncate", "delete-lib", "delete-cells", "edit-sidecar", "delete-manifest"])
def test_damaged_cache_entry_is_not_trusted(small_lib, tmp_path, damage):
    out = tmp_path / small_lib.parent.name
    shutil.copytree(small_lib.parent, out, ignore=shutil.ignore_patterns("work", ".lock"))
    assert build.cached(out)
    f = {"truncate": build.LIB, "delete-lib": build.LIB, "delete-cells": "cells.json",
         "edit-sidecar": "tech.json", "delete-manifest": build.MANIFEST}[damage]
    if damage == "truncate":
        (out / f).write_text((out / f).read_text()[:1000])
    elif damage == "edit-sidecar":
        (out / f).write_text((out / f).read_text().replace('"timing": true', '"timing": false'))
    else:
        (out / f).unlink()
    assert not build.cached(out)


def test_damaged_entry_is_rebuilt(tmp_path):
    """A one-cell library (one ngspice deck): built, damaged, rebuilt byte for byte."""
    lib = build.build(("inv_1",), root=tmp_path, progress=False)
    good = lib.read_bytes()
    lib.write_bytes(good[: len(good) // 2])
    again = build.build(("inv_1",), root=tmp_path, progress=False)
    assert again == lib and lib.read_bytes() == good and build.cached(lib.parent)


def test_key_follows_settings_and_cells():
    from fewbits.hw.eda.tech import characterize as ch

    k = build.key(build.SMALL, ch.Settings())
    assert k == build.key(tuple(reversed(build.SMALL)), ch.Settings())
    assert k != build.key(build.SMALL[:-1], ch.Settings())
    assert k != build.key(build.SMALL, ch.Settings(tstep=0.01))


@pytest.mark.slow
def test_full_library(tmp_path):
    lib = build.build(build.FULL, progress=False)
    check_cells(lib, [c for c in build.FULL if not pdk.cell(c).ff])
    meta = json.loads(lib.with_name(build.MANIFEST).read_text())["meta"]
    assert meta["cells"] == list(build.FULL)
