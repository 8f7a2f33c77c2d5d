"""The stage table: what a sweep does for one point, and what each step depends on.

Why a table: the stages (training, Verilog, co-simulation, synthesis, power)
are built by different people and land at different times.  Each is one row of
``STAGES`` (in dependency order; ``plan`` reads nothing else), a ``Stage``
whose ``config(point, spec)`` names *exactly* the settings
its result depends on; the engine hashes that (plus the keys of the stages it
consumes) into the stage's cache key.  So a point that changes only its
synthesis target re-uses its training, Verilog and co-simulation, and a stage
whose package is not there yet is reported as unavailable and slots in on the
next run of the same sweep.

``spec`` is the point's ``fewbits.sim.RunSpec``, built once per point by ``plan``: no stage
re-reads a format string.

Every ``run(config, inputs, workdir, store)`` gets the records of the stages it
``needs`` (``inputs[name]["result"]``) and returns a JSON-able result dict;
raising marks the stage, and its point, as failed with the exception's message.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from pathlib import Path
from typing import Callable

TOP = "mac"  # top module name of every generated array


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    needs: tuple[str, ...]
    config: Callable[[dict, object], dict]  # (point, its RunSpec) -> the settings the result depends on
    run: Callable[..., dict]
    available: Callable[[], str | None]
    resumable: bool = False  # keep a killed run's work folder (the trainer resumes from its checkpoint)
    summary: Callable[[dict], dict] | None = None  # the few numbers a point record keeps
    version: int = 1  # part of every cache key: bump when a stage's results change meaning
    instances: Callable[["Stage", dict, object], list] | None = None  # None: one instance, named like the stage
    kinds: tuple[str, ...] = ("run",)  # the point kinds it applies to: "run" (a sweep file), "train", "parts"

    def expand(self, point: dict, spec) -> list["Instance"]:
        """This stage's instances for ``point`` (none for another kind of point, or one switching it off)."""
        if point.get("kind", "run") not in self.kinds:
            return []
        if self.instances is not None:
            return self.instances(self, point, spec)
        return [Instance(self.name, self, self.config(point, spec), self.needs)]


@dataclasses.dataclass(frozen=True)
class Instance:
    """One stage as it applies to one point (synthesis appears once per target)."""

    name: str  # e.g. "synth.cmos"
    stage: Stage
    config: dict
    needs: tuple[str, ...]
    # need -> the instance that provides it, where that is not the need's own name (cosim's "train" is
    # "train.hw"); the cache key names the need, so it is the same whichever instance provided it
    sources: dict = dataclasses.field(default_factory=dict)
    # a record another point owns (the first seed's training): its failure makes what needs it
    # unavailable here, it does not fail this point
    borrowed: bool = False

    def source(self, need: str) -> str:
        return self.sources.get(need, need)


def _module_missing(*modules: str) -> Callable[[], str | None]:
    def check():
        for m in modules:
            try:
                if importlib.util.find_spec(m) is None:
                    return f"{m} is not installed yet"
            except ModuleNotFoundError:
                return f"{m} is not installed yet"
        return None

    return check


# ---------------------------------------------------------------- train

def _train_config(point: dict, spec) -> dict:
    t = point["train"]
    cfg = {"dataset": point["dataset"], "net": point["net"], "epochs": point["epochs"], "seed": point["seed"],
           "prop": point["prop"], "update": point["update"], "paper_bits": t.get("paper_bits", False),
           "limit_train": t.get("limit_train"), "batch_size": t.get("batch_size"), "lr": t.get("lr"),
           "data_dir": t.get("data_dir"), "capture": ["L0"], "capture_step": t.get("capture_step", 0)}
    m = point.get("model")
    if m:  # a user's model file: its path, function and digest (an edited file trains again)
        cfg.update({"net": None, "model": f"{m['path']}:{m['function']}", "model_sha256": m["sha256"],
                    "capture": [m["capture"]]})
        if m.get("keep_float"):  # modules left in float (absent: none, and the stage key as before)
            cfg["keep_float"] = list(m["keep_float"])
    if point.get("acc"):  # a float accumulator (absent: exact, and the stage key as before)
        cfg["acc"] = point["acc"]
    if t.get("limit_eval"):  # smaller evaluation sets (absent: all, and the stage key as before)
        cfg["limit_eval"] = t["limit_eval"]
    if point["family"] == "dfixed":  # the range controller's knobs matter to dynamic fixed point only
        cfg.update({"max_overflow": spec.max_overflow, "range_every": spec.range_every,
                    "range_warmup": spec.range_warmup})
    return cfg


def _train_run(config: dict, inputs: dict, workdir: Path, store) -> dict:
    import torch

    from fewbits.training.trainer import TrainConfig, train

    cfg = dict(config)
    cfg["capture"] = tuple(cfg["capture"])
    cfg["keep_float"] = tuple(cfg.get("keep_float", ()))
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    tc = TrainConfig(**{k: v for k, v in cfg.items() if k in known and (v is not None or k == "net")})
    torch.set_num_threads(1)
    r = train(tc, out_dir=workdir, resume=True)
    err = r.get("test_error")
    if err is None or not math.isfinite(err):
        raise RuntimeError(f"training diverged: test error {err}")
    hist = r.get("history") or []
    if any(not math.isfinite(h.get("train_error", 0.0)) for h in hist):
        raise RuntimeError("training diverged: non-finite training error")
    cap = r.get("capture")
    return {
        "test_error": err, "valid_error": r.get("valid_error"), "test_examples": r.get("test_examples"),
        "best_valid_error": r.get("best_valid_error"),
        "test_error_at_best_valid": r.get("test_error_at_best_valid"), "epochs": r.get("epochs"),
        "history": hist, "ranges": r.get("ranges"), "formats": r.get("formats"),
        **({"keep_float": list(tc.keep_float)} if tc.keep_float else {}),
        "capture": store.rel(Path(cap).parent) if cap else None,
        "result_json": store.rel(workdir / "result.json"),
    }


# ---------------------------------------------------------------- verilog

def _verilog_config(point: dict, spec) -> dict:
    # one array serves all three matmuls of a layer: they share the propagation format
    return {"spec": spec.mac("forward").to_dict(), "top": TOP}


def _verilog_run(config: dict, inputs: dict, workdir: Path, store) -> dict:
    from fewbits.hw import export
    from fewbits.sim import MacSpec

    spec = MacSpec.from_dict(config["spec"])
    r = export.verilog(spec, workdir, config["top"])
    return {"verilog": store.rel(r["verilog"]), "manifest": store.rel(r["manifest"]), "latency": r["latency"],
            "design_dir": store.rel(workdir), "spec_key": spec.key(),
            "formats": {"a": str(spec.a_fmt), "b": str(spec.b_fmt), "acc": str(spec.acc_fmt),
                        "out": str(spec.out_fmt)}}


# ---------------------------------------------------------------- cosim

def _cosim_config(point: dict, spec) -> dict:
    c = point["cosim"]
    cfg = {"vectors": c["vectors"], "seed": c["seed"], "simulator": c["simulator"], "matmuls": c["matmuls"],
           "max_tiles": c["max_tiles"]}
    if c.get("corners") is False:  # only when off: the stage keys of every other sweep stay the same
        cfg["corners"] = False
    return cfg


def _crop(mm, spec, max_tiles: int):
    """The top-left block of a captured matmul: at most ``max_tiles`` tiles (co-simulation time is per tile)."""
    import dataclasses

    side = max(1, int(math.isqrt(max_tiles)))
    m, n = min(mm.a.shape[0], side * spec.rows), min(mm.b.shape[1], side * spec.cols)
    return dataclasses.replace(
        mm, name=f"{mm.name}[:{m},:{n}]", a=mm.a[:m], b=mm.b[:, :n],
        bias=None if mm.bias is None else mm.bias.reshape(-1)[:n],
        z=None if mm.z is None else mm.z[:m, :n], ovf=None if mm.ovf is None else mm.ovf[:m, :n])


def _cosim_run(config: dict, inputs: dict, workdir: Path, store) -> dict:
    from fewbits.cosim.vectors import capture_matmuls, corner_matmuls, random_matmuls
    from fewbits.cosim.verify import verify
    from fewbits.hw.design import load_design

    v = inputs["verilog"]["result"]
    design = load_design(store.abs(v["manifest"]))
    spec = design.spec
    mms = []
    cap = inputs["train"]["result"].get("capture")
    skipped = []
    if cap:
        cm, skipped = capture_matmuls(store.abs(cap), spec)
        cm = [_crop(mm, spec, config["max_tiles"]) for mm in cm
              if any(mm.name.endswith(f".{k}]") for k in config["matmuls"])]
        mms += cm
    n_capture = len(mms)
    if config["vectors"]:
        mms += random_matmuls(spec, config["vectors"], config["seed"])
        if config.get("corners", True):
            mms += corner_matmuls(spec, config["seed"])
    if not mms:
        raise RuntimeError("co-simulation has no vectors (no capture and [cosim] vectors = 0)")
    s = verify(design, mms, workdir, simulator=config["simulator"])
    if not s.get("ok"):
        first = (s.get("first_mismatches") or [{}])[0]
        raise RuntimeError(f"co-simulation failed: {s.get('mismatches')} mismatching elements, "
                           f"{s.get('missing')} missing; first: {first} (report: {store.rel(workdir / 'report.txt')})")
    return {"ok": True, "macs_checked": s.get("macs_checked"), "tiles_checked": s.get("tiles_checked"),
            "mismatches": s.get("mismatches"), "capture_matmuls": n_capture, "capture_skipped": skipped,
            "capture_elements_checked": s.get("capture_elements_checked"),
            "simulator": config["simulator"], "report": store.rel(workdir / "report.json"),
            "report_txt": store.rel(workdir / "report.txt"), "wall_seconds": s.get("wall_seconds")}


# ---------------------------------------------------------------- tech (a characterized standard-cell library)

SKY130 = "sky130"   # the synthesis target on the characterized sky130_fd_sc_hd cells (and its power)
TECH = f"tech.{SKY130}"
SKY130_TIMEOUT = 1800   # s, as synthesis (a timeout is no part of a result: not in the stage key)


def _tech_cells(name: str) -> tuple[str, ...]:
    from fewbits.hw.eda.tech import build

    return build.SMALL if name == "small" else build.FULL


def _tech_config(point: dict, spec) -> dict:
    """The library's identity: the cell set and the build's own cache key (PDK version, settings,
    cells, the characterizer's sources), so a changed characterizer re-keys every sky130 result."""
    from fewbits.hw.eda.tech import build, characterize, pdk

    cells = point["synth"].get("sky130_cells", "full")
    try:
        key = build.key(_tech_cells(cells), characterize.Settings())
    except pdk.PdkError:   # no PDK: the stage is unavailable (``_tech_missing``) and never keyed
        key = None
    return {"tech": SKY130, "cells": cells, "library": key}


def _tech_missing() -> str | None:
    import shutil

    from fewbits.hw.eda.tech import pdk

    try:
        pdk.root()
        pdk.pdk_version()
    except pdk.PdkError as e:
        return str(e)
    return None if shutil.which("ngspice") else "ngspice is not installed (apt-get install ngspice)"


def _liberty(cells: str) -> Path:
    """The characterized Liberty (built once under the fewbits cache's own lock; a digest check after)."""
    from fewbits.hw.eda.tech import build

    return build.build(_tech_cells(cells), progress=False)


def _tech_run(config: dict, inputs: dict, workdir: Path, store) -> dict:
    import json

    from fewbits.hw.eda.tech import build

    lib = _liberty(config["cells"])
    meta = json.loads((lib.parent / build.MANIFEST).read_text())["meta"]
    return {"tech": SKY130, "cells": config["cells"], "model": meta["model"], "liberty": str(lib),
            "build_seconds": meta.get("seconds"), "build_cpu_seconds": meta.get("cpu_seconds"),
            "n_cells": len(meta.get("cells", ()))}


def _tech_instances(stage: Stage, point: dict, spec) -> list[Instance]:
    """One library for a point with the sky130 target (every point shares its key: built once)."""
    if SKY130 not in point["synth"]["targets"]:
        return []
    return [Instance(TECH, stage, stage.config(point, spec), stage.needs)]


# ---------------------------------------------------------------- synth

def _synth_run(config: dict, inputs: dict, workdir: Path, store) -> dict:
    import json
    import shutil

    from fewbits.hw.design import load_designs
    from fewbits.hw.eda import synth

    v = inputs["verilog"]["result"]
    design = load_designs(store.abs(v["design_dir"]), TOP)[0]
    if config.get("part"):
        from fewbits.hw.eda.synth_parts import part_design

        design = part_design(design, config["part"])
    if config["target"] == SKY130:
        rec = synth.synthesize(design, "liberty", liberty=_liberty(inputs[TECH]["result"]["cells"]),
                               timeout=config.get("timeout", 1800))
    else:
        rec = synth.synthesize(design, config["target"], timeout=config.get("timeout", 1800))
    workdir.mkdir(parents=True, exist_ok=True)
    log = rec.get("log")
    if log and Path(log).is_file():
        shutil.copyfile(log, workdir / "yosys.log")
    keep = {k: v for k, v in rec.items() if k not in ("cached",)}
    (workdir / "synth.json").write_text(json.dumps(keep, indent=1) + "\n")
    return {"target": config["target"], "part": config.get("part"), "figures": rec["figures"],
            "per_pe": rec.get("per_pe", {}), "pe_count": rec.get("pe_count"),
            "record": store.rel(workdir / "synth.json"),
            "log": store.rel(workdir / "yosys.log") if (workdir / "yosys.log").exists() else None,
            "tools": rec.get("tools"), "seconds": rec.get("seconds"), "model": rec.get("model")}


# ---------------------------------------------------------------- power

def _power_config(point: dict, spec) -> dict:
    return {"max_cycles": point["power"]["max_cycles"], "vectors": "capture", "seed": 1}


def _captured(capture_dir: Path, matmul: str) -> bool:
    """Whether a training capture holds codes of ``matmul`` (an fp32 run's capture is empty)."""
    from fewbits.sim.capture import manifest_path, read_capture

    if not manifest_path(capture_dir).is_file():
        return False
    return any(m.matmul == matmul for m in read_capture(capture_dir).matmuls)  # a damaged capture fails the stage


def _power_run(config: dict, inputs: dict, workdir: Path, store) -> dict:
    from fewbits.hw.design import load_designs
    from fewbits.hw.eda import power, power_vectors

    v = inputs["verilog"]["result"]
    design = load_designs(store.abs(v["design_dir"]), TOP)[0]
    spec = design.spec
    cap = inputs["train"]["result"].get("capture")
    if cap and _captured(store.abs(cap), "forward"):
        ops = power_vectors.capture_operands(store.abs(cap), spec, ["forward"])
        source = "capture"
    else:  # fp32 training quantizes nothing, so its capture holds no codes: random operands
        ops = [power_vectors.synthetic(spec, "random", config["seed"], 4 * spec.rows, 64, 4 * spec.cols)]
        source = "random"
    if config.get("tech") == SKY130:   # its energies, at the design's own maximum clock
        # the synthesis stage's time limit, not power's default 600 s: compiling the demo's fp32 MAC
        # mapped to sky130 (a 1.3 MB gate netlist) with iverilog overran 600 s on a loaded machine
        rec = power.estimate(design, ops, spec=spec, max_cycles=config["max_cycles"], clock_mhz=None,
                             liberty=_liberty(inputs[TECH]["result"]["cells"]), timeout=SKY130_TIMEOUT)
    else:
        rec = power.estimate(design, ops, spec=spec, max_cycles=config["max_cycles"])
    power.write_record(rec, workdir / "power.json")
    f = rec["figures"]
    return {"energy_per_mac_pj": f.get("energy_per_mac_pj"), "toggles_per_mac": f.get("toggles_per_mac"),
            "power_mw": f.get("power_mw"), "model": f.get("model"), "vectors": source,
            "clock_mhz": f.get("clock_mhz"), "record": store.rel(workdir / "power.json")}


# ---------------------------------------------------------------- bare parts (``fewbits synth --sweep``)

def _part_spec(config: dict):
    from fewbits.hw.eda.synth_parts import sweep_spec

    return sweep_spec(config["format"], config.get("multiplier", "yosys"))


def _part_synth_run(config: dict, inputs: dict, workdir: Path, store) -> dict:
    """Synthesize the bare multiplier or MAC unit of ``a = b = out = format`` on one target: the synth record."""
    from fewbits.hw.eda import synth as S
    from fewbits.hw.eda.synth_parts import part_design

    spec = _part_spec(config)
    d = part_design(spec, config["part"], name=config["format"])
    rec = S.synthesize(d, config["target"], dsp=config["dsp"], liberty=config["liberty"], timeout=config["timeout"],
                       use_cache=config["use_cache"])
    return {**rec, "spec": spec.to_dict()}


def _part_power_run(config: dict, inputs: dict, workdir: Path, store) -> dict:
    """The bare part simulated on seeded random vectors: the power record (without its per-group detail)."""
    from fewbits.hw.eda.power import estimate
    from fewbits.hw.eda.power_vectors import synthetic
    from fewbits.hw.eda.synth_parts import part_design

    spec = _part_spec(config)
    d = part_design(spec, config["part"], name=config["format"])
    ops = synthetic(spec, "random", config["seed"], 8, 32, 8)
    rec = estimate(d, [ops], spec=spec, max_cycles=config["max_cycles"], timeout=config["timeout"],
                   use_cache=config["use_cache"], liberty=config.get("liberty"),
                   clock_mhz=None if config.get("liberty") else 100.0)
    return {k: v for k, v in rec.items() if k != "groups"}


def _part_config(point: dict) -> dict:
    c = {"format": point["format"], "timeout": point["timeout"], "use_cache": point["use_cache"]}
    if point.get("multiplier", "yosys") != "yosys":   # only when chosen: existing stage keys stay the same
        c["multiplier"] = point["multiplier"]
    return c


def _part_synth_instances(stage: Stage, point: dict, spec) -> list[Instance]:
    return [Instance(f"{part}.{t}", stage, {**_part_config(point), "part": part, "target": t, "dsp": point["dsp"],
                                            "liberty": point["liberty"]}, ())
            for part in point["parts"] for t in point["targets"]]


def _part_power_instances(stage: Stage, point: dict, spec) -> list[Instance]:
    if not point["power"]:
        return []
    lib = {"liberty": point["liberty"]} if point.get("liberty") else {}   # its energies, at the part's fmax
    return [Instance(f"{part}.power", stage, {**_part_config(point), "part": part, "seed": point["seed"],
                                              "max_cycles": point["power_cycles"], **lib}, ())
            for part in point["parts"]]


# ---------------------------------------------------------------- the stage table and the plan of one point

#: the hardware stages that read a training capture: they read the first seed's (see ``_train_instances``)
CAPTURE_READERS = ("cosim", "power")


def hw_seed(point: dict) -> int:
    """The seed whose training capture the point's hardware stages read: its configuration's first seed."""
    return point.get("hw_seed", point["seed"])


def _borrows_capture(point: dict) -> bool:
    """Whether the point's hardware stages read another seed's capture (it is not its configuration's first)."""
    return (point.get("kind", "run") == "run" and hw_seed(point) != point["seed"]
            and any(point[s].get("enabled", True) for s in CAPTURE_READERS))


def _train_instances(stage: Stage, point: dict, spec) -> list[Instance]:
    """The point's own training and, for a seed other than its configuration's first, ``train.hw``.

    Why: seeds are replicates, so the hardware of a configuration is co-simulated and measured
    once, on the first seed's capture.  ``train.hw`` is the first seed's training: the same
    config, so the same key, as that seed's own ``train`` (found in the store, or trained once
    under its lock by whichever point gets there first).
    """
    own = Instance(stage.name, stage, stage.config(point, spec), stage.needs)
    if not _borrows_capture(point):
        return [own]
    first = stage.config({**point, "seed": hw_seed(point)}, spec)  # the spec holds no seed
    return [own, Instance(f"{stage.name}.hw", stage, first, stage.needs, borrowed=True)]


def _when_enabled(section: str):
    """One instance unless the point's ``[section]`` says ``enabled = false``.

    Its input named "train" is ``train.hw`` where the point has one; the key names the input
    "train" either way, so every seed of a configuration gets the same key.
    """
    def instances(stage: Stage, point: dict, spec) -> list[Instance]:
        if not point[section].get("enabled", True):
            return []
        sources = {"train": "train.hw"} if _borrows_capture(point) else {}
        return [Instance(stage.name, stage, stage.config(point, spec), stage.needs, sources=sources)]

    return instances


def _power_instances(stage: Stage, point: dict, spec) -> list[Instance]:
    """The fewbits-45nm-v1 estimate and, with the sky130 target, ``power.sky130`` on its cells."""
    out = _when_enabled("power")(stage, point, spec)
    if out and SKY130 in point["synth"]["targets"] and point["power"].get("sky130", True):
        base = out[0]
        out.append(Instance(f"power.{SKY130}", stage, {**base.config, "tech": SKY130}, (*stage.needs, TECH),
                            sources=base.sources))
    return out


def _synth_instances(stage: Stage, point: dict, spec) -> list[Instance]:
    """One instance per target (sky130 also needs its library); the bare parts on generic CMOS only."""
    out = []
    for target in point["synth"]["targets"]:
        needs = (*stage.needs, TECH) if target == SKY130 else stage.needs
        out.append(Instance(f"synth.{target}", stage, {"target": target}, needs))
        for part in point["synth"].get("parts", []) if target == "cmos" else []:
            out.append(Instance(f"synth.{part}.{target}", stage, {"target": target, "part": part}, stage.needs))
    return out


#: every stage, in dependency order: the one table ``plan`` reads (a stage needs only stages above it)
STAGES: tuple[Stage, ...] = (
    Stage("train", (), _train_config, _train_run, _module_missing("fewbits.training.trainer"),
          resumable=True,
          summary=lambda r: {"test_error": r["test_error"], "valid_error": r["valid_error"]}, kinds=("run", "train"),
          instances=_train_instances),
    Stage("verilog", (), _verilog_config, _verilog_run, _module_missing("fewbits.hw.export"),
          summary=lambda r: {"verilog": r["verilog"], "manifest": r["manifest"], "acc": r["formats"]["acc"]}),
    Stage("cosim", ("train", "verilog"), _cosim_config, _cosim_run,
          _module_missing("fewbits.cosim.verify", "fewbits.cosim.vectors", "fewbits.sim.capture"),
          summary=lambda r: {"macs_checked": r["macs_checked"], "report": r["report"]},
          instances=_when_enabled("cosim")),
    Stage("tech", (), _tech_config, _tech_run, _tech_missing,
          summary=lambda r: {"model": r["model"], "build_seconds": r["build_seconds"]}, instances=_tech_instances),
    Stage("synth", ("verilog",), lambda p, spec: {}, _synth_run, _module_missing("fewbits.hw.eda.synth"),
          summary=lambda r: {**{k: r["per_pe"].get(k) for k in ("transistors", "luts", "cells", "dsps", "area")
                                if k in r["per_pe"]},
                             **{k: r["figures"][k] for k in ("fmax_mhz",) if k in r["figures"]}},
          instances=_synth_instances),
    Stage("power", ("train", "verilog"), _power_config, _power_run,
          _module_missing("fewbits.hw.eda.power", "fewbits.hw.eda.power_vectors"), version=2,
          summary=lambda r: {"energy_per_mac_pj": r["energy_per_mac_pj"]},
          instances=_power_instances),
    Stage("part_synth", (), lambda p, spec: {}, _part_synth_run, _module_missing("fewbits.hw.eda.synth_parts"),
          summary=lambda r: {"target": r["target"]}, instances=_part_synth_instances, kinds=("parts",)),
    Stage("part_power", (), lambda p, spec: {}, _part_power_run, _module_missing("fewbits.hw.eda.power"),
          summary=lambda r: {"energy_per_mac_pj": r["figures"]["energy_per_mac_pj"]},
          instances=_part_power_instances, kinds=("parts",)),
)
BY_NAME: dict[str, Stage] = {s.name: s for s in STAGES}


def plan(point: dict) -> list[Instance]:
    """The stage instances of ``point``, in dependency order: the table's rows, each expanded for the point
    (its RunSpec built here, once)."""
    spec = None
    if point.get("kind", "run") != "parts":  # a bare-part point has formats but no run
        from fewbits.flow.config import run_spec

        spec = run_spec(point)
    return [inst for stage in STAGES for inst in stage.expand(point, spec)]
