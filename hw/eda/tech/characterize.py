"""Decks for one cell's measurements and the Liberty-ready numbers they give.

Why separate from ``spice``: that module knows ngspice; this one knows what a Liberty needs.
A *job* is one deck (every arc of a combinational cell, or one flip-flop measurement: loading
the models costs as much as the transient, so a cell's arcs share one run); ``build`` runs
jobs in parallel and ``merge`` folds their results into one record per cell.
Units out: ns, pF, pJ, nW (the Liberty header's units).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from fewbits.hw.eda.tech import spice
from fewbits.hw.eda.tech.pdk import CellInfo, cell


@dataclass(frozen=True)
class Settings:
    # ns (20-80 %) and pF: points of the published sky130_fd_sc_hd 7x7 index, so that the tables compare
    slews: tuple = (0.01, 0.1224745, 0.6507428)
    loads: tuple = (0.0005, 0.003565333, 0.0254232)
    vdd: float = 1.8
    temp: float = 25.0
    setup_grid: tuple = tuple(round(-0.05 + 0.05 * k, 3) for k in range(7))  # ns, D 50 % before CLK 50 %
    other_load: float = 0.0005               # pF on outputs not being measured
    tstep: float = 0.05                      # ns: .tran step; the local-error control refines the edges
                                             # (delays within 0.5 % of a 10 ps step at 1/4 of the timepoints)


def jobs(short: str) -> list[tuple[str, str]]:
    """The decks one cell needs: ('pin:A', ...) per input of a combinational cell (the first also
    holds the leakage states), ('ff:part') for a flip-flop.  One deck per input: every instance of a
    deck shares its time steps, so a deck of fa_1's 116 instances steps as finely as its busiest one
    and took 2 CPU-minutes; three decks of a third each take a fraction of that, and run in parallel."""
    info = cell(short)
    if info.ff:
        return [(short, "ff:clk2q"), (short, "ff:setup_rise"), (short, "ff:setup_fall")]
    return [(short, f"pin:{p}") for p in info.inputs]


def _tstop(s: Settings, t_edge: float) -> float:
    return t_edge + max(s.slews) / 0.6 + spice.SETTLE


def _delay_and_slew(i: int, trig: str, in_edge: str, out: str, out_rise: bool, td: str = "") -> list[str]:
    """``.meas`` of instance ``i``: delay 50 %→50 % from ``trig`` to ``out`` and ``out``'s 20–80 % slew."""
    oe = "RISE" if out_rise else "FALL"
    lo, hi = (0.2, 0.8) if out_rise else (0.8, 0.2)
    return [f".meas tran d{i} TRIG {trig} VAL={{vdd/2}}{td} {in_edge}=1 TARG {out} VAL={{vdd/2}}{td} {oe}=1",
            f".meas tran t{i} TRIG {out} VAL={{vdd*{lo}}}{td} {oe}=1 TARG {out} VAL={{vdd*{hi}}}{td} {oe}=1"]


def deck_pin(info: CellInfo, pin: str, s: Settings, with_leakage: bool, d: spice.Deck):
    """Arcs from ``pin`` to every output it controls, added to ``d``: instance per (output, slew, load, edge)."""
    tstop = _tstop(s, spice.T0)
    if not d.n:
        d.add("Vhi hi 0 {vdd}")
    plan = []
    for out in info.outputs:
        side, inverting = spice.sensitize(info, pin, out)
        if side is None:
            continue
        for (si, slew), (li, load), rise in itertools.product(enumerate(s.slews), enumerate(s.loads), (1, 0)):
            i = d.n
            nets = {p: ("hi" if v else "0") for p, v in side.items() if p != pin}
            nets[pin] = f"a{i}"
            for o in info.outputs:
                nets[o] = f"y{i}_{o}"
            d.inst(info, nets)
            d.add(f"Va{i} a{i} 0 {spice.ramp(spice.T0, slew, 1 - rise, rise, s.vdd)}")
            for o in info.outputs:
                d.add(f"Cl{i}_{o} y{i}_{o} 0 {load if o == out else s.other_load}p")
            orise = rise != inverting
            d.meas += [
                *_delay_and_slew(i, f"v(a{i})", "RISE" if rise else "FALL", f"v(y{i}_{out})", orise),
                f".meas tran q{i} INTEG i(Vp{i}) FROM=0 TO={tstop}n",
                f".meas tran l{i} FIND i(Vp{i}) AT={spice.T0 / 2}n",
                f".meas tran c{i} INTEG i(Va{i}) FROM=0 TO={tstop}n",
            ]
            plan.append({"i": i, "out": out, "slew": si, "load": li, "in_rise": rise, "out_rise": orise,
                         "inverting": inverting})
    leak = []
    if with_leakage:
        for vec in itertools.product((0, 1), repeat=len(info.inputs)):
            i = d.n
            nets = {p: ("hi" if v else "0") for p, v in zip(info.inputs, vec)}
            for o in info.outputs:
                nets[o] = f"y{i}_{o}"
            d.inst(info, nets)
            d.meas.append(f".meas tran k{i} FIND i(Vp{i}) AT={tstop / 2}n")
            leak.append({"i": i, "vec": vec})
    return d, tstop, plan, leak


def pin_results(info: CellInfo, s: Settings, plan, leak, m: dict, tstop: float) -> dict:
    """Measurements -> {'arcs': {out: {table: 3x3}}, 'cap': pF, 'leak': {vec: nW}}."""
    v = s.vdd
    arcs, caps = {}, []
    for p in plan:
        i = p["i"]
        for k in ("d", "t", "q", "l", "c"):
            if f"{k}{i}" not in m:
                raise RuntimeError(f"{info.short}: measurement {k}{i} failed (see ngspice.log)")
        a = arcs.setdefault(p["out"], {"inverting": p["inverting"]})
        e = -(m[f"q{i}"] - m[f"l{i}"] * tstop * 1e-9) * v          # J from this instance's supply
        if p["out_rise"]:
            e -= s.loads[p["load"]] * 1e-12 * v * v                  # the load's C·V², not internal
        kind = "rise" if p["out_rise"] else "fall"
        for name, val in ((f"cell_{kind}", m[f"d{i}"] * 1e9), (f"{kind}_transition", m[f"t{i}"] * 1e9),
                          (f"{kind}_power", e * 1e12)):
            a.setdefault(name, [[None] * len(s.loads) for _ in s.slews])[p["slew"]][p["load"]] = val
        caps.append(abs(m[f"c{i}"]) / v * 1e12)
    return {"arcs": arcs, "cap": sum(caps) / len(caps) if caps else 0.0,
            "leak": {"".join(map(str, q["vec"])): -m[f"k{q['i']}"] * v * 1e9 for q in leak}}


def _clock_pulses(t_first: float, t1: float, slew: float, vdd: float, t_fall: float | None = None) -> str:
    """CLK: a fast pulse at ``t_first`` (sets Q), then a rising edge of ``slew`` at ``t1`` (and a fall)."""
    f = 0.02
    full = slew / 0.6
    pts = [(0, 0), (t_first, 0), (t_first + f, 1), (t_first + 0.5, 1), (t_first + 0.5 + f, 0),
           (t1, 0), (t1 + full, 1)]
    if t_fall is not None:
        pts += [(t_fall, 1), (t_fall + full, 0)]
    return "PWL(" + " ".join(f"{t:.6f}n {x * vdd}" for t, x in pts) + ")"


def _edge(t: float, slew: float, v0: int, vdd: float) -> str:
    full = slew / 0.6
    return f"PWL(0 {v0 * vdd} {t:.6f}n {v0 * vdd} {t + full:.6f}n {(1 - v0) * vdd})"


T1 = 1.5  # ns: the measured clock edge


def deck_ff(info: CellInfo, part: str, s: Settings):
    """``clk2q``: CLK->Q tables, Q energy, clock-pin energy, pin caps; ``setup_rise``/``setup_fall``:
    the D-before-CLK sweep for a rising/falling D (two decks: they run in parallel with the rest)."""
    ck, dp, q = info.ff["clock"], info.ff["data"], info.ff["q"]
    d = spice.Deck()
    plan = []
    t2 = T1 + 2.0
    tstop = _tstop(s, t2 if part == "clk2q" else T1)
    dslew = s.slews[1]
    if part == "clk2q":
        for (si, slew), (li, load), dv in itertools.product(enumerate(s.slews), enumerate(s.loads), (1, 0)):
            i = d.inst(info, {ck: f"ck{d.n}", dp: f"dd{d.n}", q: f"q{d.n}"})
            d.add(f"Vc{i} ck{i} 0 {_clock_pulses(0.1, T1, slew, s.vdd)}")
            d.add(f"Vd{i} dd{i} 0 {_edge(0.8, 0.02, 1 - dv, s.vdd)}")
            d.add(f"Cq{i} q{i} 0 {load}p")
            d.meas += [
                *_delay_and_slew(i, f"v(ck{i})", "RISE", f"v(q{i})", bool(dv), td=f" TD={T1}n"),
                f".meas tran q{i} INTEG i(Vp{i}) FROM={T1 - 0.05}n TO={T1 + 1.9}n",
                f".meas tran l{i} FIND i(Vp{i}) AT={T1 - 0.1}n",
                f".meas tran cd{i} INTEG i(Vd{i}) FROM=0.75n TO={T1 - 0.1}n",
            ]
            plan.append({"i": i, "kind": "clk2q", "slew": si, "load": li, "out_rise": bool(dv)})
        for si, slew in enumerate(s.slews):   # clock energy with Q steady (D = Q = 0)
            i = d.inst(info, {ck: f"ck{d.n}", dp: "0", q: f"q{d.n}"})
            d.add(f"Vc{i} ck{i} 0 {_clock_pulses(0.1, T1, slew, s.vdd, t_fall=t2)}")
            d.add(f"Cq{i} q{i} 0 {s.loads[0]}p")
            d.meas += [
                f".meas tran er{i} INTEG i(Vp{i}) FROM={T1 - 0.05}n TO={t2 - 0.05}n",
                f".meas tran ef{i} INTEG i(Vp{i}) FROM={t2 - 0.05}n TO={t2 + 1.9}n",
                f".meas tran l{i} FIND i(Vp{i}) AT={T1 - 0.1}n",
                f".meas tran cc{i} INTEG i(Vc{i}) FROM={T1 - 0.05}n TO={t2 - 0.05}n",
            ]
            plan.append({"i": i, "kind": "clock", "slew": si})
    else:
        dv = int(part == "setup_rise")
        for (si, slew), off in itertools.product(enumerate(s.slews), s.setup_grid):
            i = d.inst(info, {ck: f"ck{d.n}", dp: f"dd{d.n}", q: f"q{d.n}"})
            full_c, full_d = slew / 0.6, dslew / 0.6
            td = T1 + 0.5 * full_c - off - 0.5 * full_d
            d.add(f"Vc{i} ck{i} 0 {_clock_pulses(0.1, T1, slew, s.vdd)}")
            d.add(f"Vd{i} dd{i} 0 {_edge(td, dslew, 1 - dv, s.vdd)}")
            d.add(f"Cq{i} q{i} 0 {s.loads[1]}p")
            oe = "RISE" if dv else "FALL"
            d.meas.append(f".meas tran d{i} TRIG v(ck{i}) VAL={{vdd/2}} TD={T1}n RISE=1 "
                          f"TARG v(q{i}) VAL={{vdd/2}} TD={T1}n {oe}=1")
            plan.append({"i": i, "kind": "setup", "slew": si, "d_rise": bool(dv), "off": off})
    return d, tstop, plan


def ff_results(s: Settings, part: str, plan, m: dict) -> dict:
    v = s.vdd
    r: dict = {}
    if part == "clk2q":
        grid = lambda: [[None] * len(s.loads) for _ in s.slews]  # noqa: E731
        cd, cc = [], []
        for p in plan:
            i = p["i"]
            if p["kind"] == "clock":
                leak = m[f"l{i}"]
                er = -(m[f"er{i}"] - leak * (2.0e-9)) * v * 1e12
                ef = -(m[f"ef{i}"] - leak * (1.95e-9)) * v * 1e12
                r.setdefault("clock_rise_power", [None] * len(s.slews))[p["slew"]] = er
                r.setdefault("clock_fall_power", [None] * len(s.slews))[p["slew"]] = ef
                cc.append(abs(m[f"cc{i}"]) / v * 1e12)
                continue
            kind = "rise" if p["out_rise"] else "fall"
            e = -(m[f"q{i}"] - m[f"l{i}"] * 1.95e-9) * v
            if p["out_rise"]:
                e -= s.loads[p["load"]] * 1e-12 * v * v
            for name, val in ((f"cell_{kind}", m[f"d{i}"] * 1e9), (f"{kind}_transition", m[f"t{i}"] * 1e9),
                              (f"{kind}_power", e * 1e12)):
                r.setdefault(name, grid())[p["slew"]][p["load"]] = val
            cd.append(abs(m[f"cd{i}"]) / v * 1e12)
        r["cap_data"] = sum(cd) / len(cd)
        r["cap_clock"] = sum(cc) / len(cc)
        return r
    # setup: smallest D-before-CLK time whose clock-to-Q is within 10 % of the relaxed one
    rise = part == "setup_rise"
    vals = []
    for si in range(len(s.slews)):
        pts = sorted((p["off"], m.get(f"d{p['i']}")) for p in plan if p["slew"] == si)
        ref = pts[-1][1]
        if ref is None:
            raise RuntimeError("setup sweep: D never captured even at the largest offset")
        # the smallest offset from which every larger offset also passes
        best = pts[-1][0]
        for off, dl in reversed(pts):
            if dl is None or dl > 1.1 * ref:
                break
            best = off
        vals.append(best)
    return {"rise_constraint" if rise else "fall_constraint": vals}
