"""A real training capture whose biases are nonzero and sit on their own dynamic range (fbias != fo):
Icarus runs of the exported design give the training model's codes bit for bit (in_bias_shift)."""

import pytest
from fewbits.cosim import vectors as V
from fewbits.cosim.schedule import Plan
from fewbits.cosim.verify import verify


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """digits / mlp-small / dfixed:9 trained for a few batches, then both layers captured (seed 0)."""
    from fewbits.training.trainer import record
    from fewbits.training.trainer import TrainConfig

    cfg = TrainConfig(dataset="digits", net="mlp-small", epochs=1, batch_size=8, prop="dfixed:9",
                      update="dfixed:11", limit_train=200, seed=0)
    return record(cfg, tmp_path_factory.mktemp("capture") / "capture", layers=("L0", "L1"), step=5)


@pytest.mark.parametrize("seed", [11], ids=lambda s: f"plan-seed{s}")
def test_capture_with_biases_on_their_own_grid(make_design, capture, tmp_path, seed):
    d = make_design("dfixed:9", "dfixed:9", "dfixed:9", 4, 4, 64)
    mms, skipped = V.capture_matmuls(capture, d.spec)
    forward = [m for m in mms if m.name.endswith(".forward]")]
    assert len(forward) == 2 and not [s for s in skipped if s["name"].endswith(".forward")], skipped
    for m in forward:  # not vacuous: real biases, off the output grid (the old cosim skipped or moved them)
        assert (m.bias != 0).sum() > len(m.bias) // 2, m.name
        assert m.bias_fmt.frac != m.out_fmt.frac, (m.name, m.bias_fmt, m.out_fmt)
    pf = [m.a_fmt.frac + m.b_fmt.frac for m in forward]
    assert any(m.bias_fmt.frac > p for m, p in zip(forward, pf)), "a bias finer than the products (sticky)"
    assert any(m.bias_fmt.frac < p for m, p in zip(forward, pf)), "a bias coarser than the products"
    s = verify(d, forward, tmp_path, plan=Plan(idle_prob=0.1, reset_prob=0.05, shuffle=True, seed=seed))
    assert s["ok"], s["first_mismatches"][:3]
    assert s["mismatches"] == 0 and s["missing"] == 0 and s["tiles_checked"] == s["vectors"]
    assert s["capture_elements_checked"] == sum(m.z.size for m in forward)
    assert s["capture_mismatches"] == 0 and s["reference_vs_capture_mismatches"] == 0
    assert {src["bias_shift"] for src in s["sources"]} == {p - m.bias_fmt.frac for m, p in zip(forward, pf)}


@pytest.mark.parametrize("seed", [12], ids=lambda s: f"seed{s}")
def test_port_mode_drives_the_bias_shift(make_design, tmp_path, seed):
    """The cocotb TileDriver (Python every cycle) writes in_bias_shift too: biases off the output grid agree."""
    d = make_design("dfixed:8", "dfixed:7", "dfixed:8")
    mms = V.random_matmuls(d.spec, 12, seed)
    assert any(m.bias_fmt.frac != m.out_fmt.frac for m in mms)
    s = verify(d, mms, tmp_path, mode="ports", plan=Plan(idle_prob=0.2, reset_prob=0.1, shuffle=True, seed=seed))
    assert s["ok"] and s["mode"] == "ports" and s["mismatches"] == 0, s["first_mismatches"][:3]
    assert len({src["bias_shift"] for src in s["sources"]}) >= 2
