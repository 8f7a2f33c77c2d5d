"""``fewbits train``: a real small run writes its outputs; bad input is one line, no traceback."""

import json

import pytest
import torch
from click.testing import CliRunner

from fewbits.cli import main


def _run(args):
    return CliRunner().invoke(main, ["train", *args], catch_exceptions=False)


def test_train_writes_result_checkpoint_and_capture(tmp_path):
    out = tmp_path / "run"
    r = _run(["--prop", "dfixed:10", "--update", "dfixed:12", "--paper-bits", "--epochs", "1",
              "--seed", "4", "--out", str(out), "--capture", "L1", "--quiet"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    res = json.loads((out / "result.json").read_text())
    assert summary["test_error"] == res["test_error"]
    assert res["config"]["paper_bits"] is True and res["formats"]["prop"].startswith("dfixed:11")
    torch.load(out / "checkpoint.pt", weights_only=True)
    from fewbits.sim.capture import replay

    assert all(replay(out / "capture").values())
    # resume of a finished run: nothing more to do, same result
    r2 = _run(["--prop", "dfixed:10", "--update", "dfixed:12", "--paper-bits", "--epochs", "1",
               "--seed", "4", "--out", str(out), "--capture", "L1", "--quiet", "--resume"])
    assert r2.exit_code == 0 and json.loads(r2.stdout.strip().splitlines()[-1])["test_error"] == res["test_error"]


@pytest.mark.parametrize("args,needle", [
    (["--prop", "dfixed:x"], "dfixed:x"),
    (["--update", "fixed:8"], "fixed:8"),
    (["--net", "resnet"], "accepted mlp-small"),
    (["--dataset", "imagenet"], "accepted digits"),
    (["--dataset", "mnist"], "--data-dir"),
    (["--dataset", "cifar10", "--data-dir", "/nonexistent"], "not a folder"),
    (["--resume"], "--out"),
    (["--capture", "L9", "--out", "OUT"], "L9"),
    (["--epochs", "0"], "epochs"),
    (["--capture", "L1", "--capture-step", "100000", "--out", "OUT"], "never reached"),
    (["--net", "mnist-conv"], "cannot take the data set's 8x8 images"),  # torch failed mid-forward before
])
def test_bad_input_is_one_line(tmp_path, args, needle):
    args = [str(tmp_path) if a == "OUT" else a for a in args]
    r = CliRunner().invoke(main, ["train", *args])
    assert r.exit_code == 2, r.stderr  # the README's promise: bad input exits 2
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("fewbits: error:"), r.stderr
    assert "Traceback" not in r.output


def test_help_lists_the_options():
    r = _run(["--help"])
    for opt in ("--prop", "--update", "--paper-bits", "--max-overflow", "--range-every", "--range-warmup",
                "--resume", "--capture", "--quiet", "--data-dir", "--seed"):
        assert opt in r.output


def _snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _one_line_error(r, *needles):
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("fewbits: error:"), r.stderr
    assert all(n in lines[0] for n in needles), lines[0]
    assert "Traceback" not in r.output


def test_a_previous_run_is_kept_unless_resumed_or_forced(tmp_path):
    out = tmp_path / "run"
    base = ["--epochs", "1", "--quiet", "--out", str(out)]
    assert _run([*base, "--seed", "1", "--capture", "L1"]).exit_code == 0
    before = _snapshot(out)
    r = CliRunner().invoke(main, ["train", *base, "--seed", "2"])
    _one_line_error(r, str(out), "holds a previous run", "result.json", "--resume", "--force")
    assert _snapshot(out) == before
    r = _run([*base, "--seed", "2", "--force"])
    assert r.exit_code == 0, r.output
    assert not (out / "capture").exists(), "a stale capture of the old run stayed beside the new result"
    assert json.loads((out / "result.json").read_text())["config"]["seed"] == 2


@pytest.mark.parametrize("damage", ["truncated", "foreign", "folder"])
def test_resume_from_a_bad_checkpoint_is_one_line(tmp_path, damage):
    out = tmp_path / "run"
    base = ["--epochs", "1", "--quiet", "--out", str(out)]
    assert _run(base).exit_code == 0
    ck = out / "checkpoint.pt"
    if damage == "truncated":
        ck.write_bytes(ck.read_bytes()[:1000])
    elif damage == "foreign":
        torch.save({"weights": torch.zeros(3)}, ck)
    else:
        ck.unlink()
        ck.mkdir()
    before = _snapshot(out)
    r = CliRunner().invoke(main, ["train", *base, "--resume"])
    _one_line_error(r, str(ck), "cannot resume", {"truncated": "not a readable checkpoint",
                                                    "foreign": "foreign or damaged", "folder": "a folder"}[damage])
    assert _snapshot(out) == before


# ---- --model FILE.py:FUNCTION --------------------------------------------------------------
from .helpers import EXAMPLES  # noqa: E402

LENET = f"{EXAMPLES / 'lenet.py'}:lenet"


@pytest.mark.parametrize("name", ["lenet", "resnet_small"])
def test_the_examples_train_through_model(tmp_path, name):
    """One real epoch of each example on digits at dynamic fixed point 10/12; result.json names the model."""
    out = tmp_path / "run"
    r = _run(["--model", f"{EXAMPLES / (name + '.py')}:{name}", "--prop", "dfixed:10", "--update", "dfixed:12",
              "--paper-bits", "--epochs", "1", "--batch-size", "100", "--seed", "2", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "result.json").read_text())
    assert res["model"]["function"] == name and res["model"]["path"] == str(EXAMPLES / f"{name}.py")
    assert res["config"]["model"] == f"{EXAMPLES / (name + '.py')}:{name}" and res["config"]["net"] is None
    assert 0 <= res["test_error"] < 90.0  # it learns something in one epoch (chance: 90 %)


def test_model_runs_are_deterministic_and_resume_to_the_same_parameters(tmp_path):
    base = ["--model", LENET, "--prop", "dfixed:10", "--update", "dfixed:12", "--paper-bits", "--seed", "5",
            "--batch-size", "100", "--quiet"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run([*base, "--epochs", "2", "--out", str(a)]).exit_code == 0
    assert _run([*base, "--epochs", "1", "--out", str(b)]).exit_code == 0
    r = _run([*base, "--epochs", "2", "--out", str(b), "--resume"])  # the second epoch from the checkpoint
    assert r.exit_code == 0, r.output
    sa = torch.load(a / "checkpoint.pt", weights_only=True)
    sb = torch.load(b / "checkpoint.pt", weights_only=True)
    assert sa["model"].keys() == sb["model"].keys() and any(k.startswith("sgd.") for k in sa["model"])
    assert all(torch.equal(sa["model"][k], sb["model"][k]) for k in sa["model"])
    assert json.loads((a / "result.json").read_text())["test_error"] == \
        json.loads((b / "result.json").read_text())["test_error"]


def test_model_capture_records_the_run_spec_of_its_largest_layer(tmp_path):
    out = tmp_path / "run"
    r = _run(["--model", LENET, "--prop", "fixed:12:8", "--update", "fixed:16:12", "--epochs", "1",
              "--batch-size", "100", "--capture", "classifier.4,features.0", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    from fewbits.sim.capture import read_capture, recorded_spec, replay

    cap = read_capture(out / "capture")
    spec = recorded_spec(cap)
    assert (spec.rows, spec.cols, spec.k_max) == (2, 2, 150) and str(spec.prop) == "fixed:12:8"
    assert {m.layer for m in cap.matmuls} == {"classifier.4", "features.0"}
    assert all(replay(out / "capture").values())


MODELS_PY = (
    "import torch\nfrom torch import nn\nthree = 3\n"
    "def tensor(s, n):\n    return torch.zeros(3)\n"
    "def small(s, n):\n    return nn.Linear(5, n)\n"
    "def good(s, n):\n    return nn.Sequential(nn.Flatten(), nn.Linear(64, n))\n"
    "class R(nn.Module):\n    def __init__(self, n):\n        super().__init__()\n"
    "        self.rnn = nn.RNN(8, 4)\n        self.fc = nn.Linear(4, n)\n"
    "    def forward(self, x):\n        return self.fc(self.rnn(x.reshape(-1, 8, 8))[0][:, -1])\n"
    "def rnn(s, n):\n    return R(n)\n")


@pytest.mark.parametrize("args,needle", [
    (["--model", "MODELS/m.py:nope"], "defines no 'nope'"),
    (["--model", "MODELS/m.py:three"], "is a int, not a function"),
    (["--model", "MODELS/m.py:tensor"], "returned a Tensor, not an nn.Module"),
    (["--model", "MODELS/m.py:small"], "fails on a batch of input shape (2, 1, 8, 8)"),
    (["--model", "MODELS/m.py:rnn"], "cannot put rnn (RNN) under the MAC contract"),
    (["--model", "MODELS/absent.py:net"], "no such file"),
    (["--model", "MODELS/m.py"], "accepted FILE.py:FUNCTION"),
    (["--model", "MODELS/m.py:good", "--net", "pi-mlp"], "--net and --model are alternatives"),
    (["--model", "MODELS/m.py:good", "--capture", "fc9", "--out", "OUT"], "this model has 1"),
    (["--model", "MODELS/m.py:rnn", "--keep-float", "rnm"], "keep_float names no module: 'rnm'"),
    (["--net", "pi-mlp", "--keep-float", "L0"], "--keep-float applies to --model"),
])
def test_bad_model_is_one_line(tmp_path, args, needle):
    models = tmp_path / "models"
    models.mkdir()
    (models / "m.py").write_text(MODELS_PY)
    args = [str(tmp_path / "out") if a == "OUT" else a.replace("MODELS", str(models)) for a in args]
    r = CliRunner().invoke(main, ["train", *args])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fewbits: error: ") and needle in lines[0], r.stderr
    assert "Traceback" not in r.output


def test_keep_float_trains_a_model_with_an_unsupported_layer_and_states_it(tmp_path):
    """An nn.RNN refused under the contract trains once listed in --keep-float; result and summary name it."""
    (tmp_path / "m.py").write_text(MODELS_PY)
    out = tmp_path / "run"
    r = _run(["--model", f"{tmp_path / 'm.py'}:rnn", "--keep-float", "rnn", "--prop", "fixed:12:6",
              "--update", "fixed:16:10", "--epochs", "1", "--seed", "3", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["keep_float"] == ["rnn"]
    res = json.loads((out / "result.json").read_text())
    assert res["config"]["keep_float"] == ["rnn"] and res["model"]["keep_float"] == ["rnn"]
    assert set(res["model"]["sites"]) == {"fc"}  # the RNN ran in float: only the linear layer is a MAC site
