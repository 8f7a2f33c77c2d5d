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


def tiny_toml(epochs=1, seed=0, limit=100, cosim=True, power=True, targets=('cmos',), fixed_width=8, extra="", parts=()):
    return TINY.format(epochs=epochs, seed=seed, limit=limit, cosim=str(cosim).lower(), power=str(power).lower(),
                       targets=", ".join(f'"{t}"' for t in targets), parts=", ".join(f'"{t}"' for t in parts), fixed_width=fixed_width, extra=extra)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Synthesis/co-simulation caches in a per-session temp folder, never the user's ~/.cache."""
    monkeypatch.setenv("FEWBITS_CACHE", str(tmp_path_factory.getbasetemp() / "fewbits-cache"))


def bad_dataset_point(point: dict, where) -> dict:
    """A copy of ``point`` whose dataset files do not exist: its training fails (a real failure)."""
    return {**point, "dataset": "fashion-mnist", "train": {**point["train"], "data_dir": str(where)}}


def _run_tiny(tmp_path_factory, name, toml, extra_points=lambda points, base: []):
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
        records = run_sweep(points, base / "results", workers=1, progress=False, meta={"name": name})
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
def tiny_sweep(tmp_path_factory):
    """One real tiny sweep through every stage (2 points) plus one point that fails; (store dir, points)."""
    return _run_tiny(tmp_path_factory, "tiny", tiny_toml(parts=("multiplier",)),
                     lambda points, base: [bad_dataset_point(points[0], base / "no-such-dir")])
