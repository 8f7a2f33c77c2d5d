"""``fewbits train``: train a built-in maxout network, or your own PyTorch model, with quantized multiplications."""

from __future__ import annotations

import json
import shutil

import click

from fewbits.cli.paths import OutputDir

NETS_HELP = "mlp-small, pi-mlp, conv-small, mnist-conv, cifar-conv"
DATASETS_HELP = "digits, fashion-mnist, mnist, cifar10, svhn"


def _fail(msg: str):
    """One clear line on stderr and exit status 2 (the group prints ``fewbits: error: ...``)."""
    from fewbits.cli import CommandError

    raise CommandError(msg)


@click.command("train", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dataset", default="digits", show_default=True, help=f"One of: {DATASETS_HELP}.")
@click.option("--data-dir", default=None, help="Folder with the dataset files (fashion-mnist is found "
              "in /usr/share/datasets/fashion-mnist by default; digits needs none).")
@click.option("--net", default=None, help=f"A built-in network, one of: {NETS_HELP} [default: mlp-small].")
@click.option("--model", default=None, metavar="FILE.py:FUNCTION",
              help="Your own PyTorch model instead of --net: FUNCTION(input_shape, n_classes) in FILE.py returns "
                   "an nn.Module mapping a batch to logits (see examples/lenet.py). FILE.py is run as Python: "
                   "only give files you trust.")
@click.option("--keep-float", "keep_float", multiple=True, metavar="MODULE",
              help="With --model: a module path (as in named_modules()) to leave in float, outside the MAC "
                   "contract (e.g. an nn.LSTM); repeat for several. The run's result lists them.")
@click.option("--epochs", default=30, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=None, type=click.IntRange(min=1), help="Default: the network's (50 small, 100 paper MLP).")
@click.option("--lr", default=None, type=click.FloatRange(min=0, min_open=True),
              help="Starting learning rate (decays linearly to a tenth). Default: the network's.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--prop", default="fp32", show_default=True,
              help="Propagation format: fp32 (no quantization), fixed:W:F, dfixed:W, fp16, float:E:M, ...")
@click.option("--update", default="fp32", show_default=True, help="Update (stored parameter) format, same forms.")
@click.option("--acc", default="exact", show_default=True,
              help="Accumulator of every matmul (forward and both gradients): exact, or a float format with an "
                   "optional chunk=N, rounded once per chunk of products in ascending k (fp32, bf16, "
                   "float:8:10,chunk=4). An fp32 --prop trains in float32 whatever --acc says.")
@click.option("--paper-bits", is_flag=True, help="Widths count no sign bit; symmetric saturation, ties away from zero.")
@click.option("--max-overflow", default=1e-4, show_default=True, type=click.FloatRange(min=0, max=1),
              help="Dynamic fixed point: maximum overflow rate per group.")
@click.option("--range-every", default=None, type=click.IntRange(min=1),
              help="Batches between range updates. Default: 100, or a fifth of an epoch if shorter.")
@click.option("--range-warmup", default=0, show_default=True, type=click.IntRange(min=0),
              help="Epochs at high precision to find the ranges, then re-initialize (paper: 2).")
@click.option("--out", "out_dir", default=None, type=OutputDir(),
              help="Write result.json, checkpoint.pt (each epoch) and captures here.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--force", is_flag=True, help="Replace a previous run in --out (its result, checkpoint, capture).")
@click.option("--capture", default=None, help="Comma-separated layers whose matmuls to capture: L0,L1 of a "
              "built-in net, module paths (features.3, classifier.0) of a --model.")
@click.option("--capture-step", default=0, show_default=True, type=click.IntRange(min=0),
              help="Training step (batch, after warm-up) to capture.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1),
              help="torch threads (1 is fastest for small nets and on a busy machine).")
@click.option("--quiet", is_flag=True, help="No progress bars; print only the final JSON summary line.")
def train_cmd(dataset, data_dir, net, model, keep_float, epochs, batch_size, lr, seed, prop, update, acc, paper_bits, max_overflow,
              range_every, range_warmup, out_dir, resume, force, capture, capture_step, threads, quiet):
    """Train a built-in maxout network or your own PyTorch model with every multiplication at low precision.

    A --model's nn.Linear, nn.Conv1d/2d and matmul calls run under the MAC contract (lowp);
    activations, pooling, batch norm and residual additions run in float between them.
    It trains with SGD (momentum 0.9, learning rate 0.1 decaying to a tenth, batch 50) on
    softmax cross-entropy.

    \b
    Examples:
      fewbits train --dataset digits --net mlp-small --prop dfixed:11 --update dfixed:13 --epochs 30
      fewbits train --dataset fashion-mnist --net pi-mlp --prop dfixed:10 --update dfixed:12 \\
          --paper-bits --range-warmup 2 --out runs/dfx
      fewbits train --prop fixed:20:15 --update fixed:20:15 --paper-bits --capture L0 --out runs/cap
      fewbits train --model examples/lenet.py:lenet --prop dfixed:10 --update dfixed:12 --paper-bits \
          --epochs 15 --capture features.3 --out runs/lenet
    """
    import torch

    from fewbits.sim import FormatError
    from fewbits.training import datasets as ds
    from fewbits.training.nets import NETS
    from fewbits.training.trainer import TrainConfig, Trainer

    if net is not None and model is not None:
        _fail("--net and --model are alternatives: give a built-in network or your own model file, not both")
    if keep_float and model is None:
        _fail("--keep-float applies to --model FILE.py:FUNCTION (a built-in network has nothing to keep in float)")
    if model is not None:
        from fewbits.training.usermodel import ModelError, parse_ref

        try:
            model = str(parse_ref(model))  # the file checked here; an absolute path in the run's config
        except ModelError as e:
            _fail(str(e))
        net = None
    elif net is None:
        net = "mlp-small"
    elif net not in NETS:
        _fail(f"unknown --net {net!r}: accepted {', '.join(NETS)}, or --model FILE.py:FUNCTION")
    if dataset not in ds.LOADERS:
        _fail(f"unknown --dataset {dataset!r}: accepted {', '.join(ds.LOADERS)}")
    layers = tuple(s.strip() for s in capture.split(",") if s.strip()) if capture else ()
    cfg = TrainConfig(dataset=dataset, data_dir=data_dir, net=net, model=model, epochs=epochs, batch_size=batch_size, lr=lr,
                      seed=seed, prop=prop, update=update, acc=acc, paper_bits=paper_bits, max_overflow=max_overflow,
                      range_every=range_every, range_warmup=range_warmup, capture=layers, capture_step=capture_step,
                      keep_float=tuple(keep_float))
    try:
        spec = cfg.run_spec()  # the one place this run's formats and range settings are decided
    except FormatError as e:
        _fail(str(e))
    if resume and not out_dir:
        _fail("--resume needs --out DIR (the run folder holding checkpoint.pt)")
    if capture is not None and not out_dir:
        _fail("--capture needs --out DIR (captures are written to DIR/capture)")
    torch.set_num_threads(threads)
    try:
        trainer = Trainer(cfg, out_dir, progress=not quiet, spec=spec)
    except ds.DatasetError as e:
        _fail(str(e))
    except (ValueError, KeyError) as e:
        _fail(str(e))
    steps = epochs * (len(trainer.data.train.y) // trainer.batch_size)
    if layers and capture_step >= steps:
        _fail(f"--capture-step {capture_step} is never reached: this run has {steps} training steps "
              f"({epochs} epochs x {len(trainer.data.train.y) // trainer.batch_size} batches); accepted 0..{steps - 1}")
    known = trainer.layer_names()
    bad = [l for l in layers if l not in known]
    if bad:
        _fail(f"unknown --capture layer(s) {', '.join(bad)}: this {'model' if model else 'net'} has "
              f"{', '.join(known)}")
    from pathlib import Path

    from fewbits.training.trainer import CHECKPOINT, RESULT

    if resume:
        ck = Path(out_dir) / CHECKPOINT
        if ck.exists():
            try:
                trainer.load_checkpoint(ck)
            except ValueError as e:
                _fail(str(e))
    elif out_dir:
        previous = [n for n in (RESULT, CHECKPOINT, "capture") if (Path(out_dir) / n).exists()]
        if previous and not force:
            _fail(f"{out_dir} holds a previous run ({', '.join(previous)}): pass --resume to continue it, "
                  f"--force to replace it, or choose another --out")
        for n in previous:  # --force: nothing of the old run may stay beside the new one
            old = Path(out_dir) / n
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    if not quiet:
        click.echo(f"training {model or net} on {dataset}: prop {prop}, update {update}, acc {acc}"
                   f"{' (paper bits)' if paper_bits else ''}, {epochs} epochs, batch {trainer.batch_size}"
                   f"{'; in float, outside the MAC contract: ' + ', '.join(keep_float) if keep_float else ''}", err=True)
    if not quiet:
        trainer.on_epoch = lambda h: click.echo(
            f"epoch {h['epoch']:3d}: train {h['train_error']:6.2f}%  valid {h['valid_error']:6.2f}%  "
            f"test {h['test_error']:6.2f}%  overflow {h['overflow_rate']:.1e}  {h['seconds']:.1f}s", err=True)
    r = trainer.run()
    click.echo(json.dumps({"test_error": r["test_error"], "valid_error": r["valid_error"], "epochs": r["epochs"],
                           "seconds_per_epoch": sum(r["seconds_per_epoch"]) / max(1, len(r["seconds_per_epoch"])),
                           "out": out_dir, **({"keep_float": list(keep_float)} if keep_float else {})}))


command = train_cmd  # found by fewbits.cli's lazy group

if __name__ == "__main__":
    train_cmd()
