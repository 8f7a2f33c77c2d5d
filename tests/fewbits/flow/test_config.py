"""Sweep files: rejected before any work with one line naming the key and its line; expanded into points."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from fewbits import cli
from fewbits.flow.config import SweepConfigError, find_line, parse_sweep

from ..conftest import tiny_toml


def _line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


BAD = [
    # (id, edit of the tiny sweep, fragment of the bad line, words the message must hold)
    ("unknown-top-key", lambda t: t.replace("epochs = 1", "epochs = 1\nepoch = 3"), "epoch = 3", ["epoch", "unknown key"]),
    ("unknown-table-key", lambda t: t.replace("rows = 1", "rows = 1\nrowz = 2"), "rowz", ["hardware.rowz", "unknown key"]),
    ("unknown-grid-key", lambda t: t.replace("int_bits = [2]", "int_bits = [2]\nmax_overflow = [0.01]"),
     "max_overflow", ["grid[0].max_overflow", "unknown key"]),
    ("bad-float-format", lambda t: t + '\n[[grid]]\nfamily = "float"\nformats = ["float:99:2"]\n', "float:99:2",
     ["grid[2].formats", "bad format"]),
    ("not-a-float", lambda t: t + '\n[[grid]]\nfamily = "float"\nformats = ["fixed:8:4"]\n', 'formats = ["fixed:8:4"]',
     ["grid[2].formats", "not a float"]),
    ("bad-family", lambda t: t.replace('family = "dfixed"', 'family = "dfixd"'), 'family = "dfixd"',
     ["grid[1].family", "dfixd"]),
    ("negative-epochs", lambda t: t.replace("epochs = 1", "epochs = -3"), "epochs = -3", ["epochs", "-3", "positive"]),
    ("empty-widths", lambda t: t.replace("widths = [6]\nupdate", "widths = []\nupdate"), "widths = []", ["grid[1].widths", "empty"]),
    ("bad-target", lambda t: t.replace('targets = ["cmos"]', 'targets = ["cmos", "asic"]'), "targets",
     ["synth.targets", "asic"]),
    ("bad-width", lambda t: t.replace("widths = [8]\nint", "widths = [1]\nint"), "widths = [1]",
     ["grid[0].widths", "2..62"]),
    ("grid-not-tables", lambda t: "grid = [1, 2]\n" + t.split("[[grid]]")[0], "grid = [1, 2]",
     ["grid", "not a table", "[[grid]]"]),
    ("bad-acc", lambda t: t + '\n[[grid]]\nfamily = "float"\nformats = ["fp16"]\nacc = ["exact", "fp32,chunk=0"]\n',
     "fp32,chunk=0", ["grid[2].acc", "chunk=0"]),
    ("fixed-acc", lambda t: t + '\n[[grid]]\nfamily = "fp32"\nacc = ["acc:40:20"]\n', "acc:40:20",
     ["grid[2].acc", "accepted exact"]),
    ("acc-on-fixed", lambda t: t.replace("int_bits = [2]", 'int_bits = [2]\nacc = ["fp32"]'), 'acc = ["fp32"]',
     ["grid[0].acc", "unknown key"]),
    ("boolean-lr", lambda t: t.replace("[train]", "[train]\nlr = true"), "lr = true", ["train.lr", "True", "positive"]),
    ("bad-multiplier", lambda t: t.replace("rows = 1", 'rows = 1\nmultiplier = "wallace"'), "wallace",
     ["hardware.multiplier", "wallace", "yosys, booth, dadda"]),
]


@pytest.mark.parametrize("case_id,edit,fragment,words", BAD, ids=[b[0] for b in BAD])
def test_bad_sweep_file_is_one_line_with_key_and_line(tmp_path, case_id, edit, fragment, words):
    text = edit(tiny_toml())
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    results = tmp_path / "results"
    r = CliRunner().invoke(cli.main, ["sweep", str(cfg), "--results", str(results)])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines() if hasattr(r, "stderr") else r.output.strip().splitlines()
    assert len(lines) == 1, r.output
    line = lines[0]
    assert line.startswith(f"fewbits: error: {cfg}:{_line_of(text, fragment)}:"), line
    for w in words:
        assert w in line, line
    assert "Traceback" not in r.output
    assert not results.exists()  # rejected before any work


def test_empty_grid_is_rejected(tmp_path):
    text = tiny_toml().split("[[grid]]")[0]
    with pytest.raises(SweepConfigError, match=r"no \[\[grid\]\] table"):
        parse_sweep(text, "s.toml")


def test_toml_syntax_error_names_the_line():
    text = tiny_toml().replace("rows = 1", "rows = = 1")
    with pytest.raises(SweepConfigError) as e:
        parse_sweep(text, "s.toml")
    assert str(e.value).startswith(f"s.toml:{_line_of(text, 'rows = = 1')}: not valid TOML")


def test_grid_expands_to_the_cross_product():
    text = tiny_toml() + ('\n[[grid]]\nfamily = "fixed"\nwidths = [10, 12]\nupdate_widths = [14, 16]\n'
                          'int_bits = [2, 4]\n\n[[grid]]\nfamily = "dfixed"\nwidths = [6]\nmax_overflow = [1e-4, 1e-2]\n'
                          '\n[[grid]]\nfamily = "float"\nformats = ["fp16", "bf16"]\n\n[[grid]]\nfamily = "fp32"\n')
    cfg = parse_sweep(text, "s.toml")
    props = [(p["family"], p["prop"], p["update"], p["int_bits"], p["max_overflow"]) for p in cfg.points]
    assert len(props) == 2 + 2 * 2 * 2 + 2 + 2 + 1
    assert ("fixed", "fixed:10:7", "fixed:14:11", 2, None) in props  # frac = width - sign - int bits
    assert ("fixed", "fixed:12:7", "fixed:16:11", 4, None) in props
    assert ("dfixed", "dfixed:6", "dfixed:6", None, 1e-2) in props
    assert ("dfixed", "dfixed:6", "dfixed:8", None, 1e-4) in props  # update_offsets = [2]
    assert ("float", "bf16", "bf16", None, None) in props
    assert ("fp32", "fp32", "fp32", None, None) in props
    assert len({str(p) for p in cfg.points}) == len(cfg.points)


def test_acc_axis_of_float_tables():
    """``acc`` multiplies a float (or fp32) table's points; exact points keep their old form (no key)."""
    base = parse_sweep(tiny_toml() + '\n[[grid]]\nfamily = "float"\nformats = ["fp16"]\n', "s.toml").points
    text = tiny_toml() + '\n[[grid]]\nfamily = "float"\nformats = ["fp16"]\nacc = ["exact", "fp32", "bf16,chunk=4"]\n'
    cfg = parse_sweep(text, "s.toml")
    floats = [p for p in cfg.points if p["family"] == "float"]
    assert [p.get("acc") for p in floats] == [None, "fp32", "bf16,chunk=4"]
    assert "acc" not in floats[0] and floats[0] in base
    from fewbits.flow.config import run_spec
    from fewbits.flow.engine import point_label
    from fewbits.flow.stages import plan

    assert str(run_spec(floats[2]).acc) == "bf16,chunk=4" and run_spec(floats[0]).acc is None
    assert point_label(floats[1]) == "fp16 (acc fp32)"
    train = next(i for i in plan(floats[1]) if i.stage.name == "train")
    assert train.config["acc"] == "fp32" and "acc" not in next(i for i in plan(floats[0]) if i.stage.name == "train").config


def test_paper_bits_radix_counts_no_sign():
    text = tiny_toml().replace("limit_train = 100", "limit_train = 100\npaper_bits = true")
    cfg = parse_sweep(text, "s.toml")
    fixed = [p for p in cfg.points if p["family"] == "fixed"][0]
    assert fixed["prop"] == "fixed:8:6"  # 8 bits without sign, 2 integer bits -> 6 fractional


def test_find_line_of_array_table_keys():
    text = '[[grid]]\nfamily = "a"\n\n[[grid]]\n# c\nfamily = "b"\n[x]\nfamily = 1\n'
    assert find_line(text, "grid", "family", 0) == 2
    assert find_line(text, "grid", "family", 1) == 6
    assert find_line(text, "x", "family") == 8
    assert find_line(text, "grid", None, 1) == 4


KEYS_SWEEP = """\
seeds = [0, 1]

[train]
paper_bits = {paper}
{ranges}

[hardware]
rows = 2
cols = 3

[[grid]]
family = "fixed"
widths = [8, 20]
update_offsets = [0, 4]
int_bits = [-2, 3]
round = "rna"

[[grid]]
family = "dfixed"
widths = [6, 10]
update_widths = [12]
max_overflow = [1e-4, 1e-3]

[[grid]]
family = "float"
formats = ["fp16", "float:5:4", "fp32"]

[[grid]]
family = "fp32"
"""


RANGES = "range_warmup = 1\nrange_every = 7"


@pytest.mark.parametrize("paper,ranges,digest", [
    ("true", RANGES, "2ceedf244960191fdce8fe8908902723ed4bec9ef04f194ca4e130fe2d65e3ca"),
    ("false", RANGES, "2ca438115edd02d640416c04f947fcd284e693742983932e68f41a0b7e28e69c"),
    ("false", "", "22bbed35000ea8a8fea715d01f62e8071ec7572f777c3fde288914f94b9357f5")])
def test_point_and_stage_keys_are_those_of_existing_stores(paper, ranges, digest):
    """The results store keys points and stages by hashes of their configuration: the digest of every
    key of this sweep was taken before the RunSpec existed, so a user's cached results stay valid."""
    import hashlib

    from fewbits.flow import stages
    from fewbits.flow.engine import point_key, stage_key

    def keys_of(p):
        keys = {}
        for inst in stages.plan(p):
            keys[inst.name] = stage_key(inst, keys)
        return keys

    lines, shared = [], {}
    for p in parse_sweep(KEYS_SWEEP.format(paper=paper, ranges=ranges)).points:
        # seeds as replicates: a later seed's cosim/power read the first seed's capture (its hw_seed); without
        # that (the point as stores before it held it) every key is the one the digest was taken of
        alone = {k: v for k, v in p.items() if k != "hw_seed"}
        keys = keys_of(alone)
        lines.append(point_key(alone) + " " + " ".join(f"{k}={v}" for k, v in sorted(keys.items())))
        now = keys_of(p)
        label = (p["prop"], p["update"], p.get("max_overflow"))
        if p["seed"] == 0:
            assert p == alone and now == keys
            shared[label] = now
        else:  # its own training; the hardware stages of seed 0, whose training train.hw names
            assert now["train"] == keys["train"] and now["train.hw"] == shared[label]["train"]
            assert {k: v for k, v in now.items() if k not in ("train", "train.hw")} == \
                {k: v for k, v in shared[label].items() if k != "train"}
    assert len(lines) == 32
    assert hashlib.sha256("\n".join(lines).encode()).hexdigest() == digest


def test_the_points_run_spec_resolves_the_paper_bits_once():
    from fewbits.flow.config import run_spec
    from fewbits.sim import RNA, DynamicFixed

    pts = parse_sweep(KEYS_SWEEP.format(paper="true", ranges=RANGES)).points
    p = next(p for p in pts if p["prop"] == "dfixed:10" and p["max_overflow"] == 1e-3)
    s = run_spec(p)
    assert s.prop == DynamicFixed(11, symmetric=True, round=RNA) and s.update == DynamicFixed(13, symmetric=True, round=RNA)
    assert (s.max_overflow, s.range_every, s.range_warmup, s.rows, s.cols) == (1e-3, 7, 1, 2, 3)
    assert s.mac("forward").a_fmt == s.prop
    fx = next(p for p in pts if p["prop"].startswith("fixed:20:") and p["int_bits"] == 3)
    assert fx["prop"] == "fixed:20:17,round=rna" and run_spec(fx).prop.width == 21


# ---- networks = ["FILE.py:FUNCTION"]: a user's model in a sweep ------------------------------------------
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
USER_SWEEP = """\
datasets = ["digits"]
networks = [{nets}]
epochs = 1
{hardware}
[[grid]]
family = "fixed"
widths = [8]
"""


def _user_sweep(tmp_path, nets, hardware=""):
    shutil.copy(EXAMPLES / "lenet.py", tmp_path / "lenet.py")
    f = tmp_path / "sweep.toml"
    f.write_text(USER_SWEEP.format(nets=", ".join(f'"{n}"' for n in nets), hardware=hardware))
    return f


def test_a_model_file_is_a_network_with_the_array_of_its_largest_layer(tmp_path):
    from fewbits.flow.config import load_sweep

    cfg = load_sweep(_user_sweep(tmp_path, ["lenet.py:lenet", "mlp-small"]))
    user, builtin = cfg.points
    assert user["net"] == "lenet.py:lenet" and builtin["net"] == "mlp-small"
    assert user["model"]["path"] == str((tmp_path / "lenet.py").resolve()) and user["model"]["function"] == "lenet"
    assert user["model"]["capture"] == "features.3" and len(user["model"]["sha256"]) == 64
    assert user["hardware"] == {"rows": 2, "cols": 2, "k_max": 150}  # conv 6 -> 16, 5x5: K = 150
    assert builtin["hardware"] == {"rows": 2, "cols": 2, "k_max": 256} and "model" not in builtin  # as before
    given = load_sweep(_user_sweep(tmp_path, ["lenet.py:lenet"], "[hardware]\ncols = 1\nk_max = 512\n")).points[0]
    assert given["hardware"] == {"rows": 2, "cols": 1, "k_max": 512}  # the file's keys win, the rest follow


def test_an_edited_model_file_changes_the_point_key(tmp_path):
    from fewbits.flow.config import load_sweep
    from fewbits.flow.engine import point_key

    f = _user_sweep(tmp_path, ["lenet.py:lenet"])
    before = point_key(load_sweep(f).points[0])
    (tmp_path / "lenet.py").write_text((tmp_path / "lenet.py").read_text() + "\n# tuned\n")
    assert point_key(load_sweep(f).points[0]) != before


@pytest.mark.parametrize("net,needle", [
    ("../lenet.py:lenet", "outside"),
    ("ABS:lenet", "outside"),
    ("lenet.py:nope", "defines no 'nope'"),
    ("missing.py:lenet", "no such file"),
    ("resnet", "accepted cifar-conv"),
])
def test_bad_model_networks_are_one_line_with_the_key_line(tmp_path, net, needle):
    from fewbits.flow.config import SweepConfigError, load_sweep

    inner = tmp_path / "sweeps"
    inner.mkdir()
    shutil.copy(EXAMPLES / "lenet.py", tmp_path / "lenet.py")  # beside, not inside, the sweep's folder
    net = net.replace("ABS", str(tmp_path / "lenet.py"))
    f = _user_sweep(inner, [net])
    with pytest.raises(SweepConfigError) as e:
        load_sweep(f)
    msg = str(e.value)
    assert msg.startswith(f"{f}:2: networks: ") and needle in msg and "\n" not in msg, msg


RNN_MODEL = ("from torch import nn\n"
             "class R(nn.Module):\n    def __init__(self, n):\n        super().__init__()\n"
             "        self.rnn = nn.RNN(8, 4)\n        self.fc = nn.Linear(4, n)\n"
             "    def forward(self, x):\n        return self.fc(self.rnn(x.reshape(-1, 8, 8))[0][:, -1])\n"
             "def rnn(s, n):\n    return R(n)\n")


def test_keep_float_reaches_the_model_points_training_only(tmp_path):
    """``[train] keep_float``: probed with the model (an nn.RNN passes), carried by the model points and
    their training stage config; built-in points of the same sweep and sweeps without it keep their keys."""
    from fewbits.flow import stages
    from fewbits.flow.config import load_sweep, run_spec
    from fewbits.flow.engine import point_key

    (tmp_path / "m.py").write_text(RNN_MODEL)
    f = _user_sweep(tmp_path, ["m.py:rnn", "mlp-small"])
    f.write_text(f.read_text().replace("epochs = 1\n", 'epochs = 1\n[train]\nkeep_float = ["rnn"]\n'))
    user, builtin = load_sweep(f).points
    assert user["model"]["keep_float"] == ["rnn"] and "keep_float" not in user["train"]
    cfg = stages._train_config(user, run_spec(user))
    assert cfg["keep_float"] == ["rnn"] and cfg["model"].endswith("m.py:rnn")
    assert "keep_float" not in stages._train_config(builtin, run_spec(builtin))
    plain = load_sweep(_user_sweep(tmp_path, ["mlp-small"])).points[0]
    assert point_key(plain) == point_key(builtin)


@pytest.mark.parametrize("value,networks,needle", [
    ('["rnm"]', '"m.py:rnn"', "keep_float names no module: 'rnm'"),
    ('"rnn"', '"m.py:rnn"', "accepted a list of module paths"),
    ("[]", '"m.py:rnn"', "accepted a list of module paths"),
    ('["L0"]', '"mlp-small"', "applies to model files"),
    (None, '"m.py:rnn"', "cannot put rnn (RNN) under the MAC contract"),
])
def test_bad_keep_float_is_one_line(tmp_path, value, networks, needle):
    from fewbits.flow.config import SweepConfigError, load_sweep

    (tmp_path / "m.py").write_text(RNN_MODEL)
    f = tmp_path / "sweep.toml"
    f.write_text(USER_SWEEP.format(nets=networks, hardware="")
                 + (f"[train]\nkeep_float = {value}\n" if value is not None else ""))
    with pytest.raises(SweepConfigError) as e:
        load_sweep(f)
    msg = str(e.value)
    assert needle in msg and "\n" not in msg, msg


@pytest.mark.parametrize("arch", ["booth", "dadda"])
def test_multiplier_reaches_the_array_spec(arch):
    """``[hardware] multiplier``: the run spec's MacSpec of every matmul builds that architecture; the
    default leaves the points (and their store keys) as they were."""
    from fewbits.flow.config import run_spec

    base = KEYS_SWEEP.format(paper="false", ranges="")
    chosen = parse_sweep(base.replace("cols = 3", f'cols = 3\nmultiplier = "{arch}"')).points
    plain = parse_sweep(base).points
    fx = [p for p in chosen if p["prop"].startswith("fixed")]
    assert fx and all(run_spec(p).mac(k).multiplier == arch for p in fx for k in ("forward", "weight_grad"))
    assert all("multiplier" not in p["hardware"] and run_spec(p).mac().multiplier == "yosys" for p in plain)
    assert [{**p, "hardware": {k: v for k, v in p["hardware"].items() if k != "multiplier"}} for p in chosen] == plain


def test_limit_eval_reaches_the_train_stage_only_when_set():
    base = parse_sweep(tiny_toml(), "s.toml").points
    cfg = parse_sweep(tiny_toml().replace("limit_train = 100", "limit_train = 100\nlimit_eval = 50"), "s.toml")
    from fewbits.flow.stages import plan

    train = next(i for i in plan(cfg.points[0]) if i.stage.name == "train")
    assert train.config["limit_eval"] == 50
    assert "limit_eval" not in base[0]["train"]  # absent: the points (and store keys) of before
    assert "limit_eval" not in next(i for i in plan(base[0]) if i.stage.name == "train").config
    with pytest.raises(SweepConfigError, match="limit_eval"):
        parse_sweep(tiny_toml().replace("limit_train = 100", "limit_train = 100\nlimit_eval = 0"), "s.toml")


def test_corners_off_reaches_the_cosim_stage_only_when_set():
    from fewbits.flow.stages import plan

    def cosim(p):
        return next(i for i in plan(p) if i.stage.name == "cosim").config

    base = parse_sweep(tiny_toml(), "s.toml").points
    off = parse_sweep(tiny_toml().replace("max_tiles = 4", "max_tiles = 4\ncorners = false"), "s.toml").points
    assert cosim(off[0])["corners"] is False
    assert "corners" not in base[0]["cosim"] and "corners" not in cosim(base[0])  # the points and keys of before
    on = parse_sweep(tiny_toml().replace("max_tiles = 4", "max_tiles = 4\ncorners = true"), "s.toml").points
    assert on == base
    with pytest.raises(SweepConfigError, match=r"cosim.corners: 'no': accepted true or false"):
        parse_sweep(tiny_toml().replace("max_tiles = 4", 'max_tiles = 4\ncorners = "no"'), "s.toml")
