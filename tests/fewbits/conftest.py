"""Shared helpers of the sweep/report tests: tiny sweep files and an isolated tool cache."""

from __future__ import annotations

import pytest

TINY = """\
name = "tiny"
datasets = ["digits"]
networks = ["mlp-small"]
epochs = {epochs}
seeds = [{seed}]

[train]
limit_train = {limit}

[hardware]
rows = 1
cols = 2
k_max = 128

[cosim]
enabled = {cosim}
vectors = 4
max_tiles = 4

[synth]
targets = [{targets}]
parts = [{parts}]
{synth_extra}

[power]
enabled = {power}
max_cycles = 200

[[grid]]
family = "fixed"
widths = [{fixed_width}]
int_bits = [2]

[[grid]]
family = "dfixed"
widths = [6]
update_offsets = [2]
{extra}"""


def tiny_toml(epochs=1, seed=0, limit=100, cosim=True, power=True, targets=('cmos',), fixed_width=8, extra="", parts=(),
              synth_extra=""):
    return TINY.format(epochs=epochs, seed=seed, limit=limit, cosim=str(cosim).lower(), power=str(power).lower(),
                       targets=", ".join(f'"{t}"' for t in targets), parts=", ".join(f'"{t}"' for t in parts),
                       fixed_width=fixed_width, extra=extra, synth_extra=synth_extra)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Synthesis/co-simulation caches in a per-session temp folder, never the user's ~/.cache."""
    monkeypatch.setenv("FEWBITS_CACHE", str(tmp_path_factory.getbasetemp() / "fewbits-cache"))


def bad_dataset_point(point: dict, where) -> dict:
    """A copy of ``point`` whose dataset files do not exist: its training fails (a real failure)."""
    return {**point, "dataset": "fashion-mnist", "train": {**point["train"], "data_dir": str(where)}}


def _run_tiny(tmp_path_factory, name, toml, extra_points=lambda points, base: [], workers=1):
    """Run a tiny sweep into a fresh store with the session's tool cache; (store dir, points, records)."""
    import os

    from fewbits.flow.config import parse_sweep
    from fewbits.flow.engine import run_sweep

    base = tmp_path_factory.mktemp(name)
    old = os.environ.get("FEWBITS_CACHE")
    os.environ["FEWBITS_CACHE"] = str(tmp_path_factory.getbasetemp() / "fewbits-cache")
    try:
        cfg = parse_sweep(toml, f"{name}.toml")
        points = cfg.points + extra_points(cfg.points, base)
        records = run_sweep(points, base / "results", workers=workers, progress=False, meta={"name": name})
    finally:
        if old is None:
            os.environ.pop("FEWBITS_CACHE", None)
        else:
            os.environ["FEWBITS_CACHE"] = old
    return base / "results", points, records


@pytest.fixture(scope="session")
def two_seed_sweep(tmp_path_factory):
    """The tiny sweep's two configurations with seeds 0 and 1 (4 runs); (store dir, points, records)."""
    return _run_tiny(tmp_path_factory, "two-seeds", tiny_toml(seed="0, 1"))


@pytest.fixture(scope="session")
def sky130_sweep(tmp_path_factory):
    """The tiny sweep on generic CMOS and sky130 (the fast suite's small cell set: inv, buf, nand2,
    dfxtp), two workers sharing one library, no co-simulation (not what it tests); (store dir, points, records)."""
    return _run_tiny(tmp_path_factory, "sky130", tiny_toml(targets=("cmos", "sky130"), cosim=False,
                                                           synth_extra='sky130_cells = "small"'), workers=2)


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory):
    """One real tiny sweep through every stage (2 points) plus one point that fails; (store dir, points)."""
    return _run_tiny(tmp_path_factory, "tiny", tiny_toml(parts=("multiplier",)),
                     lambda points, base: [bad_dataset_point(points[0], base / "no-such-dir")])


def constructed_store(root, costs: dict, errors: dict, targets=("cmos", "ice40", "sky130")):
    """A results store written record by record (no tool runs): the tiny sweep's fixed:8 and dfixed:6
    configurations plus fp32, seeds 0 and 1.  ``costs``: family -> the stage figures to store
    (transistors, luts, energy_pj, area_um2, delay_ps, fmax_mhz, energy_sky130_pj; a missing one is
    not stored); ``errors``: family -> test error (%) of seeds 0 and 1.  Returns the store's root."""
    from fewbits.flow.config import parse_sweep
    from fewbits.flow.engine import point_key
    from fewbits.flow.store import Store

    store = Store(root)
    store.init()
    toml = tiny_toml(seed="0, 1", targets=targets, extra='\n[[grid]]\nfamily = "fp32"\n')
    for p in parse_sweep(toml, "constructed.toml").points:
        fam, c = p["family"], costs[p["family"]]
        results = {"train": {"test_error": errors[fam][p["seed"]], "valid_error": 1.0, "test_examples": 360}}
        if "transistors" in c:
            results["synth.cmos"] = {"per_pe": {"transistors": c["transistors"]}, "figures": {}}
        if "luts" in c:
            results["synth.ice40"] = {"per_pe": {"luts": c["luts"]}, "figures": {}}
        if "energy_pj" in c:
            results["power"] = {"energy_per_mac_pj": c["energy_pj"], "model": "fewbits-45nm-v1"}
        if "area_um2" in c:
            results["synth.sky130"] = {"per_pe": {"area": c["area_um2"]}, "model": "sky130 test model",
                                       "figures": {"delay_ps": c["delay_ps"], "fmax_mhz": c["fmax_mhz"]}}
        if "energy_sky130_pj" in c:
            results["power.sky130"] = {"energy_per_mac_pj": c["energy_sky130_pj"], "power_mw": 0.5,
                                       "model": "sky130 test model"}
        key = point_key(p)
        stages = {}
        for name, result in results.items():
            base, skey = name.split(".")[0], f"{key}-{name.replace('.', '-')}"
            store.put_stage(base, skey, {"status": "ok", "stage": base, "key": skey, "result": result,
                                         "config": {}, "inputs": {}})
            stages[name] = {"status": "ok", "stage": base, "key": skey}
        store.put_point(key, {"key": key, "label": fam, "config": p, "status": "ok", "stages": stages})
    return root
