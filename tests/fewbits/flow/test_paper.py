"""flow.paper: the paper reproduction as training-only points of the one sweep engine."""

from __future__ import annotations

import json

from fewbits.flow import paper
from fewbits.report.data import PAPER


def test_the_table_rows_come_from_the_one_paper_table():
    rows = paper.runs(table_only=True)
    assert [r[1:] for r in rows] == [("fp32", "fp32", False), ("fp16", "fp16", False),
                                     ("fixed:20:15", "fixed:20:15", True), ("dfixed:10", "dfixed:12", True)]
    assert len(rows) == len(PAPER) and all(p["format"] in r[0] for p, r in zip(PAPER, rows))
    full = paper.runs()
    assert len(full) == len({r[1:] for r in full}) > len(rows)  # the sweeps, duplicates of table rows dropped


def test_runs_on_the_engine_and_resumes(tmp_path, capsys):
    args = ["--dataset", "digits", "--net", "mlp-small", "--epochs", "1", "--limit-train", "100", "--table-only",
            "--only", "fp32,dfixed:10", "--out", str(tmp_path / "repro")]
    paper.main(args)
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("| single") or ln.startswith("| dynamic")]
    assert len(lines) == 2 and "`dfixed:10` | `dfixed:12` | yes | 1 |" in lines[1], out
    records = sorted((tmp_path / "repro" / "stages" / "train").glob("*.json"))
    assert len(records) == 2 and all(json.loads(p.read_text())["status"] == "ok" for p in records)
    before = {p: p.read_text() for p in records}
    paper.main(args)  # everything is found in the store: nothing recomputed, the same table
    assert capsys.readouterr().out == out
    assert {p: p.read_text() for p in sorted((tmp_path / "repro" / "stages" / "train").glob("*.json"))} == before


def test_seeds_are_replicates_with_a_mean_an_interval_and_a_paired_difference(tmp_path, capsys):
    import pytest
    from scipy import stats as st

    out_dir = tmp_path / "repro"
    paper.main(["--dataset", "digits", "--net", "mlp-small", "--epochs", "1", "--limit-train", "100",
                "--limit-eval", "150", "--table-only", "--only", "fp32,dfixed:10", "--seeds", "3,4",
                "--out", str(out_dir)])
    out = capsys.readouterr().out
    recs = [json.loads(p.read_text()) for p in sorted((out_dir / "stages" / "train").glob("*.json"))]
    assert len(recs) == 4 and all(r["result"]["test_examples"] == 150 for r in recs)
    err = {(r["config"]["prop"], r["config"]["seed"]): r["result"]["test_error"] for r in recs}
    cells = {ln.split("|")[2].strip(): [c.strip() for c in ln.split("|")[1:-1]] for ln in out.splitlines()
             if ln.startswith("| single") or ln.startswith("| dynamic")}
    f, d = cells["`fp32`"], cells["`dfixed:10`"]
    assert f[5] == d[5] == "2" and f[8] == "(reference)"
    assert float(d[6]) == pytest.approx((err["dfixed:10", 3] + err["dfixed:10", 4]) / 2, abs=0.006)
    diffs = [err["dfixed:10", s] - err["fp32", s] for s in (3, 4)]
    half = st.t.ppf(0.975, 1) * abs(diffs[0] - diffs[1]) / 2 ** 0.5 / 2 ** 0.5
    mean = sum(diffs) / 2
    assert d[8] == f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]"
    assert d[9] == f"{err['dfixed:10', 3]:.2f} / {err['dfixed:10', 4]:.2f}"


def test_bad_seeds_are_one_line_and_exit_2(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit) as e:
        paper.main(["--seeds", "0,x", "--out", str(tmp_path / "r")])
    assert e.value.code == 2 and "--seeds '0,x'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_an_interrupted_regeneration_is_one_line_and_exit_130(tmp_path, capsys, monkeypatch):
    """Ctrl-C / SIGTERM reach main as the engine's Interrupted: one line (it was a traceback), status 130."""
    import pytest

    from fewbits.flow import engine

    def stopped(points, *a, **k):
        raise engine.Interrupted(1, len(points))

    monkeypatch.setattr(engine, "run_sweep", stopped)
    import signal

    monkeypatch.setattr(signal, "signal", lambda *a: None)  # exit_interrupted ignores SIGINT: not in pytest's process
    with pytest.raises(SystemExit) as e:
        paper.main(["--table-only", "--only", "fp32", "--seeds", "0,1", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert e.value.code == 130 and err == "fewbits: interrupted: 1 of 2 points finished and kept; " \
        "run the same command again to finish the rest\n"


def test_figures_draw_the_width_sweep_as_bands_over_the_stored_seeds(tmp_path, capsys):
    """--figures: the propagation-width curve of the stored runs (2 seeds); curves without two widths are not drawn."""
    import pytest

    from fewbits.flow.store import Store
    from fewbits.report import stats
    from fewbits.report.data import configurations

    out_dir, figs = tmp_path / "repro", tmp_path / "figs"
    args = ["--dataset", "digits", "--net", "mlp-small", "--epochs", "1", "--limit-train", "100", "--limit-eval", "150",
            "--only", "fp32,dfixed:6,dfixed:8", "--seeds", "0,1", "--out", str(out_dir)]
    paper.main(args + ["--figures", str(figs)])
    err = capsys.readouterr().err
    assert sorted(p.name for p in figs.iterdir()) == ["paper_error_vs_prop_width.png", "paper_error_vs_prop_width.svg"]
    assert f"figure: {figs / 'paper_error_vs_prop_width.png'}" in err
    # the rows behind it are the stored runs, and their intervals the stats module's
    todo = [r for r in paper.runs() if r[1] in ("fp32", "dfixed:6", "dfixed:8")]
    pts = [paper.point("digits", "mlp-small", 1, sd, p, u, pb, 100, None, None, 150) for _, p, u, pb in todo
           for sd in (0, 1)]
    from fewbits.flow.engine import run_sweep

    recs = run_sweep(pts, out_dir, progress=False)  # all found in the store
    rows = paper.run_rows(pts, recs, Store(out_dir))
    stored = {(json.loads(p.read_text())["config"]["prop"], json.loads(p.read_text())["config"]["seed"]):
              json.loads(p.read_text())["result"]["test_error"] for p in (out_dir / "stages" / "train").glob("*.json")}
    assert {(r["prop"], r["seed"]): r["test_error"] for r in rows} == stored
    assert {r["prop"]: r["prop_bits_paper"] for r in rows} == {"fp32": 32, "dfixed:6": 6, "dfixed:8": 8}
    for c in configurations(rows):
        iv = stats.interval([stored[c["prop"], s] for s in (0, 1)])
        assert c["n_seeds"] == 2 and (c["test_error_lo"], c["test_error_hi"]) == pytest.approx((iv.lo, iv.hi), abs=0)


def _row(family, prop, update, seed, err, pb, ub, int_bits=None, max_overflow=None):
    return {"key": f"{prop}/{update}/{max_overflow}/{seed}", "status": "ok", "dataset": "digits", "net": "mlp-small",
            "epochs": 1, "seed": seed, "family": family, "prop": prop, "update": update, "accumulator": "exact",
            "prop_bits": pb + 1, "update_bits": ub + 1, "prop_bits_paper": pb, "update_bits_paper": ub,
            "int_bits": int_bits, "max_overflow": max_overflow, "test_error": err, "test_examples": 400}


def test_figures_draw_every_curve_the_rows_hold(tmp_path):
    rows = [_row("fp32", "fp32", "fp32", s, 3.0 + s, 32, 32) for s in (0, 1)]
    rows += [_row("dfixed", f"dfixed:{w}", "dfixed:12", s, 9.0 - w / 2 + s, w, 12) for w in (6, 8) for s in (0, 1)]
    rows += [_row("dfixed", "dfixed:10", f"dfixed:{w}", s, 5.0 + s, 10, w) for w in (8, 12) for s in (0, 1)]
    rows += [_row("fixed", f"fixed:20:{20 - n}", f"fixed:20:{20 - n}", s, 4.0 + n + s, 20, 20, int_bits=n)
             for n in (3, 5) for s in (0, 1)]
    rows += [_row("dfixed", "dfixed:10", "dfixed:12", s, 4.0 + s, 10, 12, max_overflow=m) for m in (1e-4, 1e-2)
             for s in (0, 1)]
    names = [f["name"] for f in paper.figures(rows, tmp_path)]
    assert names == ["paper_error_vs_prop_width", "paper_error_vs_update_width", "paper_error_vs_radix",
                     "paper_error_vs_max_overflow"]
    assert paper.figures([r for r in rows if r["family"] == "fp32"], tmp_path / "none") == []
