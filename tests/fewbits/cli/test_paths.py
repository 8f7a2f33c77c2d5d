"""Every command's output folder is checked before any work: below a file, or a file itself, is one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

ARRAY = ["--rows", "1", "--cols", "1", "--a", "fixed:4:0", "--b", "fixed:4:0", "--out", "fixed:4:0"]
COMMANDS = {
    "train": lambda o: ["train", "--epochs", "1", "--out", o],
    "verilog": lambda o: ["verilog", *ARRAY, "-o", o],
    "cosim": lambda o: ["cosim", *ARRAY, "-o", o],
    "synth": lambda o: ["synth", "design", "-o", o],
    "power": lambda o: ["power", "design", "-o", o],
    "sweep": lambda o: ["sweep", "sweep.toml", "--results", o],
    "report": lambda o: ["report", "results", "-o", o],
    "demo": lambda o: ["demo", "-o", o],
}


@pytest.mark.parametrize("where", ["below-a-file", "is-a-file"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_unusable_output_folder_is_one_line(tmp_path, command, where):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me\n")
    out = blocker / "out" if where == "below-a-file" else blocker
    proc = subprocess.run([sys.executable, "-m", "fewbits", *COMMANDS[command](str(out))], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("fewbits: error:") and str(blocker) in lines[0] and "Traceback" not in proc.stderr
    assert "file" in lines[0] or "not a folder" in lines[0]
    assert blocker.read_text() == "keep me\n" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
