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
