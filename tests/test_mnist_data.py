"""The IDX reader on files the test writes itself, and on the real MNIST test split where present."""
import gzip
import pathlib

import jax
import numpy as np
import pytest

from conftest import REPO
from gan_jax.data import mnist
from gan_jax.data.mnist import DataError

SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist-test"
MNIST_TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_split(directory: pathlib.Path, n=5, gz=True, split="test", images=None, labels=None):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28)) if images is None else images
    labels = rng.integers(0, 10, n) if labels is None else labels
    names = mnist.IDX_NAMES[split]
    for name, array in zip(names, (images, labels)):
        data = idx_bytes(np.asarray(array))
        path = directory / (name + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(data) if gz else data)
    return np.asarray(images, np.uint8), np.asarray(labels, np.uint8)


@pytest.mark.parametrize("gz", [True, False])
def test_reads_valid_files(tmp_path, gz):
    images, labels = write_split(tmp_path, gz=gz)
    data = mnist.load_idx(tmp_path, "test")
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)


def test_truncated_gzip_names_the_file(tmp_path):
    write_split(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: truncated or corrupt gzip"):
        mnist.load_idx(tmp_path, "test")


def test_truncated_raw_file_says_how_much(tmp_path):
    write_split(tmp_path, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: truncated: header says \(5, 28, 28\) "
                                        r"\(3936 bytes\), file has 3836 bytes"):
        mnist.load_idx(tmp_path, "test")


def test_wrong_magic(tmp_path):
    write_split(tmp_path, gz=False)
    # a labels file where the images file should be: valid IDX, wrong magic
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros(5)))
    with pytest.raises(DataError, match="magic number 2049, expected 2051"):
        mnist.load_idx(tmp_path, "test")
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"PK\x03\x04" + bytes(100))  # not IDX at all
    with pytest.raises(DataError, match="magic number"):
        mnist.load_idx(tmp_path, "test")


def test_count_mismatch(tmp_path):
    write_split(tmp_path, images=np.zeros((5, 28, 28)), labels=np.zeros(4))
    with pytest.raises(DataError, match="has 5 images but .* has 4 labels"):
        mnist.load_idx(tmp_path, "test")


def test_missing_split_is_named(tmp_path):
    write_split(tmp_path, split="test")
    with pytest.raises(DataError, match="split 'train' not found .* missing train-images-idx3-ubyte, "
                                        "train-labels-idx1-ubyte.*found: t10k-images"):
        mnist.load_idx(tmp_path, "train")
    with pytest.raises(DataError, match="does not exist; pass `data_dir`"):
        mnist.load_idx(tmp_path / "nowhere", "train")


def test_sampler_scales_and_shapes():
    images = np.stack([np.zeros((28, 28)), np.full((28, 28), 255)]).astype(np.uint8)
    for scale, lo, hi in (("tanh", -1.0, 1.0), ("sigmoid", 0.0, 1.0)):
        x = np.asarray(mnist.image_sampler(images, scale)(jax.random.key(0), 64))
        assert x.shape == (64, 784) and x.dtype == np.float32
        assert set(np.unique(x)) == {lo, hi}


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"real MNIST not present at {SHARED_MNIST}")
def test_real_mnist_test_split():
    data = mnist.load("mnist", "test", SHARED_MNIST)
    assert data.images.shape == (10000, 28, 28) and data.images.dtype == np.uint8
    assert np.bincount(data.labels, minlength=10).tolist() == MNIST_TEST_LABEL_COUNTS
    assert 30 < data.images.mean() < 40  # MNIST's mean pixel is about 33


def test_tfds_failure_becomes_one_clear_error(monkeypatch):
    import tensorflow_datasets as tfds

    def offline(*args, **kwargs):
        raise ConnectionError("Failed to establish a new connection")

    monkeypatch.setattr(tfds, "builder", offline)
    with pytest.raises(DataError, match=r"could not provide mnist/train \(ConnectionError: Failed to establish.*"
                                        r"pass `data_dir`, a directory holding the IDX files"):
        mnist.load("mnist", "train")
    with pytest.raises(DataError, match="unknown dataset 'cifar10'"):
        mnist.load("cifar10", "train")


def test_tfds_download_path_imports_everything_it_needs(monkeypatch, tmp_path):
    """The real TFDS path, offline: it must get as far as the network (a missing dependency, such as the
    importlib_resources that TFDS's download code imports undeclared, would fail before that)."""
    import socket

    from tensorflow_datasets.core.download import downloader

    monkeypatch.setattr(downloader, "MAX_RETRIES", 0)  # its retries back off for minutes

    def no_network(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(mnist, "_check_download_host", lambda builder, name: None)  # go on to TFDS's download
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"could not provide mnist/train \((ConnectionError|DownloadError|"
                                        r"NameResolutionError|gaierror)") as error:
        mnist.load("mnist", "train")
    assert "ModuleNotFoundError" not in str(error.value)


def test_tfds_without_network_fails_at_once_naming_the_host(monkeypatch, tmp_path):
    import socket
    import time

    def no_network(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"needs to download mnist from storage\.googleapis\.com, which cannot be "
                                        r"reached .*; pass `data_dir`"):
        mnist.load("mnist", "train")
    assert time.perf_counter() - start < 20  # TFDS's own retries take minutes
