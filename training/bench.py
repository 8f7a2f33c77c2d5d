"""Time per epoch of a network for several run formats, as ratios to unquantized fp32.

Each format trains the same network on the same data for ``batches`` batches
(after one untimed batch); formats are interleaved ``repeats`` times and the
fastest repeat is kept, so a busy machine perturbs the ratios as little as
possible.  The per-epoch figure is the per-batch time times the batches of an
epoch (the paper's 500 for MNIST-sized sets) plus nothing else: evaluation is
not timed.
"""

from __future__ import annotations

import time

import torch

from .trainer import TrainConfig, Trainer

#: the paper's comparison: float32, half float, fixed point (20 bits), dynamic fixed point (10/12)
PAPER_FORMATS = {
    "fp32": ("fp32", "fp32", False),
    "fp16": ("fp16", "fp16", False),
    "fixed": ("fixed:20:15", "fixed:20:15", True),  # the paper's 20 bits, 5 integer bits
    "dfixed": ("dfixed:10", "dfixed:12", True),
}


def time_formats(dataset="fashion-mnist", net="pi-mlp", formats=None, batches=20, repeats=2, data=None,
                 threads=None) -> dict:
    formats = formats or PAPER_FORMATS
    if threads is not None:
        torch.set_num_threads(threads)
    trainers = {}
    for name, (prop, update, paper, *acc) in formats.items():  # an optional 4th item: the accumulator
        t = Trainer(TrainConfig(dataset=dataset, net=net, prop=prop, update=update, paper_bits=paper, epochs=10,
                                acc=acc[0] if acc else "exact"), dataset=data)
        data = t.data
        trainers[name] = t
    n_batches = len(data.train.y) // next(iter(trainers.values())).batch_size
    best = {name: float("inf") for name in trainers}
    x, y = torch.from_numpy(data.train.x), torch.from_numpy(data.train.y)
    for name, t in trainers.items():  # warm-up batch: ranges set, caches filled
        bs = t.batch_size
        t.train_batch(x[:bs], y[:bs], 0.05, 0.5)
    for r in range(repeats):
        for name, t in trainers.items():
            bs = t.batch_size
            t0 = time.perf_counter()
            for i in range(batches):
                j = (i + 1) % n_batches
                t.train_batch(x[j * bs:(j + 1) * bs], y[j * bs:(j + 1) * bs], 0.05, 0.5)
            best[name] = min(best[name], (time.perf_counter() - t0) / batches)
    base = best.get("fp32") or next(iter(best.values()))
    return {
        name: {"seconds_per_batch": s, "seconds_per_epoch": s * n_batches, "ratio_to_fp32": s / base,
               "prop": formats[name][0], "update": formats[name][1], "paper_bits": formats[name][2],
               "acc": formats[name][3] if len(formats[name]) > 3 else "exact"}
        for name, s in best.items()
    } | {"_meta": {"dataset": dataset, "net": net, "batches_timed": batches, "repeats": repeats,
                   "batches_per_epoch": n_batches, "threads": torch.get_num_threads()}}
