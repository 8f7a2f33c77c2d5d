"""``fewbits sweep`` + ``fewbits report`` on a user's model file (``networks = ["lenet.py:lenet"]``):
real training on digits, the MAC array of the model's largest layer, its capture co-simulated on Icarus."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from fewbits import cli

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SWEEP = """\
name = "lenet-digits"
datasets = ["digits"]
networks = ["models/lenet.py:lenet"]
epochs = 1
seeds = [0]

[train]
limit_train = 300

[cosim]
vectors = 2
max_tiles = 4

[synth]
targets = []

[power]
enabled = false

[[grid]]
family = "dfixed"
widths = [10]
update_widths = [12]
"""


def test_a_sweep_and_its_report_run_on_a_model_file(tmp_path):
    (tmp_path / "models").mkdir()
    shutil.copy(EXAMPLES / "lenet.py", tmp_path / "models" / "lenet.py")
    (tmp_path / "sweep.toml").write_text(SWEEP)
    results = tmp_path / "results"
    r = CliRunner().invoke(cli.main, ["sweep", str(tmp_path / "sweep.toml"), "--results", str(results), "--quiet"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert f"running model code from {(tmp_path / 'models' / 'lenet.py').resolve()}" in r.stderr
    assert "1 ok, 0 partial" in r.stdout, r.output
    recs = {json.loads(p.read_text())["label"]: json.loads(p.read_text()) for p in (results / "points").glob("*.json")}
    dfx = recs["dfixed:10 / dfixed:12 (ovf 0.0001)"]
    assert dfx["config"]["hardware"] == {"rows": 2, "cols": 2, "k_max": 150}  # LeNet's conv 6 -> 16, 5x5
    assert 0 <= dfx["stages"]["train"]["summary"]["test_error"] <= 100.0  # trained (6 steps: no figure to check)
    cosim = json.loads((results / dfx["stages"]["cosim"]["summary"]["report"]).read_text())
    assert cosim["ok"] and cosim["capture_elements_checked"] > 0 and cosim["capture_mismatches"] == 0
    train = json.loads((results / "stages" / "train" / f"{dfx['stages']['train']['key']}.json").read_text())
    cap = json.loads((results / train["result"]["capture"] / "capture.json").read_text())
    assert {m["layer"] for m in cap["matmuls"]} == {"features.3"}  # the largest layer is captured
    r = CliRunner().invoke(cli.main, ["report", str(results), "-o", str(tmp_path / "report")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "models/lenet.py:lenet" in (tmp_path / "report" / "index.html").read_text()
