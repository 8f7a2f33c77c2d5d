"""Write the characterized cells as a Liberty file (NLDM tables, internal energy, leakage).

Why: Yosys (``dfflibmap``, ``abc -liberty``, ``stat -liberty``) and fewbits' own Liberty power
path read this format; the numbers come only from ``characterize``.
"""

from __future__ import annotations


def _row(vals) -> str:
    return ", ".join(f"{v:.6g}" for v in vals)


def _table(name: str, tmpl: str, grid, ind: str) -> list[str]:
    rows = ", \\\n".join(f'{ind}    "{_row(r)}"' for r in grid)
    return [f"{ind}{name} ({tmpl}) {{", f"{ind}  values ( \\\n{rows} );", f"{ind}}}"]


def write(cells: list[dict], s, name: str, comment: str) -> str:
    """Liberty text for ``cells`` (records of ``build``), with the settings ``s`` as indices."""
    sl, ld = _row(s.slews), _row(s.loads)
    out = [f"/* {comment} */", f"library ({name}) {{",
           "  delay_model : table_lookup;", '  time_unit : "1ns";', '  voltage_unit : "1V";',
           '  current_unit : "1mA";', '  leakage_power_unit : "1nW";', "  capacitive_load_unit (1, pf);",
           '  pulling_resistance_unit : "1kohm";', f"  nom_voltage : {s.vdd};", f"  nom_temperature : {s.temp};",
           "  nom_process : 1;",
           *[f"  {k}_threshold_pct_{e} : 50;" for k in ("input", "output") for e in ("rise", "fall")],
           *[f"  slew_{b}_threshold_pct_{e} : {p};" for b, p in (("lower", 20), ("upper", 80)) for e in ("rise", "fall")],
           "  lu_table_template (delay_3x3) {", "    variable_1 : input_net_transition;",
           "    variable_2 : total_output_net_capacitance;", f'    index_1 ("{sl}");', f'    index_2 ("{ld}");', "  }",
           "  power_lut_template (energy_3x3) {", "    variable_1 : input_transition_time;",
           "    variable_2 : total_output_net_capacitance;", f'    index_1 ("{sl}");', f'    index_2 ("{ld}");', "  }",
           "  power_lut_template (energy_1d) {", "    variable_1 : input_transition_time;", f'    index_1 ("{sl}");', "  }",
           "  lu_table_template (constraint_1d) {", "    variable_1 : related_pin_transition;", f'    index_1 ("{sl}");',
           "  }"]
    for c in cells:
        out += [f"  cell ({c['name']}) {{", f"    area : {c['area']:.6f};",
                f"    cell_leakage_power : {c['leakage']:.6g};"]
        for vec, nw in sorted(c.get("leak_states", {}).items()):
            when = "&".join(p if b == "1" else f"!{p}" for p, b in zip(c["inputs"], vec))
            out += [f'    leakage_power () {{ when : "{when}"; value : {nw:.6g}; }}']
        if c.get("ff"):
            f = c["ff"]
            out += ['    ff (IQ, IQN) {', f'      clocked_on : "{f["clock"]}";', f'      next_state : "{f["data"]}";', "    }"]
        for p, cap in c["caps"].items():
            out += [f"    pin ({p}) {{", "      direction : input;", f"      capacitance : {cap:.6g};"]
            if c.get("ff") and p == c["ff"]["clock"]:
                out += ["      clock : true;", "      internal_power () {",
                        *_table("rise_power", "energy_1d", [c["ff"]["clock_rise_power"]], "        "),
                        *_table("fall_power", "energy_1d", [c["ff"]["clock_fall_power"]], "        "), "      }"]
            if c.get("ff") and p == c["ff"]["data"]:
                out += ["      timing () {", f'        related_pin : "{c["ff"]["clock"]}";',
                        "        timing_type : setup_rising;",
                        *_table("rise_constraint", "constraint_1d", [c["ff"]["rise_constraint"]], "        "),
                        *_table("fall_constraint", "constraint_1d", [c["ff"]["fall_constraint"]], "        "),
                        "      }"]
            out += ["    }"]
        for o, od in c["outputs"].items():
            out += [f"    pin ({o}) {{", "      direction : output;", f'      function : "{od["function"]}";',
                    f"      max_capacitance : {max(s.loads):.6g};"]
            for arc in od["arcs"]:
                ttype = ["        timing_type : rising_edge;"] if arc.get("edge") else []
                out += ["      timing () {", f'        related_pin : "{arc["related"]}";',
                        f"        timing_sense : {arc['sense']};", *ttype]
                for t in ("cell_rise", "rise_transition", "cell_fall", "fall_transition"):
                    out += _table(t, "delay_3x3", arc[t], "        ")
                out += ["      }", "      internal_power () {", f'        related_pin : "{arc["related"]}";',
                        *_table("rise_power", "energy_3x3", arc["rise_power"], "        "),
                        *_table("fall_power", "energy_3x3", arc["fall_power"], "        "), "      }"]
            out += ["    }"]
        out += ["  }"]
    out += ["}", ""]
    return "\n".join(out)
