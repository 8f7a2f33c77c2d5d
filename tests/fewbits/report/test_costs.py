"""The cost axes: ``--cost`` ranks the recommendation by any of them (a clock: fastest first), and an
axis that is not an axis, or that no result (or no sweep point) has, is one clear error."""

from __future__ import annotations

import pytest

from fewbits.flow.config import parse_sweep
from fewbits.flow.store import Store
from fewbits.report import costs
from fewbits.report import data as rd
from fewbits.report.build import summary_lines

from ..conftest import constructed_store, tiny_toml

# fixed:8 is the fewest transistors and the least sky130 energy; dfixed:6 the least sky130 area and
# the fastest clock; both are within 0.5 points of fp32 (mean rule)
COSTS = {"fp32": dict(transistors=5000, luts=900, energy_pj=2.0, area_um2=9000.0, delay_ps=4000.0, fmax_mhz=250.0,
                      energy_sky130_pj=3.0),
         "fixed": dict(transistors=100, luts=60, energy_pj=0.1, area_um2=900.0, delay_ps=3000.0, fmax_mhz=330.0,
                       energy_sky130_pj=0.1),
         "dfixed": dict(transistors=200, luts=50, energy_pj=0.2, area_um2=600.0, delay_ps=2000.0, fmax_mhz=500.0,
                        energy_sky130_pj=0.2)}
ERRORS = {"fp32": {0: 5.0, 1: 5.2}, "fixed": {0: 5.1, 1: 5.3}, "dfixed": {0: 5.2, 1: 5.4}}


@pytest.fixture
def store(tmp_path):
    return constructed_store(tmp_path / "results", COSTS, ERRORS)


def _recommended(data) -> str:
    (g,) = data["groups"]
    return next(s["family"] for s in data["summaries"] if s["key"] == g["recommended"])


@pytest.mark.parametrize("cost,family,words", [
    (None, "fixed", "cheapest by transistors"),          # the default rule: the first axis every result has
    ("transistors", "fixed", "cheapest by transistors"),
    ("luts", "dfixed", "cheapest by iCE40 LUTs"),
    ("area_um2", "dfixed", "cheapest by sky130 area"),
    ("energy_sky130_pj", "fixed", "cheapest by sky130 energy"),
    ("fmax_mhz", "dfixed", "fastest by sky130 maximum clock"),   # higher is better: 500 MHz, not 330
])
def test_cost_chooses_the_configuration(store, cost, family, words):
    data = rd.build(Store(store), 0.5, "mean", cost)
    assert _recommended(data) == family
    assert data["groups"][0]["metric"] == (cost or "transistors")
    assert words in summary_lines(data)[0]


def test_sky130_axes_reach_the_summary_and_the_saving(store):
    data = rd.build(Store(store), 0.5, "mean", "area_um2")
    by = {s["family"]: s for s in data["summaries"]}
    for fam, c in COSTS.items():
        for k in ("area_um2", "fmax_mhz", "delay_ps", "energy_sky130_pj", "transistors", "energy_pj"):
            assert by[fam][k] == c[k], (fam, k)
    assert data["groups"][0]["saving"]["area_um2"] == pytest.approx(1 - 600 / 9000)
    lines = summary_lines(data)
    assert "600 vs 9,000 sky130 µm²/MAC (93% less)" in lines[2]
    assert "500 vs 250 MHz sky130 maximum clock (2.00x)" in lines[2]
    assert any(line.startswith("sky130 figures: sky130 test model") for line in lines)


def test_every_cost_axis_has_a_pareto_front(store):
    data = rd.build(Store(store), 0.5, "mean")
    fronts = data["groups"][0]["pareto"]
    assert set(fronts) == set(costs.NAMES)
    fam = {s["key"]: s["family"] for s in data["summaries"]}
    # each configuration trades error for cost: all three on the fronts, cheapest (fastest) first;
    # ranked the wrong way round, the clock's front would be fp32 alone (the slowest and most accurate)
    assert [fam[k] for k in fronts["area_um2"]] == ["dfixed", "fixed", "fp32"]
    assert [fam[k] for k in fronts["fmax_mhz"]] == ["dfixed", "fixed", "fp32"]


def test_a_bad_axis_names_every_accepted_one():
    with pytest.raises(costs.CostError) as e:
        costs.get("area")
    assert "'area'" in str(e.value) and all(n in str(e.value) for n in costs.NAMES)


def test_an_axis_no_result_has_says_which_target_gives_it(tmp_path):
    generic = {f: {k: v for k, v in c.items() if k in ("transistors", "luts", "energy_pj")} for f, c in COSTS.items()}
    root = constructed_store(tmp_path / "results", generic, ERRORS, targets=("cmos", "ice40"))
    for axis in ("area_um2", "energy_sky130_pj", "fmax_mhz"):
        with pytest.raises(costs.CostError) as e:
            rd.build(Store(root), 0.5, "mean", axis)
        msg = str(e.value)
        assert f"--cost {axis}" in msg and '"sky130"' in msg and "transistors, luts, energy_pj" in msg
    assert _recommended(rd.build(Store(root), 0.5, "mean", "luts")) == "dfixed"


def test_a_sweep_without_the_providing_target_is_refused_before_any_work():
    points = parse_sweep(tiny_toml(targets=("cmos",)), "a.toml").points
    with pytest.raises(costs.CostError, match='synthesis target "sky130"'):
        costs.check_sweep("area_um2", points)
    with pytest.raises(costs.CostError, match='synthesis target "ice40"'):
        costs.check_sweep("luts", points)
    costs.check_sweep("transistors", points)
    costs.check_sweep(None, points)
    sky = parse_sweep(tiny_toml(targets=("cmos", "sky130"), power=False), "a.toml").points
    costs.check_sweep("area_um2", sky)
    with pytest.raises(costs.CostError, match="power stage"):
        costs.check_sweep("energy_sky130_pj", sky)
