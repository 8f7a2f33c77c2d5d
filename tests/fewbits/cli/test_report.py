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
