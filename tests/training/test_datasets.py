"""Loaders read each real file format (written small in tmp_path) and fail with one clear error."""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from fewbits.training import datasets as ds


def _idx_bytes(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.tobytes()


def _write_idx_set(d: Path, n_train: int, n_test: int, gz: bool, seed: int):
    rng = np.random.RandomState(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.randint(0, 256, (n_train, 28, 28)).astype(np.uint8),
        "train-labels-idx1-ubyte": rng.randint(0, 10, n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.randint(0, 256, (n_test, 28, 28)).astype(np.uint8),
        "t10k-labels-idx1-ubyte": rng.randint(0, 10, n_test).astype(np.uint8),
    }
    d.mkdir(parents=True, exist_ok=True)
    for stem, a in arrays.items():
        if gz:
            with gzip.open(d / (stem + ".gz"), "wb") as f:
                f.write(_idx_bytes(a))
        else:
            (d / stem).write_bytes(_idx_bytes(a))
    return arrays


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_gz_and_raw(tmp_path, gz, name):
    seed = 3
    arrays = _write_idx_set(tmp_path, 60, 12, gz, seed)
    d = ds.load(name, str(tmp_path))
    assert d.input_shape == (1, 28, 28) and d.n_classes == 10
    assert len(d.train.y) + len(d.valid.y) == 60 and len(d.test.y) == 12
    np.testing.assert_array_equal(d.train.x[0, 0] * 255, arrays["train-images-idx3-ubyte"][0])
    np.testing.assert_array_equal(d.test.y, arrays["t10k-labels-idx1-ubyte"])
    np.testing.assert_array_equal(d.valid.y, arrays["train-labels-idx1-ubyte"][len(d.train.y):])


def test_idx_missing_file_names_it(tmp_path):
    _write_idx_set(tmp_path, 10, 5, True, 0)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ds.DatasetError, match="t10k-labels-idx1-ubyte") as e:
        ds.load("mnist", str(tmp_path))
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("damage", ["magic", "truncate", "gzip"])
def test_idx_corrupt_file_is_one_clear_error(tmp_path, damage):
    _write_idx_set(tmp_path, 10, 5, damage == "gzip", 1)
    name = "train-images-idx3-ubyte" + (".gz" if damage == "gzip" else "")
    p = tmp_path / name
    data = p.read_bytes()
    if damage == "magic":
        p.write_bytes(b"\x00\x00\x09\x03" + data[4:])
    elif damage == "truncate":
        p.write_bytes(data[:-7])
    else:
        p.write_bytes(data[:30])  # a cut gzip stream
    with pytest.raises(ds.DatasetError, match=name.replace(".", r"\.")) as e:
        ds.load("mnist", str(tmp_path))
    assert "IDX" in str(e.value)


def _write_cifar(d: Path, per_batch: int, seed: int):
    rng = np.random.RandomState(seed)
    d.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    out = {}
    for n in names:
        x = rng.randint(0, 256, (per_batch, 3072)).astype(np.uint8)
        y = list(rng.randint(0, 10, per_batch))
        with open(d / n, "wb") as f:
            pickle.dump({b"data": x, b"labels": y, b"batch_label": n.encode()}, f)
        out[n] = (x, y)
    return out


def test_cifar10_pickles_gcn_and_zca(tmp_path):
    written = _write_cifar(tmp_path / "cifar-10-batches-py", 12, 5)
    d = ds.load("cifar10", str(tmp_path))
    assert d.input_shape == (3, 32, 32)
    assert len(d.train.y) + len(d.valid.y) == 60 and len(d.test.y) == 12
    np.testing.assert_array_equal(d.test.y, written["test_batch"][1])
    # GCN + ZCA: whitened training features have ~unit covariance along the data directions
    x = d.train.x.reshape(len(d.train.y), -1).astype(np.float64)
    assert abs(x.mean()) < 1e-3


def test_zca_small_and_large_sample_paths_agree():
    rng = np.random.RandomState(0)
    x = rng.randn(40, 30)
    m1, w1 = ds.zca_fit(x)
    m2, w2 = ds.zca_fit(x[:20])  # fewer examples than features: the SVD path
    xc = x[:20] - x[:20].mean(0)
    cov = xc.T @ xc / 20 + 0.1 * np.eye(30)
    s, u = np.linalg.eigh(cov)
    np.testing.assert_allclose(w2, (u / np.sqrt(s)) @ u.T, atol=1e-9)


def test_cifar_corrupt_pickle(tmp_path):
    _write_cifar(tmp_path, 4, 1)
    (tmp_path / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ds.DatasetError, match="data_batch_3.*CIFAR-10 python pickle"):
        ds.load("cifar10", str(tmp_path))


def test_cifar_missing_batch(tmp_path):
    _write_cifar(tmp_path, 4, 1)
    (tmp_path / "test_batch").unlink()
    with pytest.raises(ds.DatasetError, match="test_batch"):
        ds.load("cifar10", str(tmp_path))


def test_svhn_mat(tmp_path):
    import scipy.io

    rng = np.random.RandomState(2)
    for name, n in (("train_32x32.mat", 120), ("test_32x32.mat", 15)):
        x = rng.randint(0, 256, (32, 32, 3, n)).astype(np.uint8)
        y = rng.randint(1, 11, (n, 1)).astype(np.uint8)
        scipy.io.savemat(tmp_path / name, {"X": x, "y": y})
        if name.startswith("test"):
            tx, ty = x, y
    d = ds.load("svhn", str(tmp_path))
    assert d.input_shape == (3, 32, 32)
    assert len(d.train.y) + len(d.valid.y) == 120
    np.testing.assert_array_equal(d.test.y, np.where(ty[:, 0] == 10, 0, ty[:, 0]))
    np.testing.assert_array_equal(d.test.x[0, 1] * 255, tx[:, :, 1, 0])  # channel 1 of image 0


def test_svhn_corrupt_and_missing(tmp_path):
    (tmp_path / "train_32x32.mat").write_bytes(b"garbage")
    with pytest.raises(ds.DatasetError, match="train_32x32.mat.*SVHN"):
        ds.load("svhn", str(tmp_path))
    with pytest.raises(ds.DatasetError, match="test_32x32.mat|train_32x32.mat"):
        ds.load_svhn(str(tmp_path / "nowhere"))


def test_digits_is_embedded():
    d = ds.load("digits")
    assert d.input_shape == (1, 8, 8)
    assert (len(d.train.y), len(d.valid.y), len(d.test.y)) == (1200, 200, 397)
    assert d.train.x.min() >= 0 and d.train.x.max() <= 1


def test_unknown_dataset_and_bad_dir():
    with pytest.raises(ds.DatasetError, match="accepted"):
        ds.load("imagenet")
    with pytest.raises(ds.DatasetError, match="not a folder"):
        ds.load("mnist", "/nonexistent/dir")


FASHION = Path(ds.FASHION_SYSTEM_DIR)


@pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").is_file(),
                    reason=f"real Fashion-MNIST not installed in {FASHION} (Debian: dataset-fashion-mnist)")
def test_real_fashion_mnist_found_by_default():
    d = ds.load("fashion-mnist")
    assert (len(d.train.y), len(d.valid.y), len(d.test.y)) == (50000, 10000, 10000)
    assert d.input_shape == (1, 28, 28)
    assert set(np.unique(d.test.y)) == set(range(10))
    assert np.bincount(d.test.y).tolist() == [1000] * 10  # Fashion-MNIST's balanced test set


class _Payload:
    """A pickle that would create ``marker`` when loaded by a plain ``pickle.load``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar_batch_cannot_run_code(tmp_path, protocol):
    _write_cifar(tmp_path, 4, 1)
    marker = tmp_path / "pwned"
    with open(tmp_path / "data_batch_2", "wb") as f:
        pickle.dump({b"data": _Payload(marker), b"labels": [1]}, f, protocol=protocol)
    with open(tmp_path / "probe", "wb") as f:  # the payload is real: a plain pickle.load runs it
        pickle.dump(_Payload(tmp_path / "probe-ran"), f, protocol=protocol)
    with open(tmp_path / "probe", "rb") as f:
        pickle.load(f)
    assert (tmp_path / "probe-ran").exists()
    with pytest.raises(ds.DatasetError, match=r"unsafe .*data_batch_2: refused .*not loaded"):
        ds.load("cifar10", str(tmp_path))
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar_batches_of_any_protocol_load(tmp_path, protocol):
    """What real batches hold (bytes keys, a uint8 array, int labels, bytes names) passes the allow-list."""
    rng = np.random.RandomState(3)
    for n in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(tmp_path / n, "wb") as f:
            pickle.dump({b"batch_label": b"training batch", b"labels": [int(v) for v in rng.randint(0, 10, 4)],
                         b"data": rng.randint(0, 256, (4, 3072)).astype(np.uint8),
                         b"filenames": [b"a.png"] * 4}, f, protocol=protocol)
    assert len(ds.load("cifar10", str(tmp_path)).test.y) == 4


@pytest.mark.parametrize("damage", ["labels-out-of-range", "image-sizes-differ"])
def test_idx_files_that_disagree_with_the_data_set_are_one_clear_error(tmp_path, damage):
    _write_idx_set(tmp_path, 10, 5, False, 2)
    if damage == "labels-out-of-range":
        (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.array([1, 2, 200, 3, 4], np.uint8)))
        frag = "labels .* go up to 200; accepted class labels 0..9"
    else:
        (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx_bytes(np.zeros((5, 32, 32), np.uint8)))
        frag = "train images are 28x28 but test images 32x32"
    with pytest.raises(ds.DatasetError, match=frag) as e:
        ds.load("mnist", str(tmp_path))
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)
