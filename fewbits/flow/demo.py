"""The built-in demo sweep (what ``make demo`` runs): every format family, every stage, one report.

Why these numbers: the demo must finish in under 5 minutes on 2 quiet cores on a
fresh clone, through training, Verilog, co-simulation, synthesis (generic CMOS
and iCE40) and power, and still show the paper's story: fp32 and fp16 as
references, fixed point degrading below ~16 bits, dynamic fixed point holding at
about 10 bits.  The array is a single MAC unit (1x1): costs are per MAC either
way.  The float points accumulate in fp32 (one rounding per product), as float
MACs are built: the exact Kulisch accumulator (over 550 bits for fp32 products) is
available in sweeps (``acc = ["exact"]``) but is no baseline anyone would build,
and it made the report's savings look several times larger than they are.
``--dataset fashion-mnist`` runs the same grid at a larger scale.

Seeds 0, 1 and 2: one run per point cannot tell formats apart on a test set of a
few hundred images, so the report folds the seeds of each configuration into a
mean with its interval and recommends with 95 % confidence.  The extra seeds cost
only training (the hardware stages are shared across seeds), 2-6 s of CPU a run
here (fp16 about 19 s: its rounding is emulated).

Within 5 minutes on 2 cores (issue 13), so the hardware stages do what the demo's
question needs and no more:

- co-simulation checks every design bit for bit on the training's own captured
  data (``max_tiles = 64`` tiles of the first layer's forward matmul: 64 dot
  products of 64 MACs, against the training model) plus about 16 random tiles (fp32's
  capture holds no codes); the corner cases (``corners = false``: extreme codes,
  saturation, rounding ties, 500-3800 tiles a design, most of its simulation) are
  the test suite's job (tests/cosim), not the demo's;
- power simulates 500 cycles per design on digits (``max_cycles``, ``POWER_CYCLES``;
  2000, the sweeps' default, for a 784-long dot product) on captured operands
  (random ones for fp32): energy per MAC is a cost
  axis of the report, not what ranks the recommendation (transistors do).

Measured (issue 13, a fresh cache, on the 2-core machine shared with other jobs at
load 13-16, ``/usr/bin/time``): 218 s of CPU (user + system), of which the stages
204 s (their records' ``cpu_seconds``): training 77 s (30 runs), synthesis 77 s,
co-simulation 29 s, power 17 s, Verilog 4 s.  Before these two cuts and the
co-simulation's import fix (``fewbits.cosim.runner``) the same stages took about
12.6 s of CPU a design in co-simulation and 6.2 s in power (7 of the 10 designs
measured, then stopped), about 390 s in all; the brief of issue 13 measured 1018 s
for the whole demo (main at eab0be5, beside another job).  At 218 s the quiet wall
time is estimated at about 2 minutes (CPU / 2 cores plus the serial report; the
longest point, fp32 with its hardware, is 46 s of CPU): an estimate, not measured
on a quiet machine.

sky130 energy (``power.sky130``: the same vectors on the design mapped to the characterized
sky130 cells, at its own maximum clock) is on: 15.7 s of CPU for the 10 designs (0.5-4.5 s each,
fp32 the most; the stage records' ``cpu_seconds``), beside 12.5 s for the generic power stage.
Measured 2026-12-03 with a fresh cache but the sky130 library built (``make sky130``), one worker,
on the shared machine at load 6-9: the whole demo 187 s of CPU (``/usr/bin/time``), 178 s of it in
the stages (training 47, synthesis 76, co-simulation 23, power 12.5 + 15.7, Verilog 3).  It was
off until the power model simulated each sky130 cell as a table primitive: compiling the fp32
MAC's sky130 testbench alone had taken 92 s of CPU.

``--dataset fashion-mnist``: the first 10000 training images (``limit_train``; the
report and the printed summary say so), 10 epochs, the full validation and test
sets.  Estimated from the stage records of a run stopped after every configuration's
first seed and hardware: about 1780 s of CPU (training 129 s a seed for fp16, 20 s
for fp32, 25-54 s for fixed and dynamic fixed point; hardware about 230 s), so
about 15 minutes on 2 quiet cores (the two workers' share of the points in order,
plus the serial report); an estimate, the machine was shared (load 8-16).
"""

from __future__ import annotations

DEMO_TOML = """\
name = "demo-{dataset}"
datasets = ["{dataset}"]
networks = ["{net}"]
epochs = {epochs}
seeds = [0, 1, 2]

[train]
{limit}
[hardware]
rows = {rows}
cols = {cols}
k_max = {k_max}

[cosim]
vectors = 16
corners = false
max_tiles = 64

[power]
max_cycles = {power_cycles}

[synth]
targets = ["cmos", "ice40", "sky130"]   # sky130: characterized cells, built once (`fewbits tech sky130`)
parts = ["multiplier"]

[[grid]]
family = "fp32"
acc = ["fp32"]

[[grid]]
family = "float"
formats = ["fp16"]
acc = ["fp32"]

[[grid]]
family = "fixed"
widths = [8, 12, 16, 20]
int_bits = [3]

[[grid]]
family = "dfixed"
widths = [6, 8, 10, 12]
update_offsets = [2]
max_overflow = [1e-4]
"""

SCALES = {
    # dataset: (net, epochs, limit_train, k_max)
    "digits": ("mlp-small", 12, None, 128),
    "fashion-mnist": ("mlp-small", 10, 10000, 1024),
    "mnist": ("mlp-small", 10, 10000, 1024),
}


# power's simulated cycles: on digits (64-MAC dot products) 500 hold 7 of them; a 784-long image row
# needs the sweeps' default 2000 (a cycle budget shorter than one dot product fails the stage)
POWER_CYCLES = {"digits": 500}


def demo_toml(dataset: str = "digits", epochs: int | None = None, rows: int = 1, cols: int = 1) -> str:
    """The demo's sweep file for ``dataset`` (a real TOML file: the user can copy and edit it)."""
    if dataset not in SCALES:
        raise ValueError(f"unknown demo dataset {dataset!r}: accepted {', '.join(SCALES)}")
    net, ep, limit, k_max = SCALES[dataset]
    return DEMO_TOML.format(dataset=dataset, net=net, epochs=epochs or ep, k_max=k_max, rows=rows, cols=cols,
                            power_cycles=POWER_CYCLES.get(dataset, 2000),
                            limit=f"limit_train = {limit}\n" if limit else "")
