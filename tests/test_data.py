"""knetapi.data: the shipped data sets (housing, hiawatha), the row split, and the MNIST-format
reader, on small IDX files written here (raw and gzipped, valid and corrupt) and on Debian's
Fashion-MNIST when it is installed."""

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

import knetapi as kn
from knetapi.data import hiawatha, housing, mnist, read_idx, split
from knetapi.data import images as images_module

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
             np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


# ---- housing and split

def test_housing_shapes_and_dtypes():
    x, y = housing()
    assert (x.shape, y.shape) == ((506, 13), (506, 1))
    assert x.dtype == y.dtype == np.float32
    assert np.isfinite(x).all() and np.isfinite(y).all()


def test_housing_features_are_standardized():
    x, _ = housing()
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-5)


def test_housing_targets_are_median_values_in_thousands():
    _, y = housing()
    assert y[0, 0] == 24.0 and y[-1, 0] == np.float32(11.9)     # first and last rows of the file
    assert y.min() == 5.0 and y.max() == 50.0
    np.testing.assert_allclose(y.mean(), 22.5328, atol=1e-3)


def test_data_is_exported_as_kn_data():
    assert kn.data.housing is housing and kn.data.mnist is mnist


def test_split_partitions_the_rows_keeping_x_and_y_paired():
    x, y = housing()
    xtrain, ytrain, xtest, ytest = split(x, y, test_fraction=0.2, rng=0)
    assert (xtrain.shape, ytrain.shape, xtest.shape, ytest.shape) == \
        ((405, 13), (405, 1), (101, 13), (101, 1))
    assert xtrain.dtype == xtest.dtype == ytrain.dtype == ytest.dtype == np.float32
    rows = {tuple(r): t for r, t in zip(np.hstack([x, y]), y[:, 0])}   # every row is distinct
    together = np.vstack([np.hstack([xtrain, ytrain]), np.hstack([xtest, ytest])])
    assert sorted(map(tuple, together)) == sorted(rows)


def test_split_is_reproducible_from_a_seed_or_a_generator():
    x, y = housing()
    first, again = split(x, y, rng=7), split(x, y, rng=np.random.default_rng(7))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    other = split(x, y, rng=8)
    assert not np.array_equal(first[2], other[2])


@pytest.mark.parametrize("fraction", [0.0, 1.0, 0.0001])
def test_split_refuses_an_empty_part(fraction):
    x, y = housing()
    with pytest.raises(ValueError, match="each part needs one"):
        split(x, y, test_fraction=fraction, rng=0)


def test_split_refuses_mismatched_rows_and_bad_rng():
    x, y = housing()
    with pytest.raises(ValueError, match="same number of rows"):
        split(x, y[:-1], rng=0)
    with pytest.raises(TypeError, match="rng must be"):
        split(x, y, rng="seed")


# ---- hiawatha

def test_hiawatha_round_trips_through_its_codes():
    text, vocab, codes = hiawatha()
    assert len(text) == 184_138 and text.startswith("Should you ask me, whence these stories?\n")
    assert "\r" not in text
    assert len(vocab) == 63 and vocab == sorted(set(text))
    assert codes.dtype == np.int64 and codes.shape == (len(text),)
    assert codes.min() == 0 and codes.max() == 62
    assert "".join(np.array(vocab)[codes]) == text


# ---- read_idx and mnist on small synthetic files

def idx_bytes(a: np.ndarray) -> bytes:
    """``a`` in the IDX format: magic number, big-endian uint32 dimensions, big-endian values."""
    header = bytes([0, 0, IDX_CODES[a.dtype], a.ndim])
    dims = b"".join(d.to_bytes(4, "big") for d in a.shape)
    return header + dims + a.astype(a.dtype.newbyteorder(">")).tobytes()


def write(path: Path, data: bytes) -> Path:
    """``data`` into ``path``, gzip-compressed when the name ends in .gz."""
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def mnist_arrays(ntrain: int = 5, ntest: int = 3, seed: int = 0) -> dict:
    """Small random MNIST-like uint8 arrays (with pixels 0 and 255), by file name."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, n in (("train", ntrain), ("t10k", ntest)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        images[0, 0, :2] = (0, 255)
        arrays[f"{part}-images-idx3-ubyte"] = images
        arrays[f"{part}-labels-idx1-ubyte"] = rng.integers(0, 10, n, dtype=np.uint8)
    return arrays


def fake_mnist(folder: Path, gz: bool, ntrain: int = 5, seed: int = 0) -> dict:
    """Four small MNIST-format files in ``folder``; returns their arrays by file name."""
    arrays = mnist_arrays(ntrain=ntrain, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        write(folder / (name + (".gz" if gz else "")), idx_bytes(a))
    return arrays


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("a", [np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
                               np.array([-3, 0, 7], dtype=np.int8),
                               np.array([[-300, 2], [5, 30000]], dtype=np.int16),
                               np.array([1 << 30, -5], dtype=np.int32),
                               np.array([[0.5, -2.25]], dtype=np.float32),
                               np.array([np.pi], dtype=np.float64)],
                         ids=lambda a: f"{a.dtype}{a.shape}")
def test_read_idx_reads_every_type_and_shape(tmp_path, gz, a):
    out = read_idx(write(tmp_path / ("a.idx.gz" if gz else "a.idx"), idx_bytes(a)))
    assert out.dtype == a.dtype and out.dtype.isnative and out.shape == a.shape
    np.testing.assert_array_equal(out, a)
    out[...] = 0                                 # a new, writeable array


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_mnist_reads_a_folder_given_as_path(tmp_path, gz):
    arrays = fake_mnist(tmp_path, gz)
    xtrain, ytrain, xtest, ytest = mnist(tmp_path)
    assert (xtrain.shape, ytrain.shape, xtest.shape, ytest.shape) == \
        ((5, 1, 28, 28), (5,), (3, 1, 28, 28), (3,))
    assert xtrain.dtype == xtest.dtype == np.float32 and ytrain.dtype == ytest.dtype == np.int64
    assert xtrain.min() == 0.0 and xtrain.max() == 1.0
    np.testing.assert_array_equal(xtrain[:, 0] * 255, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(xtest[:, 0], arrays["t10k-images-idx3-ubyte"] / np.float32(255))
    np.testing.assert_array_equal(ytrain, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(ytest, arrays["t10k-labels-idx1-ubyte"])


def test_mnist_reads_knetapi_data_and_a_path_takes_precedence(tmp_path, monkeypatch):
    env_arrays = fake_mnist(tmp_path / "env", gz=True, ntrain=4, seed=1)
    fake_mnist(tmp_path / "arg", gz=False, ntrain=6, seed=2)
    monkeypatch.setenv("KNETAPI_DATA", str(tmp_path / "env"))
    xtrain, ytrain, _, _ = mnist()
    assert xtrain.shape == (4, 1, 28, 28)
    np.testing.assert_array_equal(ytrain, env_arrays["train-labels-idx1-ubyte"])
    assert mnist(str(tmp_path / "arg"))[0].shape == (6, 1, 28, 28)


def test_mnist_reads_the_raw_file_when_the_gzipped_one_is_there_too(tmp_path):
    arrays = fake_mnist(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"not read")
    np.testing.assert_array_equal(mnist(tmp_path)[1], arrays["train-labels-idx1-ubyte"])


# ---- corrupt files: each a ValueError naming the file and the problem

def _header(code: int, *dims: int) -> bytes:
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def corruptions(arrays: dict, gz: bool) -> dict:
    """name of a test case -> (file name, its new content, a pattern the error must match)."""
    images = idx_bytes(arrays["train-images-idx3-ubyte"])
    labels = idx_bytes(arrays["train-labels-idx1-ubyte"])
    t10k_labels = idx_bytes(arrays["t10k-labels-idx1-ubyte"])
    unzipped = " once decompressed" if gz else ""
    return {
        "wrong magic": (
            "train-images-idx3-ubyte", b"\x12\x34" + images[2:],
            f"not an IDX file{unzipped}: magic number 0x12340803"),
        "labels where images belong": (
            "train-images-idx3-ubyte", labels,
            r"not MNIST images: uint8 values of shape \(5,\)"),
        "unknown type code": (
            "train-labels-idx1-ubyte", _header(0x0A, 5) + bytes(5),
            "unknown IDX type code 0x0A"),
        "truncated header": (
            "train-images-idx3-ubyte", images[:9],
            f"truncated: 9 bytes{unzipped}, but a header of 3 dimensions takes 16"),
        "truncated data": (
            "train-images-idx3-ubyte", images[:-10],
            rf"truncated: {len(images) - 10} bytes{unzipped}, but its header gives shape "
            rf"\(5, 28, 28\) of uint8, which takes {len(images)}"),
        "extra bytes": (
            "t10k-labels-idx1-ubyte", t10k_labels + b"\0\0",
            f"2 extra bytes: {len(t10k_labels) + 2} bytes{unzipped}"),
        "too short": (
            "train-labels-idx1-ubyte", b"\0\0",
            f"2 bytes{unzipped}, too short for an IDX header"),
        "wrong image size": (
            "t10k-images-idx3-ubyte", _header(0x08, 3, 27, 28) + bytes(3 * 27 * 28),
            r"not MNIST images: .* expected uint8 of shape \(N, 28, 28\)"),
        "images of int32": (
            "t10k-images-idx3-ubyte", _header(0x0C, 3, 28, 28) + bytes(3 * 784 * 4),
            "not MNIST images: int32"),
        "labels of 2 dimensions": (
            "train-labels-idx1-ubyte", _header(0x08, 5, 1) + bytes(5),
            r"not MNIST labels: uint8 values of shape \(5, 1\)"),
        "label count mismatch": (
            "train-labels-idx1-ubyte", idx_bytes(np.zeros(4, np.uint8)),
            rf"4 labels, but .*train-images-idx3-ubyte{'.gz' if gz else ''} has 5 images"),
    }


CASES = list(corruptions(mnist_arrays(), gz=False))


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("case", CASES)
def test_a_corrupt_file_is_an_error_naming_it(tmp_path, gz, case):
    arrays = fake_mnist(tmp_path, gz)
    name, content, pattern = corruptions(arrays, gz)[case]
    bad = write(tmp_path / (name + (".gz" if gz else "")), content)
    with pytest.raises(ValueError, match=pattern) as err:
        mnist(tmp_path)
    assert str(err.value).startswith(f"{bad}: "), err.value


@pytest.mark.parametrize("content, pattern", [
    (b"\x1f\x8b" + bytes(range(40)), "corrupt gzip data"),
    (gzip.compress(idx_bytes(mnist_arrays()["t10k-images-idx3-ubyte"]))[:-100],
     "corrupt gzip data"),
    (b"some text, not gzip", "not an IDX file nor gzip data, though named .gz: magic number"),
], ids=["garbage after the gzip magic", "truncated gzip stream", "not gzip at all"])
def test_gzip_garbage_is_an_error_naming_the_file(tmp_path, content, pattern):
    fake_mnist(tmp_path, gz=True)
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=pattern) as err:
        mnist(tmp_path)
    assert str(err.value).startswith(f"{bad}: "), err.value


# ---- no data: the error says where it looked and how to get data

HOW_TO_GET = ["apt-get install dataset-fashion-mnist", "KNETAPI_DATA", "mnist(path=...)",
              *FILES]


def test_not_found_in_the_path_lists_the_missing_files(tmp_path):
    fake_mnist(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError) as err:
        mnist(tmp_path)
    text = str(err.value)
    assert f"{tmp_path} (the path argument): has no t10k-labels-idx1-ubyte[.gz]\n" in text
    assert "$KNETAPI_DATA and /usr/share/datasets/fashion-mnist are not searched" in text
    assert all(s in text for s in HOW_TO_GET), text


def test_not_found_in_knetapi_data_says_it_does_not_exist(tmp_path, monkeypatch):
    monkeypatch.setenv("KNETAPI_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError) as err:
        mnist()
    text = str(err.value)
    assert f"{tmp_path / 'nowhere'} ($KNETAPI_DATA): does not exist" in text
    assert all(s in text for s in HOW_TO_GET), text


def test_not_found_by_default_lists_both_places(tmp_path, monkeypatch):
    monkeypatch.delenv("KNETAPI_DATA", raising=False)
    monkeypatch.setattr(images_module, "FASHION_MNIST", tmp_path / "fashion-mnist")
    with pytest.raises(FileNotFoundError) as err:
        mnist()
    text = str(err.value)
    assert re.search(r"Looked in:\n  \$KNETAPI_DATA: not set\n  .*fashion-mnist \(Debian's "
                     r"dataset-fashion-mnist package\): does not exist\n", text), text
    assert all(s in text for s in HOW_TO_GET), text


# ---- the real Fashion-MNIST (Debian's dataset-fashion-mnist), when installed

needs_fashion_mnist = pytest.mark.skipif(
    not FASHION_MNIST.is_dir(),
    reason=f"Debian's dataset-fashion-mnist package is not installed ({FASHION_MNIST} is missing; "
           f"apt-get install dataset-fashion-mnist); the synthetic IDX tests cover the reader")


@needs_fashion_mnist
def test_fashion_mnist_is_read_by_default(monkeypatch):
    monkeypatch.delenv("KNETAPI_DATA", raising=False)
    xtrain, ytrain, xtest, ytest = mnist()
    assert (xtrain.shape, ytrain.shape, xtest.shape, ytest.shape) == \
        ((60000, 1, 28, 28), (60000,), (10000, 1, 28, 28), (10000,))
    assert xtrain.dtype == np.float32 and ytrain.dtype == np.int64
    assert xtrain.min() == 0.0 and xtrain.max() == 1.0
    assert (np.bincount(ytrain) == 6000).all() and (np.bincount(ytest) == 1000).all()


@needs_fashion_mnist
def test_fashion_mnist_labels_through_read_idx():
    labels = read_idx(FASHION_MNIST / "t10k-labels-idx1-ubyte.gz")
    assert labels.shape == (10000,) and labels.dtype == np.uint8 and labels.max() == 9
