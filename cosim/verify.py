"""One call from vectors to verdict: tile, run the design in the simulator, score, write the report.

``verify(design, matmuls, out_dir)`` writes into ``out_dir``: ``tiles.npz`` (the
vectors and expected codes), ``job.json``, the stimulus and result files, the
simulator log, and ``report.json`` (the summary) + ``report.txt`` (readable).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from . import runner
from fewbits.hw.design import Design
from .schedule import Plan
from .tiles import TileSet, tile


def tileset(design: Design, matmuls) -> TileSet:
    spec = design.spec
    return TileSet.concat([tile(mm, spec) for mm in matmuls])


def verify(design: Design, matmuls, out_dir, simulator: str = "icarus", plan: Plan | None = None,
           mode: str = "stream") -> dict:
    """Co-simulate every tile of ``matmuls`` on ``design``; returns the summary (``ok`` is the verdict)."""
    t0 = time.perf_counter()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    ts = tileset(design, matmuls)
    ts.save(out / "tiles.npz")
    t_vec = time.perf_counter() - t0
    b0 = time.perf_counter()
    runner.build(design, simulator)
    t_build = time.perf_counter() - b0
    job = {"manifest": str(design.manifest_path), "tiles": str(out / "tiles.npz"),
           "plan": (plan or Plan()).to_dict(), "mode": mode,
           "stim": str(out / "stim.hex"), "out": str(out / "out.hex")}
    s = runner.run(design, job, out, simulator)
    from .scoreboard import add_values

    add_values(s.get("first_mismatches", []))
    wall = time.perf_counter() - t0
    s.update({"simulator": simulator, "design": str(design.manifest_path), "top": design.top,
              "spec_key": design.manifest.spec_key, "formats": design.formats(),
              "shape": [design.rows, design.cols], "vectors": ts.n, "vector_seconds": t_vec,
              "build_seconds": t_build, "wall_seconds": wall,
              "macs_per_second_wall": s["macs_checked"] / wall if wall > 0 else None})
    (out / "report.json").write_text(json.dumps(s, indent=1) + "\n")
    (out / "report.txt").write_text(text_report(s))
    return s


def text_report(s: dict) -> str:
    lines = [f"{'PASS' if s['ok'] else 'FAIL'}: {s['top']} ({s['shape'][0]}x{s['shape'][1]}) on {s['simulator']}, "
             f"{s['tiles_checked']}/{s['tiles_expected']} tiles, {s['macs_checked']} MACs, "
             f"{s['mismatches']} mismatching elements ({s['code_mismatches']} codes, {s['flag_mismatches']} flags), "
             f"{s['missing']} missing, {s['unexpected']} unexpected results",
             "formats: " + " ".join(f"{k}={v}" for k, v in s["formats"].items()),
             f"timing: {s['wall_seconds']:.2f} s wall, {s['sim_seconds']:.2f} s simulating "
             f"{s['cycles']} cycles, {s['macs_per_second'] or 0:.3g} MACs verified/s in the test, "
             f"{s['macs_per_second_wall'] or 0:.3g} MACs/s wall"]
    if s.get("capture_elements_checked"):
        lines.append(f"capture: {s['capture_elements_checked']} elements vs the training model, "
                     f"{s['capture_mismatches']} mismatches (reference vs capture: "
                     f"{s['reference_vs_capture_mismatches']})")
    for e in s.get("first_mismatches", []):
        if e["kind"] != "mismatch":
            lines.append(f"  {e['kind']}: " + ", ".join(f"{k}={v}" for k, v in e.items() if k != "kind"))
            continue
        lines.append(
            f"  tile {e['tile']} ({e['source']}, tile row {e['tile_row']} col {e['tile_col']}, k chunk {e['k_chunk']}"
            f" at k={e['k_offset']}, K={e['K']}) element (i={e['i']}, j={e['j']}) = Z[{e['row']}, {e['col']}]: "
            f"expected {e['expected']} ({e['expected_value']}, ovf {int(e['expected_ovf'])}) "
            f"got {e['actual']} ({e['actual_value']}, ovf {int(e['actual_ovf'])})"
            + (f" capture {e['capture']}" if "capture" in e else ""))
        lines.append(f"    a[{e['i']}, :] = {' '.join(e['a_codes'])}{' ...' if e['operands_truncated'] else ''}")
        lines.append(f"    b[:, {e['j']}] = {' '.join(e['b_codes'])}{' ...' if e['operands_truncated'] else ''}")
        lines.append(f"    bias {e['bias']} shift {e['shift']} bias shift {e.get('bias_shift', 0)}; " + " ".join(f"{k}={v}" for k, v in e["formats"].items()))
    return "\n".join(lines) + "\n"
