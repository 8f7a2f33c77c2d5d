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
