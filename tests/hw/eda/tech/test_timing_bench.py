"""Benchmark (not a timed test): the sky130 abc flows, interleaved on the same designs.

``make bench`` prints one line per design and flow and writes ``bench.json`` in the test's folder:
CPU seconds of the whole Yosys run (its abc child included), area µm² and abc's ``stime`` delay ps of

- ``fewbits``: the flow ``synth --tech sky130`` runs (``abc -D 1 -constr``: &nf for delay, then
  buffer / upsize / dnsize, ``timing.abc_lines``);
- ``yosys``: Yosys 0.23's own ``abc -liberty`` script (&nf for area, no buffering), with ``stime -p``
  appended only to read its delay (same constraint file: inv_1 driver, 3.565 fF load).

Needs the full characterized library (``fewbits tech sky130``; built on first use).
"""

import json
import re
import resource
import shutil
import subprocess

import pytest
from fewbits.hw.eda import synth as S
from fewbits.hw.eda import synth_parts
from fewbits.hw.eda.tech import build, timing

YOSYS_DEFAULT = ("strash; &get -n; &fraig -x; &put; scorr; dc2; dretime; strash; &get -n; &dch -f; "
                 "&nf {D}; &put")   # ``yosys -h abc``, "for -liberty/-genlib without -constr"
CASES = [("fixed:8:4", "yosys"), ("fixed:16:8", "yosys"), ("fixed:16:8", "booth"), ("fixed:16:8", "dadda")]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(text: str, work) -> tuple[float, float, float]:
    work.mkdir(parents=True, exist_ok=True)
    (work / "script.ys").write_text(text)
    c0 = _cpu()
    subprocess.run(["yosys", "-q", "-l", "yosys.log", "-s", "script.ys"], cwd=work, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = (work / "yosys.log").read_text()
    area = float(re.findall(r"Chip area for module .*: ([\d.]+)", log)[-1])
    return _cpu() - c0, area, timing.parse_delay_ps(log)


@pytest.mark.bench
@pytest.mark.skipif(shutil.which("yosys") is None or shutil.which("ngspice") is None, reason="needs yosys, ngspice")
def test_abc_flows_on_sky130(tmp_path):
    lib = build.build(build.FULL, progress=False)
    tech = timing.sidecar(lib)
    ours = timing.abc_lines(lib, tech)[0]
    script = tmp_path / "yosys_default.abc"
    script.write_text(YOSYS_DEFAULT.replace("{D}", "") + "; stime -p\n")
    theirs = f'abc -constr "{lib.with_name(timing.CONSTR)}" -liberty "{lib}" -script "{script}"'
    rows = []
    for fmt, arch in CASES:
        d = synth_parts.part_design(synth_parts.sweep_spec(fmt, arch), "multiplier")
        text = S.script(d, "liberty", liberty=lib)
        assert ours in text
        for flow, t in (("fewbits", text), ("yosys", text.replace(ours, theirs))):   # interleaved
            cpu, area, delay = _run(t, tmp_path / f"{fmt}-{arch}-{flow}".replace(":", "_"))
            assert area > 0 and delay > 0
            rows.append({"design": f"{fmt} {arch} multiplier", "flow": flow, "cpu_s": round(cpu, 2),
                         "area_um2": round(area, 1), "delay_ps": round(delay, 1)})
            print("\nBENCH", json.dumps(rows[-1]))
    for a, b in zip(rows[::2], rows[1::2]):
        print("BENCH ratio fewbits/yosys", a["design"], json.dumps(
            {k: round(a[k] / b[k], 3) for k in ("cpu_s", "area_um2", "delay_ps") if b[k]}))
    (tmp_path / "bench.json").write_text(json.dumps(rows, indent=1) + "\n")
