"""``fewbits report`` refuses an output folder inside the results store (it would write into the store)."""

from __future__ import annotations

import subprocess
import sys


def _snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_report_inside_the_store_is_refused(tmp_path):
    store = tmp_path / "results"
    (store / "points").mkdir(parents=True)
    (store / "points" / "abc.json").write_text('{"key": "abc"}\n')
    before = _snapshot(store)
    for out in (store, store / "report", store / "points" / "r"):
        proc = subprocess.run([sys.executable, "-m", "fewbits", "report", str(store), "-o", str(out)],
                              capture_output=True, text=True, timeout=120)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert lines[0].startswith("fewbits: error:") and "inside the results store" in lines[0]
        assert "Traceback" not in proc.stderr
    assert _snapshot(store) == before


def test_a_bad_rule_is_one_line(tmp_path):
    (tmp_path / "results" / "points").mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-m", "fewbits", "report", str(tmp_path / "results"), "-o",
                           str(tmp_path / "rep"), "--rule", "luckiest"], capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("fewbits: error:"), proc.stderr
    assert "luckiest" in lines[0] and "confidence" in lines[0] and not (tmp_path / "rep").exists()
