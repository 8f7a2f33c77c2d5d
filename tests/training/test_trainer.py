"""Trainer: determinism, checkpoints (weights_only), resume == uninterrupted, result.json, warm-up."""

import json

import pytest
import torch
from fewbits.training.trainer import CHECKPOINT, RESULT, TrainConfig, Trainer, train

QUICK = dict(limit_train=200, epochs=2, batch_size=50)


def _params(t: Trainer):
    return {k: v.clone() for k, v in t.net.state_dict().items()}


@pytest.mark.parametrize("prop,update", [("fp32", "fp32"), ("dfixed:11", "dfixed:13")])
def test_same_seed_bit_identical_other_seed_differs(prop, update):
    runs = []
    for seed in (7, 7, 8):
        t = Trainer(TrainConfig(prop=prop, update=update, seed=seed, **QUICK))
        r = t.run()
        runs.append((_params(t), r["test_error"], t.ranges()))
    (a, ea, ra), (b, eb, rb), (c, _, _) = runs
    assert all(torch.equal(a[k], b[k]) for k in a) and ea == eb and ra == rb
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_global_rng_state_is_not_used():
    torch.manual_seed(1)
    t1 = Trainer(TrainConfig(prop="dfixed:11", update="dfixed:13", seed=3, **QUICK))
    t1.run()
    torch.manual_seed(999)
    torch.rand(10)
    t2 = Trainer(TrainConfig(prop="dfixed:11", update="dfixed:13", seed=3, **QUICK))
    t2.run()
    assert all(torch.equal(v, _params(t2)[k]) for k, v in _params(t1).items())


class _Stop(Exception):
    pass


@pytest.mark.parametrize("prop,update,warmup", [("dfixed:11", "dfixed:13", 0), ("dfixed:11", "dfixed:13", 1),
                                                ("fixed:12:6", "fixed:16:10", 0)])
def test_resume_reaches_the_uninterrupted_result(tmp_path, prop, update, warmup):
    cfg = TrainConfig(prop=prop, update=update, seed=5, range_warmup=warmup, range_every=2,
                      **{**QUICK, "epochs": 3})
    whole = Trainer(cfg, tmp_path / "whole")
    r_whole = whole.run()

    part = Trainer(cfg, tmp_path / "part")

    def stop(h):
        if h["epoch"] == 2:
            raise _Stop

    part.on_epoch = stop
    with pytest.raises(_Stop):
        part.run()
    ck = torch.load(tmp_path / "part" / CHECKPOINT, weights_only=True)
    assert ck["epoch"] == 2
    resumed = Trainer(cfg, tmp_path / "part")
    resumed.load_checkpoint(tmp_path / "part" / CHECKPOINT)
    r_res = resumed.run()
    assert all(torch.equal(v, _params(resumed)[k]) for k, v in _params(whole).items())
    strip = lambda hs: [{k: v for k, v in h.items() if k != "seconds"} for h in hs]
    assert strip(r_res["history"]) == strip(r_whole["history"])
    assert r_res["ranges"] == r_whole["ranges"]


def test_resume_refuses_parameters_of_another_layout(tmp_path):
    """A checkpoint whose parameters are not this network's (the built-in layer classes' keys, from
    before the networks were defined on lowp) is one ValueError naming the file."""
    cfg = TrainConfig(epochs=1, limit_train=100, batch_size=50)
    t = Trainer(cfg, tmp_path)
    t.run()
    st = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    st["model"] = {"stages.1.weight": torch.zeros(64, 320), "stages.1.update_w": torch.zeros(64, 320)}
    torch.save(st, tmp_path / CHECKPOINT)
    with pytest.raises(ValueError, match=r"checkpoint.pt: its parameters do not fit this network \(Error"):
        Trainer(cfg, tmp_path).load_checkpoint(tmp_path / CHECKPOINT)


def test_resume_refuses_a_different_configuration(tmp_path):
    t = Trainer(TrainConfig(prop="dfixed:11", update="dfixed:13", **{**QUICK, "epochs": 1}), tmp_path)
    t.run()
    other = Trainer(TrainConfig(prop="dfixed:10", update="dfixed:13", **{**QUICK, "epochs": 1}), tmp_path)
    with pytest.raises(ValueError, match="prop"):
        other.load_checkpoint(tmp_path / CHECKPOINT)


def test_result_json_contents(tmp_path):
    r = train(TrainConfig(prop="dfixed:11", update="dfixed:13", seed=1, **QUICK), tmp_path)
    on_disk = json.loads((tmp_path / RESULT).read_text())
    assert on_disk["test_error"] == r["test_error"] and 0 <= r["test_error"] <= 100
    assert on_disk["valid_error"] == r["valid_error"]
    assert len(on_disk["history"]) == 2 and len(on_disk["seconds_per_epoch"]) == 2
    assert on_disk["config"]["prop"] == "dfixed:11" and on_disk["config"]["seed"] == 1
    groups = on_disk["ranges"]
    for layer in ("L0", "L1", "L2"):
        for point in ("w", "b", "z", "y", "dEdy", "dEdz", "dEdw", "dEdb", "update_w", "update_b"):
            assert f"{layer}.{point}" in groups, f"{layer}.{point}"
    assert groups["L0.w"]["prop_format"].startswith("dfixed:11:")
    assert groups["L0.w"]["update_format"].startswith("dfixed:13:")


def test_warmup_restores_the_initial_parameters_and_keeps_ranges():
    cfg = TrainConfig(prop="dfixed:11", update="dfixed:13", seed=2, range_warmup=1, **{**QUICK, "epochs": 1})
    t = Trainer(cfg)
    before = _params(t)
    t.warm_up()
    after = _params(t)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert t.qs.controller.groups and t.qs.width_override is None
    assert all(g.set for n, g in t.qs.controller.groups.items() if n.endswith((".z", ".y")))


def test_the_trainer_takes_the_run_spec_it_is_given():
    """The CLI builds the RunSpec once; the trainer uses it, and builds one from the config only without it."""
    from fewbits.sim import RNA, DynamicFixed
    from fewbits.sim.run import RunSpec

    cfg = TrainConfig(prop="fp32", update="fp32", **QUICK)
    spec = RunSpec.parse("dfixed:8", "dfixed:10", paper_bits=True, max_overflow=0.02, range_every=3, range_warmup=1)
    t = Trainer(cfg, spec=spec)
    assert t.spec is spec and t.qs.spec is spec
    assert t.qs.fmt("L0.w", "update").width == 11 and t.range_every() == 3
    assert t.qs.controller.max_overflow == 0.02
    own = Trainer(TrainConfig(prop="dfixed:8", update="dfixed:10", paper_bits=True, **QUICK))
    assert own.spec.prop == DynamicFixed(9, symmetric=True, round=RNA) and own.range_every() != 3


def test_limit_eval_evaluates_on_the_first_n_examples_only():
    """limit_eval=N: the validation and test errors are counts over the first N images (the digits
    set has 200 validation and 397 test images), and the config key says so only when set."""
    cfg = TrainConfig(prop="fp32", update="fp32", seed=5, limit_eval=40, **QUICK)
    t = Trainer(cfg)
    r = t.run()
    assert len(t.data.valid.y) == 40 and len(t.data.test.y) == 40 and r["test_examples"] == 40
    assert (r["test_error"] * 40 / 100) == pytest.approx(round(r["test_error"] * 40 / 100))
    full = Trainer(TrainConfig(prop="fp32", update="fp32", seed=5, **QUICK))
    assert len(full.data.test.y) == 397 and "limit_eval" not in full.cfg.to_dict()
    assert cfg.to_dict()["limit_eval"] == 40
