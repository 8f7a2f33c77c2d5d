"""The sweep engine on real stages: every stage, caching, failures, a real SIGKILL, a real Dask cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fewbits.flow import stages as st
from fewbits.flow.config import parse_sweep
from fewbits.flow.engine import point_key, run_sweep, stage_key
from fewbits.flow.store import Store

from ..conftest import tiny_toml

STAGES = ["train", "verilog", "cosim", "synth.cmos", "synth.multiplier.cmos", "power"]


def stage_records(root: Path) -> dict:
    """Every stage record of a store: relative path -> parsed JSON (a truncated file fails here)."""
    return {str(p.relative_to(root)): json.loads(p.read_text()) for p in sorted((root / "stages").glob("*/*.json"))}


def test_every_stage_runs_and_the_failed_point_is_recorded(tiny_sweep):
    root, points, records = tiny_sweep
    good, bad = records[:2], records[2]
    for rec in good:
        assert rec["status"] == "ok", rec
        assert [n for n in rec["stages"]] == STAGES
        assert all(s["status"] == "ok" for s in rec["stages"].values()), rec["stages"]
    assert bad["status"] == "failed"
    assert bad["failed_stage"] == "train"
    assert "no-such-dir" in bad["reason"]
    assert {s["status"] for n, s in bad["stages"].items() if n != "train"} == {"skipped"}
    store = Store(root)
    for rec in good:  # co-simulation really ran on the training capture
        cos = store.get_stage("cosim", rec["stages"]["cosim"]["key"])["result"]
        assert cos["ok"] and cos["capture_elements_checked"] > 0 and cos["mismatches"] == 0
        assert (root / cos["report"]).is_file()
        assert store.get_point(rec["key"]) == rec


def test_rerun_recomputes_nothing(tiny_sweep):
    root, points, _ = tiny_sweep
    before = stage_records(root)
    t0 = time.time()
    again = run_sweep(points, root, workers=1, progress=False)
    assert time.time() - t0 < 5
    assert stage_records(root) == before  # same records, same finished_at: nothing recomputed
    assert [r["status"] for r in again] == ["ok", "ok", "failed"]


def test_changing_only_the_synthesis_target_keeps_upstream_keys():
    a = parse_sweep(tiny_toml(targets=("cmos",)), "a.toml").points[0]
    b = parse_sweep(tiny_toml(targets=("ice40",)), "b.toml").points[0]

    def keys(point):
        out = {}
        for inst in st.plan(point):
            out[inst.name] = stage_key(inst, out)
        return out

    ka, kb = keys(a), keys(b)
    assert point_key(a) != point_key(b)
    for name in ("train", "verilog", "cosim", "power"):
        assert ka[name] == kb[name], name
    assert "synth.cmos" in ka and "synth.ice40" in kb
    # and a different width changes everything downstream of the format
    c = parse_sweep(tiny_toml(fixed_width=9), "c.toml").points[0]
    kc = keys(c)
    assert all(kc[n] != ka[n] for n in ("train", "verilog", "cosim", "synth.cmos", "power"))


def test_new_synthesis_target_reuses_training(tiny_sweep, tmp_path):
    """A real re-run with an extra target: training, Verilog, co-sim and power records are re-used as they are."""
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(tiny_sweep[0], root)  # the shared store stays as the other tests expect it
    before = stage_records(root)
    pts = parse_sweep(tiny_toml(targets=("cmos", "ice40"), parts=("multiplier",)), "t.toml").points[:1]
    rec = run_sweep(pts, root, workers=1, progress=False)[0]
    assert rec["status"] == "ok" and rec["stages"]["synth.ice40"]["status"] == "ok"
    after = stage_records(root)
    for k, v in before.items():
        assert after[k] == v
    new = [k for k in after if k not in before]
    assert len(new) == 1 and new[0].startswith("stages/synth/")
    assert after[new[0]]["config"] == {"target": "ice40"}


def _sweep_cmd(cfg: Path, results: Path, *extra) -> list[str]:
    return [sys.executable, "-m", "fewbits", "sweep", str(cfg), "--results", str(results), "--quiet", *extra]


def _env(tmp_path) -> dict:
    return {**os.environ, "FEWBITS_CACHE": os.environ["FEWBITS_CACHE"], "PYTHONUNBUFFERED": "1"}


# enough training per point (fast since training's compiled paths) that a signal sent when the first
# point is done still lands mid-sweep on a loaded machine
RESUME_TOML = tiny_toml(epochs=6, limit=400, cosim=False, power=False, targets=(), extra='\n[[grid]]\nfamily = "fixed"\nwidths = [6, 10]\nint_bits = [2]\n')


@pytest.mark.parametrize("seed", [0])
def test_sigkill_mid_sweep_then_resume_gives_the_same_report(tmp_path, seed):
    """kill -9 the whole sweep (main process and pool workers) mid-way; re-run; compare with an uninterrupted run."""
    from fewbits.report.build import write_report

    cfg = tmp_path / "sweep.toml"
    cfg.write_text(RESUME_TOML.replace("seeds = [0]", f"seeds = [{seed}]"))
    n_points = len(parse_sweep(cfg.read_text(), str(cfg)).points)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_sweep_cmd(cfg, killed, "--workers", "2"), env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline:  # kill once some, but not all, points are finished
        done = len(list((killed / "points").glob("*.json"))) if (killed / "points").is_dir() else 0
        if done >= 1:
            break
        if proc.poll() is not None:
            pytest.fail(f"sweep ended before it could be killed: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    done_before = {p.name for p in (killed / "points").glob("*.json")}
    assert 1 <= len(done_before) < n_points, "the kill did not land mid-sweep"
    before = stage_records(killed)  # parses every record: none is truncated
    for p in (killed / "points").glob("*.json"):
        json.loads(p.read_text())

    r = subprocess.run(_sweep_cmd(cfg, killed, "--workers", "2"), env=_env(tmp_path), capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    after = stage_records(killed)
    for k, v in before.items():  # nothing that finished was recomputed
        assert after[k] == v, k
    assert list(killed.rglob(".*.tmp")) == []

    clean = tmp_path / "clean"
    run_sweep(parse_sweep(cfg.read_text(), str(cfg)).points, clean, workers=1, progress=False)

    def report_numbers(results):
        rep = write_report(results, tmp_path / f"report-{results.name}", 0.5)
        drop = ("train_seconds",)
        return [{k: v for k, v in row.items() if k not in drop} for row in rep["data"]["rows"]]

    assert report_numbers(killed) == report_numbers(clean)


@pytest.mark.parametrize("second_after", [0.0, 0.02, 0.2], ids=lambda s: f"second-ctrl-c-after-{s}s")
def test_sigint_stops_cleanly_and_resumes(tmp_path, second_after):
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(RESUME_TOML)
    res = tmp_path / "res"
    # a suite started in the background (nohup, `cmd &`) passes SIGINT down as *ignored*, and Python
    # then installs no KeyboardInterrupt handler: give the sweep the default disposition back
    proc = subprocess.Popen(_sweep_cmd(cfg, res), env=_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while time.time() < deadline and not list(res.glob("stages/train/*.json")):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(second_after)  # Ctrl-C pressed twice: the second lands during the clean-up or the shutdown
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again" in err and "Traceback" not in err
    if second_after != 0.2:
        return  # the store after any of the three is resumed alike (atomic records): resume one, keep the suite short
    r = subprocess.run(_sweep_cmd(cfg, res), env=_env(tmp_path), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    assert "4 ok" in r.stdout


def test_dask_local_cluster(tiny_sweep, tmp_path):
    """The same points on a real Dask LocalCluster (2 worker processes): same numbers as the local run."""
    distributed = pytest.importorskip("distributed")
    root, points, records = tiny_sweep
    pts = [dict(p, cosim={**p["cosim"], "enabled": False}, power={**p["power"], "enabled": False})
           for p in points[:2]]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        recs = run_sweep(pts, tmp_path / "dask", scheduler=cl.scheduler_address, progress=False)
    assert [r["status"] for r in recs] == ["ok", "ok"]
    local, dask = Store(root), Store(tmp_path / "dask")
    for r_local, r_dask in zip(records[:2], recs):
        for name in ("train", "verilog", "synth.cmos"):
            assert r_dask["stages"][name]["key"] == r_local["stages"][name]["key"]
            a = local.get_stage(r_local["stages"][name]["stage"], r_local["stages"][name]["key"])["result"]
            b = dask.get_stage(r_dask["stages"][name]["stage"], r_dask["stages"][name]["key"])["result"]
            if name == "train":
                assert a["test_error"] == b["test_error"] and a["history"][-1]["train_error"] == b["history"][-1]["train_error"]
            if name == "synth.cmos":
                assert a["figures"]["transistors"] == b["figures"]["transistors"]


def test_damaged_records_are_named_and_recomputed(tiny_sweep, tmp_path, capfd):
    """A truncated stage record, an edited result and a mistyped point: named once each, recomputed, same report."""
    import shutil

    from fewbits.report.build import write_report

    root, points, records = tiny_sweep
    copy = tmp_path / "results"
    shutil.copytree(root, copy)
    good = records[0]
    synth = copy / "stages" / "synth.cmos" / f"{good['stages']['synth.cmos']['key']}.json"
    if not synth.is_file():
        synth = copy / "stages" / "synth" / f"{good['stages']['synth.cmos']['key']}.json"
    train = copy / "stages" / "train" / f"{good['stages']['train']['key']}.json"
    point = copy / "points" / f"{records[1]['key']}.json"
    synth.write_text(synth.read_text()[:40])
    train.write_text(train.read_text().replace('"test_error": ', '"test_error": 1', 1))
    point.write_text(json.dumps({**json.loads(point.read_text()), "stages": []}))
    capfd.readouterr()
    again = run_sweep(points, copy, workers=1, progress=False)
    err = capfd.readouterr().err
    named = [ln for ln in err.splitlines() if ln.startswith("fewbits: warning: damaged results record")]
    assert {p for p in (synth, train, point) if any(str(p) in ln for ln in named)} == {synth, train, point}, err
    assert [r["status"] for r in again] == ["ok", "ok", "failed"]
    assert stage_records(copy).keys() == stage_records(root).keys()  # every record whole again

    def numbers(results):
        rows = write_report(results, tmp_path / f"report-{results.name}", 0.5)["data"]["rows"]
        return [{k: v for k, v in r.items() if k not in ("train_seconds", "links")} for r in rows]  # links name the store

    a, b = numbers(copy), numbers(root)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert {k: v for k, v in x.items() if v != y.get(k)} == {}, {k: y.get(k) for k in x if x[k] != y.get(k)}


def test_seeds_train_twice_but_share_every_hardware_stage(two_seed_sweep):
    """2 configurations x 2 seeds: 4 trainings, and Verilog, co-simulation, synthesis and power once each."""
    from collections import Counter

    root, points, records = two_seed_sweep
    assert sorted(p["seed"] for p in points) == [0, 0, 1, 1] and [r["status"] for r in records] == ["ok"] * 4
    counts = Counter(p.parent.name for p in (root / "stages").glob("*/*.json"))
    assert counts == {"train": 4, "verilog": 2, "cosim": 2, "synth": 2, "power": 2}, counts
    first = {r["label"]: r for r, p in zip(records, points) if p["seed"] == 0}
    for rec, p in zip(records, points):
        if p["seed"] == 0:
            assert "train.hw" not in rec["stages"]
            continue
        mine = first[rec["label"]]
        assert rec["stages"]["train"]["key"] != mine["stages"]["train"]["key"]  # its own training
        assert rec["stages"]["train.hw"]["key"] == mine["stages"]["train"]["key"]  # the first seed's capture
        for name in ("verilog", "cosim", "synth.cmos", "power"):
            assert rec["stages"][name]["key"] == mine["stages"][name]["key"], name


def test_cpu_seconds_count_children_and_not_waiting():
    from fewbits.flow.engine import cpu_seconds

    c0 = cpu_seconds()
    time.sleep(0.4)  # wall time only
    c1 = cpu_seconds()
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass"
    subprocess.run([sys.executable, "-c", busy], check=True)
    c2 = cpu_seconds()
    assert c1 - c0 < 0.2 and c2 - c1 >= 0.5


def test_stage_records_hold_their_cpu_seconds(tiny_sweep):
    root, _, _ = tiny_sweep
    recs = [r for r in stage_records(root).values() if r["status"] == "ok"]
    assert recs and all(0 < r["cpu_seconds"] for r in recs)
    # a co-simulation's CPU is mostly its simulator child process: counted, so more than this process alone
    cos = [r for r in recs if r["stage"] == "cosim"]
    assert cos and all(r["cpu_seconds"] > 0.5 for r in cos)
