"""MNIST-style image datasets: IDX files read offline, or tensorflow-datasets; kept on device as uint8 and
sampled by index inside the training scan (no host input pipeline per step)."""
from __future__ import annotations

import gzip
import hashlib
import pathlib
import zlib
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.core import pieces
from gan_jax.errors import DataError

IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # uint8 data with 3 and 1 dimensions
GET_DATA_HINT = ("pass `data_dir`, a directory holding the IDX files (e.g. ../shared/data/mnist-test for MNIST's "
                 "test split, /usr/share/datasets/fashion-mnist after `apt-get install dataset-fashion-mnist`), "
                 "or run where tensorflow-datasets can download the dataset (with pip install -e '.[tfds]': "
                 "TFDS needs tensorflow to build MNIST the first time)")


class ImageDataset(NamedTuple):
    """An image dataset by name: its images are loaded from files (`load`), not drawn by a formula."""

    name: str
    image_shape: tuple[int, int, int] = (28, 28, 1)
    num_classes: int = 10


IMAGE_DATASETS = {name: ImageDataset(name) for name in ("mnist", "fashion_mnist")}
TFDS_NAMES = tuple(IMAGE_DATASETS)  # the names tensorflow-datasets knows them by
# Stacked MNIST (Metz et al. 2017; Srivastava et al. 2017): three MNIST digits drawn independently, stacked
# as the channels of one 28x28x3 image: 1,000 modes (digit triples). Built from MNIST's files.
IMAGE_DATASETS["stacked_mnist"] = ImageDataset("stacked_mnist", (28, 28, 3), 1000)
STACKED = 3


class ImageData(NamedTuple):
    images: np.ndarray  # uint8 [n, height, width] (MNIST's files), or [n, h, w, c] (gan_jax.data.images)
    labels: np.ndarray | None  # integers [n]: uint8 digits for MNIST; None for unlabelled images


def _read_bytes(path: pathlib.Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise DataError(f"{path}: truncated or corrupt gzip file ({e}); download it again") from None


def read_idx(path: str | pathlib.Path, magic: int | None = None) -> np.ndarray:
    """One IDX file (gzip or raw), validated: magic number (`magic` if given), dimensions and size."""
    path = pathlib.Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: {len(data)} bytes is too short for an IDX header; download it again")
    if magic is not None and int.from_bytes(data[:4], "big") != magic:
        raise DataError(f"{path}: magic number {int.from_bytes(data[:4], 'big')}, expected {magic}; "
                        "the file is misnamed or corrupt")
    zero, dtype_code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or dtype_code != 0x08 or not 1 <= ndim <= 4:
        raise DataError(f"{path}: bad magic number 0x{data[:4].hex()} (expected 0x0000080N, uint8 IDX); "
                        "this is not an MNIST-style IDX file")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated header ({len(data)} of {header} bytes); download it again")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(f"{path}: {problem}: header says {dims} ({expected} bytes), file has {len(data)} bytes")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def _find(data_dir: pathlib.Path, name: str) -> pathlib.Path | None:
    for candidate in (data_dir / name, data_dir / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def load_idx(data_dir: str | pathlib.Path, split: str = "train") -> ImageData:
    """The images and labels of `split` from a directory of IDX files (gzip or raw)."""
    data_dir = pathlib.Path(data_dir)
    if split not in IDX_NAMES:
        raise DataError(f"unknown split {split!r}; choose one of {sorted(IDX_NAMES)}")
    if not data_dir.is_dir():
        raise DataError(f"`data_dir` {data_dir} does not exist; {GET_DATA_HINT}")
    paths = [_find(data_dir, name) for name in IDX_NAMES[split]]
    if None in paths:
        present = sorted(p.name for p in data_dir.iterdir() if "ubyte" in p.name) or ["no IDX files"]
        missing = [n for n, p in zip(IDX_NAMES[split], paths) if p is None]
        raise DataError(f"split {split!r} not found in {data_dir}: missing {', '.join(missing)}[.gz] "
                        f"(found: {', '.join(present)})")
    images_path, labels_path = paths
    images, labels = read_idx(images_path, IMAGES_MAGIC), read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise DataError(f"{labels_path}: label {labels.max()} out of range 0-9")
    return ImageData(images, labels)


def load_tfds(name: str = "mnist", split: str = "train", data_dir: str | None = None) -> ImageData:
    """`name` through tensorflow-datasets (downloading and preparing it if needed and possible)."""
    import contextlib
    import io
    import logging

    import tensorflow_datasets as tfds

    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)  # TFDS warns of a dataset not yet prepared; a failure gets one line below
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        if not builder.is_prepared():
            _check_download_host(builder, name)
        with contextlib.redirect_stdout(io.StringIO()):  # TFDS prints progress; a failure gets one line below
            builder.download_and_prepare()
        source = builder.as_data_source(split=split)
        items = [source[i] for i in range(len(source))]
    except DataError:
        raise
    except Exception as e:  # no network, no tensorflow to build, unknown split: say what to do instead
        raise DataError(f"tensorflow-datasets could not provide {name}/{split} ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}); {GET_DATA_HINT}") from None
    finally:
        absl.setLevel(level)
    images = np.stack([np.asarray(item["image"])[..., 0] for item in items]).astype(np.uint8)
    return ImageData(images, np.asarray([item["label"] for item in items], np.uint8))


def _check_download_host(builder, name: str) -> None:
    """Fail at once when the dataset's download host does not resolve (no network): TFDS itself retries
    with back-off for minutes before it gives up."""
    import socket
    import urllib.parse

    host = urllib.parse.urlparse(getattr(builder, "URL", "") or "").hostname
    if host is None:
        return
    try:
        socket.getaddrinfo(host, None)
    except OSError as e:
        raise DataError(f"tensorflow-datasets needs to download {name} from {host}, which cannot be reached "
                        f"({e}); {GET_DATA_HINT}") from None


def load(name: str = "mnist", split: str = "train", data_dir: str | pathlib.Path | None = None) -> ImageData:
    """IDX files from `data_dir` when given (offline), else tensorflow-datasets."""
    if name not in TFDS_NAMES:
        raise DataError(f"unknown dataset {name!r}; choose one of {list(TFDS_NAMES)}")
    return load_idx(data_dir, split) if data_dir is not None else load_tfds(name, split)


SCALES = {"tanh": (2.0 / 255.0, -1.0), "sigmoid": (1.0 / 255.0, 0.0)}  # pixel -> [-1, 1] or [0, 1]


def image_sampler(images: jax.Array, scale: str = "tanh", labels: jax.Array | None = None,
                  record_data: bool = True) -> Callable:
    """A sampler `(key, n) -> float32[n, h*w*c]` drawing images uniformly with replacement by index from
    uint8 `images` [N, h, w] or [N, h, w, c] held on device, flattened in (row, column, channel) order and
    scaled for a generator with a tanh ([-1, 1]) or sigmoid ([0, 1]) output. With `labels` (for a
    conditional GAN) it returns `(images, int32 labels)` of the same indices. A run records it as its data:
    `image_sampler[N x h x w x c]` with the sha256 of the images, labels and scale (`record_data=False`: by
    the config's data name, for a task that records its data itself)."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(SCALES)}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(labels)} labels for {len(images)} images; they must match one to one")
    mul, add = SCALES[scale]
    images = jnp.asarray(images)
    labels = None if labels is None else jnp.asarray(labels, jnp.int32)

    def sample(key: jax.Array, n: int):
        idx = jax.random.randint(key, (n,), 0, images.shape[0])
        x = images[idx].reshape(n, -1).astype(jnp.float32) * mul + add
        return x if labels is None else (x, labels[idx])

    if not record_data:
        return sample
    shape = "x".join(str(d) for d in images.shape)
    return pieces.carrying(sample, f"image_sampler[{shape}]", lambda: _sampled_sha256(images, labels, scale))


def _sampled_sha256(images: jax.Array, labels: jax.Array | None, scale: str) -> str:
    """sha256 of what a sampler draws from: the images' shape, dtype and scale as text, their bytes, the labels'."""
    digest = hashlib.sha256(f"{tuple(images.shape)} {images.dtype} {scale}".encode())
    digest.update(np.ascontiguousarray(images).tobytes())
    if labels is not None:
        digest.update(b"labels" + np.asarray(labels).astype("<i8").tobytes())
    return digest.hexdigest()


def stacked_sampler(images: jax.Array, scale: str = "tanh", labels: jax.Array | None = None) -> Callable:
    """Stacked MNIST: a sampler `(key, n) -> float32[n, 28*28*3]` of three images drawn independently by index
    from uint8 `images`, stacked as channels (flattened in (row, column, channel) order) and scaled as
    `image_sampler`'s. With `labels`, `(images, int32 modes)`: each sample's digit triple as 100 a + 10 b + c."""
    mul, add = SCALES[scale]
    images = jnp.asarray(images)
    labels = None if labels is None else jnp.asarray(labels, jnp.int32)

    def sample(key: jax.Array, n: int):
        idx = jax.random.randint(key, (n, STACKED), 0, images.shape[0])
        x = jnp.moveaxis(images[idx], 1, -1).reshape(n, -1).astype(jnp.float32) * mul + add
        return x if labels is None else (x, labels[idx] @ jnp.array([100, 10, 1]))

    return sample
