"""The built-in demo sweep (what ``make demo`` runs): every format family, every stage, one report.

Why these numbers: the demo must finish in under 10 minutes on 2 cores on a
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
only training (the hardware stages are shared across seeds), about 8 s a run here.
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
max_tiles = 64

[synth]
targets = ["cmos", "ice40", "sky130"]   # sky130: characterized cells, built once (`fewbits tech sky130`)
parts = ["multiplier"]

[power]
sky130 = false   # sky130 pJ/MAC: a gate-level simulation of the sky130 netlist, minutes per design (docs/HARDWARE.md)

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


def demo_toml(dataset: str = "digits", epochs: int | None = None, rows: int = 1, cols: int = 1) -> str:
    """The demo's sweep file for ``dataset`` (a real TOML file: the user can copy and edit it)."""
    if dataset not in SCALES:
        raise ValueError(f"unknown demo dataset {dataset!r}: accepted {', '.join(SCALES)}")
    net, ep, limit, k_max = SCALES[dataset]
    return DEMO_TOML.format(dataset=dataset, net=net, epochs=epochs or ep, k_max=k_max, rows=rows, cols=cols,
                            limit=f"limit_train = {limit}\n" if limit else "")
