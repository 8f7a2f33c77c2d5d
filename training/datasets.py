"""Datasets, read from local files only (never downloaded).

``digits`` ships with scikit-learn; ``fashion-mnist``/``mnist`` are IDX files
(``.gz`` or raw), ``cifar10`` the python pickle batches (global contrast
normalization + ZCA, as the paper's pylearn2 preprocessing), ``svhn`` the
cropped-digit ``.mat`` files.  Splits follow the paper's ``main.py``: MNIST
50000/10000 train/valid from the training set, CIFAR-10 45000/5000.  A
missing or corrupt file raises ``DatasetError`` naming the file, the expected
format and where to put it.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import pickle
from pathlib import Path

import numpy as np

FASHION_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"


class DatasetError(Exception):
    """A dataset file is missing or unreadable (one line: which file, what format, where)."""


@dataclasses.dataclass
class Split:
    x: np.ndarray  # float32, N x C x H x W
    y: np.ndarray  # int64, N


@dataclasses.dataclass
class Dataset:
    name: str
    train: Split
    valid: Split
    test: Split
    n_classes: int

    @property
    def input_shape(self) -> tuple:
        return tuple(self.train.x.shape[1:])


# ---- digits ------------------------------------------------------------
def load_digits_dataset(data_dir=None) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images): 1200 train, 200 valid, 397 test."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    perm = np.random.RandomState(1234).permutation(len(y))  # a fixed split, independent of --seed
    x, y = x[perm], y[perm]
    return Dataset("digits", Split(x[:1200], y[:1200]), Split(x[1200:1400], y[1200:1400]),
                   Split(x[1400:], y[1400:]), 10)


# ---- IDX (MNIST, Fashion-MNIST) ----------------------------------------
IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def _find(directory: Path, stem: str, what: str, hint: str) -> Path:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        p = directory / name
        if p.is_file():
            return p
    raise DatasetError(f"missing {what} file {directory / (stem + '.gz')} (or without .gz): {hint}")


def read_idx(path: Path, expect_dims: int, hint: str = "") -> np.ndarray:
    """An IDX file (unsigned bytes, ``expect_dims`` dimensions), gzip-compressed or raw."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DatasetError(f"cannot read {path}: {e}; expected an IDX file (gzip or raw). {hint}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08 or data[3] != expect_dims:
        raise DatasetError(
            f"corrupt {path}: not an IDX file of unsigned bytes with {expect_dims} dimension(s) "
            f"(magic 0x0000080{expect_dims}). {hint}")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(expect_dims)]
    off = 4 + 4 * expect_dims
    n = int(np.prod(dims))
    if len(data) - off != n:
        raise DatasetError(f"corrupt {path}: header says {dims} ({n} bytes) but {len(data) - off} bytes follow. {hint}")
    return np.frombuffer(data, dtype=np.uint8, offset=off).reshape(dims)


def load_idx_dataset(name: str, data_dir=None) -> Dataset:
    if data_dir is None:
        if name == "fashion-mnist" and Path(FASHION_SYSTEM_DIR).is_dir():
            data_dir = FASHION_SYSTEM_DIR
        else:
            raise DatasetError(
                f"{name}: no --data-dir given; put the four IDX files "
                f"({', '.join(v + '.gz' for v in IDX_FILES.values())}) in a folder and pass --data-dir"
                + (f" (Debian's dataset-fashion-mnist puts them in {FASHION_SYSTEM_DIR})" if name == "fashion-mnist" else ""))
    d = Path(data_dir)
    hint = f"put the {name} IDX files ({', '.join(IDX_FILES.values())}, .gz or raw) in {d}"
    arrays = {}
    for key, stem in IDX_FILES.items():
        p = _find(d, stem, f"{name} IDX", hint)
        arrays[key] = read_idx(p, 3 if key.endswith("x") else 1, hint)
    for part in ("train", "test"):
        if len(arrays[part + "_x"]) != len(arrays[part + "_y"]):
            raise DatasetError(f"{name}: {part} images and labels differ in count in {d}. {hint}")
        if len(arrays[part + "_y"]) and int(arrays[part + "_y"].max()) >= 10:
            raise DatasetError(f"{name}: {part} labels in {d} go up to {int(arrays[part + '_y'].max())}; "
                               f"accepted class labels 0..9. {hint}")
    if arrays["train_x"].shape[1:] != arrays["test_x"].shape[1:]:
        raise DatasetError(f"{name}: train images are {'x'.join(map(str, arrays['train_x'].shape[1:]))} but test "
                           f"images {'x'.join(map(str, arrays['test_x'].shape[1:]))} in {d}; accepted one image size "
                           f"for both. {hint}")
    tx = arrays["train_x"].astype(np.float32)[:, None] / 255.0
    ty = arrays["train_y"].astype(np.int64)
    sx = arrays["test_x"].astype(np.float32)[:, None] / 255.0
    sy = arrays["test_y"].astype(np.int64)
    n_valid = 10000 if len(ty) >= 20000 else max(1, len(ty) // 6)
    n_train = len(ty) - n_valid
    return Dataset(name, Split(tx[:n_train], ty[:n_train]), Split(tx[n_train:], ty[n_train:]), Split(sx, sy), 10)


# ---- CIFAR-10 -------------------------------------------------------------
CIFAR_DIRS = ("cifar-10-batches-py", ".")


# What the real CIFAR-10 batches (and numpy arrays pickled by any numpy version) reference: nothing else
# may be called while unpickling, so a crafted batch file cannot run code.
_PICKLE_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class DataPickleError(pickle.UnpicklingError):
    """A pickle asked for something a data file never holds."""


class _DataUnpickler(pickle.Unpickler):
    """Admits dicts, lists, bytes/str, numbers and numpy arrays/dtypes; refuses every other global."""

    def find_class(self, module, name):
        if (module, name) in _PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise DataPickleError(f"refused {module}.{name}: a data file holds only dicts, lists, bytes, numbers "
                              f"and numpy arrays")


def load_data_pickle(path: Path):
    """Unpickle a data file (Python 2 strings as bytes) with the allow-list above."""
    with open(path, "rb") as f:
        return _DataUnpickler(f, encoding="bytes").load()


def _cifar_batch(path: Path, hint: str):
    try:
        d = load_data_pickle(path)
        x = np.asarray(d[b"data"] if b"data" in d else d["data"], dtype=np.uint8)
        y = np.asarray(d[b"labels"] if b"labels" in d else d["labels"], dtype=np.int64)
    except FileNotFoundError:
        raise DatasetError(f"missing CIFAR-10 file {path}: {hint}") from None
    except DataPickleError as e:
        raise DatasetError(f"unsafe {path}: {e}; not loaded. {hint}") from None
    except Exception as e:  # unpickling errors come in many types
        raise DatasetError(f"corrupt {path}: expected a CIFAR-10 python pickle batch "
                           f"(dict with 'data' N x 3072 uint8 and 'labels'): {e}. {hint}") from None
    if x.ndim != 2 or x.shape[1] != 3072 or len(y) != len(x):
        raise DatasetError(f"corrupt {path}: 'data' must be N x 3072 with N labels. {hint}")
    return x, y


def gcn(x: np.ndarray, scale: float = 55.0, eps: float = 1e-8) -> np.ndarray:
    """Global contrast normalization per example (pylearn2, ``use_std=False``)."""
    x = x - x.mean(axis=1, keepdims=True)
    norms = np.sqrt((x * x).sum(axis=1, keepdims=True))
    return scale * x / np.maximum(norms, eps)


def zca_fit(x: np.ndarray, filter_bias: float = 0.1):
    """ZCA whitening fitted on ``x`` (pylearn2's ZCA with ``filter_bias``): (mean, matrix)."""
    mean = x.mean(axis=0)
    xc = x - mean
    n, d = xc.shape
    if n >= d:
        cov = xc.T @ xc / n + filter_bias * np.eye(d)
        s, u = np.linalg.eigh(cov)
        return mean, (u * (1.0 / np.sqrt(s))) @ u.T
    # fewer examples than features: the same matrix from the thin SVD (cheap for small sets)
    _, sv, vt = np.linalg.svd(xc, full_matrices=False)
    v = vt.T
    inv = 1.0 / np.sqrt(sv * sv / n + filter_bias)
    return mean, (v * inv) @ v.T + (np.eye(d) - v @ v.T) / np.sqrt(filter_bias)


def load_cifar10(data_dir=None) -> Dataset:
    if data_dir is None:
        raise DatasetError("cifar10: pass --data-dir, a folder with data_batch_1..5 and test_batch "
                           "(the python version, cifar-10-python.tar.gz extracted)")
    base = Path(data_dir)
    d = next((base / s for s in CIFAR_DIRS if (base / s / "data_batch_1").is_file()), base)
    hint = f"put data_batch_1..data_batch_5 and test_batch (CIFAR-10 python pickles) in {d}"
    xs, ys = zip(*[_cifar_batch(d / f"data_batch_{i}", hint) for i in range(1, 6)])
    tx, ty = np.concatenate(xs).astype(np.float64), np.concatenate(ys)
    sx, sy = _cifar_batch(d / "test_batch", hint)
    tx, sx = gcn(tx), gcn(sx.astype(np.float64))
    n_train = min(45000, len(ty) - max(1, len(ty) // 10))
    mean, w = zca_fit(tx[:n_train])
    tx, sx = (tx - mean) @ w, (sx - mean) @ w
    to_img = lambda a: a.astype(np.float32).reshape(-1, 3, 32, 32)
    return Dataset("cifar10", Split(to_img(tx[:n_train]), ty[:n_train]), Split(to_img(tx[n_train:]), ty[n_train:]),
                   Split(to_img(sx), sy), 10)


# ---- SVHN -------------------------------------------------------------------
def _svhn_mat(path: Path, hint: str):
    import scipy.io

    if not path.is_file():
        raise DatasetError(f"missing SVHN file {path}: {hint}")
    try:
        m = scipy.io.loadmat(str(path))
        x, y = np.asarray(m["X"]), np.asarray(m["y"]).reshape(-1).astype(np.int64)
    except Exception as e:
        raise DatasetError(f"corrupt {path}: expected a cropped-digit SVHN .mat with 'X' (32x32x3xN uint8) "
                           f"and 'y' (N labels 1..10): {e}. {hint}") from None
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y):
        raise DatasetError(f"corrupt {path}: 'X' must be 32x32x3xN with N labels. {hint}")
    y = np.where(y == 10, 0, y)  # SVHN labels the digit 0 as 10
    return np.transpose(x, (3, 2, 0, 1)).astype(np.float32) / 255.0, y


def load_svhn(data_dir=None) -> Dataset:
    """train_32x32.mat and test_32x32.mat; 400 examples per class of train are the validation set
    (the paper's pylearn2 split also draws 200 per class from ``extra``, not required here)."""
    if data_dir is None:
        raise DatasetError("svhn: pass --data-dir, a folder with train_32x32.mat and test_32x32.mat")
    d = Path(data_dir)
    hint = f"put train_32x32.mat and test_32x32.mat (SVHN cropped digits, format 2) in {d}"
    tx, ty = _svhn_mat(d / "train_32x32.mat", hint)
    sx, sy = _svhn_mat(d / "test_32x32.mat", hint)
    per_class = min(400, max(1, len(ty) // 50))
    valid = np.concatenate([np.flatnonzero(ty == c)[:per_class] for c in range(10)])
    mask = np.ones(len(ty), bool)
    mask[valid] = False
    return Dataset("svhn", Split(tx[mask], ty[mask]), Split(tx[valid], ty[valid]), Split(sx, sy), 10)


LOADERS = {
    "digits": load_digits_dataset,
    "fashion-mnist": lambda data_dir=None: load_idx_dataset("fashion-mnist", data_dir),
    "mnist": lambda data_dir=None: load_idx_dataset("mnist", data_dir),
    "cifar10": load_cifar10,
    "svhn": load_svhn,
}


def load(name: str, data_dir=None) -> Dataset:
    """Load dataset ``name`` from ``data_dir`` (or its default place)."""
    if name not in LOADERS:
        raise DatasetError(f"unknown dataset {name!r}: accepted {', '.join(LOADERS)}")
    if data_dir is not None and not os.path.isdir(data_dir):
        raise DatasetError(f"--data-dir {data_dir} is not a folder")
    return LOADERS[name](data_dir)
