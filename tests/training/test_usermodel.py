"""``fewbits.training.usermodel``: a user's ``FILE.py:FUNCTION``, each problem one ``ModelError``
line, only the named file run; ``probe`` finds the sites' shapes and the largest layer."""

import sys

import pytest
from fewbits.training import usermodel as um

from .helpers import EXAMPLES

GOOD = """
from torch import nn

def net(input_shape, n_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 7), nn.ReLU(), nn.Linear(7, n_classes))

not_a_function = 3

def returns_list(input_shape, n_classes):
    return [1]

def raises(input_shape, n_classes):
    raise RuntimeError("no GPU here")

def wrong_shape(input_shape, n_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(65, n_classes))

def wrong_output(input_shape, n_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, n_classes + 1))

def lstm(input_shape, n_classes):
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(8, 4)
            self.fc = nn.Linear(4, n_classes)
        def forward(self, x):
            return self.fc(self.rnn(x.reshape(x.shape[0], 8, 8))[0][:, -1])
    return M()

def no_matmul(input_shape, n_classes):
    return nn.Sequential(nn.Flatten(), nn.AdaptiveAvgPool1d(n_classes))
"""


@pytest.fixture
def model_file(tmp_path):
    f = tmp_path / "mymodel.py"
    f.write_text(GOOD)
    return f


@pytest.mark.parametrize("func,needle", [
    ("missing", "defines no 'missing' (its functions and classes: lstm, net, no_matmul, raises, returns_list"),
    ("not_a_function", "is a int, not a function"),
    ("returns_list", "returned a list, not an nn.Module"),
    ("raises", "net_raises"),
    ("wrong_shape", "fails on a batch of input shape (2, 1, 8, 8)"),
    ("wrong_output", "to (2, 11); accepted logits of shape (batch, 10)"),
    ("lstm", "rnn (LSTM) under the MAC contract"),
    ("no_matmul", "runs no matmul"),
])
def test_each_problem_is_one_line(model_file, func, needle):
    needle = "raises((1, 8, 8), 10) failed: RuntimeError: no GPU here" if needle == "net_raises" else needle
    with pytest.raises(um.ModelError) as e:
        um.probe(um.parse_ref(f"{model_file}:{func}"), (1, 8, 8), 10)
    msg = str(e.value)
    assert needle in msg and "\n" not in msg, msg


@pytest.mark.parametrize("text,needle", [
    ("mymodel.py", "accepted FILE.py:FUNCTION"),
    ("mymodel.txt:net", "is not a .py file"),
    ("mymodel.py:1net", "is not a function name"),
    ("absent.py:net", "no such file"),
    ("sub.py:net", "a folder"),
])
def test_bad_references(model_file, text, needle):
    (model_file.parent / "sub.py").mkdir()
    with pytest.raises(um.ModelError, match=needle):
        um.parse_ref(text, base=model_file.parent)


def test_a_file_that_fails_to_run_is_one_line(tmp_path):
    f = tmp_path / "broken.py"
    f.write_text("import torch\nraise SystemExit('bye')\n")
    with pytest.raises(um.ModelError, match=r"running broken.py failed: SystemExit: bye"):
        um.load_function(um.parse_ref(f"{f}:net"))


def test_only_the_named_file_is_imported(tmp_path):
    """A sibling ``helper.py`` the model file does not import stays unrun, and the folder is not put on sys.path."""
    (tmp_path / "helper.py").write_text("raise RuntimeError('must not run')\n")
    (tmp_path / "m.py").write_text("import sys\nSEEN = list(sys.path)\n"
                                   "def net(s, n):\n    import torch\n    return torch.nn.Linear(64, n)\n")
    path = list(sys.path)
    mod_fn = um.load_function(um.parse_ref(f"{tmp_path / 'm.py'}:net"))
    assert str(tmp_path) not in sys.modules[mod_fn.__module__].SEEN and sys.path == path
    assert "helper" not in sys.modules


def test_confine_refuses_a_file_outside_the_folder(tmp_path, model_file):
    inner = tmp_path / "sweeps"
    inner.mkdir()
    (inner / "link.py").symlink_to(model_file)
    for text in ("../mymodel.py:net", f"{model_file}:net", "link.py:net"):
        with pytest.raises(um.ModelError, match="outside"):
            um.parse_ref(text, base=inner, confine=True)
    assert um.parse_ref("../mymodel.py:net", base=inner).path == model_file.resolve()  # not confined: fine


def test_probe_of_the_lenet_example():
    p = um.probe(um.parse_ref(f"{EXAMPLES / 'lenet.py'}:lenet"), (1, 8, 8), 10)
    # conv 1->6 5x5, conv 6->16 5x5, linear 16*2*2 -> 120 -> 84 -> 10, in forward order
    assert p.shapes == {"features.0": (25, 6), "features.3": (150, 16), "classifier.0": (64, 120),
                        "classifier.2": (120, 84), "classifier.4": (84, 10)}
    assert p.largest == "features.3" and p.hardware == {"rows": 2, "cols": 2, "k_max": 150}
