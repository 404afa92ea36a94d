"""Your own images as a dataset: an .npz file or a folder of PNG files, validated and loaded as uint8
[n, height, width, channels] (`load_images`), with optional integer class labels and a content sha256
(`data_sha256`) for provenance. Sample them with `gan_jax.data.mnist.image_sampler(data.images, scale,
data.labels)`, which draws flat float32 [n, height * width * channels] samples, as the models expect.

- `.npz`: key `images`, uint8 [n, h, w, c] (or [n, h, w], read as c = 1); optional key `labels`, integers
  [n], >= 0 (class k of K classes is the integer k). Write one with `numpy.savez(path, images=..., labels=...)`.
- A folder: its `.png` files (any case) and those of its immediate subfolders, sorted by their path relative
  to the folder; names starting with `.` and every other file are ignored. All images must have one size and
  one channel count: grayscale (mode L, or 1-bit) gives c = 1, RGB (and palette) c = 3. A PNG with an alpha
  channel (RGBA, LA, palette with transparency) is read without it when it is fully opaque, and refused
  otherwise (flatten it onto a background first): silently dropping transparency would show whatever
  colour the transparent pixels happen to hold. 16-bit and other modes are refused.
  Labels: when every PNG is in a subfolder, `folder/<class_name>/*.png`, the sorted class names are classes
  0..K-1 (`class_names`); otherwise (any PNG directly in the folder) the data has no labels.

Every problem raises one `DataError` line naming the file and the fix, before any pixel is decoded where the
problem is visible without decoding (missing path, sizes, modes, labels).
"""
from __future__ import annotations

import hashlib
import pathlib
import zipfile

import numpy as np
from PIL import Image

from gan_jax.data.mnist import ImageData
from gan_jax.errors import DataError

NPZ_HINT = "write it with numpy.savez(path, images=uint8 [N, H, W, C], labels=integers [N])"
# channels of each PNG mode read: 1-bit reads as L; palette as RGB; alpha is dropped (when fully opaque)
MODE_CHANNELS = {"L": 1, "1": 1, "LA": 1, "RGB": 3, "P": 3, "PA": 3, "RGBA": 3}


def load_images(path: str | pathlib.Path) -> ImageData:
    """The images (uint8 [n, h, w, c]) and labels (int32 [n], or None) of an .npz file or a PNG folder."""
    path = pathlib.Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist; give an .npz file ({NPZ_HINT}) or a folder of PNG files")
    if path.is_dir():
        return _load_folder(path)
    if path.suffix.lower() != ".npz":
        raise DataError(f"{path} is neither an .npz file nor a folder; {NPZ_HINT}, or put the images in a "
                        "folder of PNG files")
    return _load_npz(path)


def data_sha256(data: ImageData) -> str:
    """sha256 of the data's content, whatever file held it: the images' shape as text (e.g. "(64, 16, 16,
    3)"), their uint8 bytes in C order, then, with labels, b"labels" and the labels as little-endian int64."""
    digest = hashlib.sha256(str(tuple(int(d) for d in data.images.shape)).encode())
    digest.update(np.ascontiguousarray(data.images, np.uint8).tobytes())
    if data.labels is not None:
        digest.update(b"labels" + np.asarray(data.labels).astype("<i8").tobytes())
    return digest.hexdigest()


def class_names(path: str | pathlib.Path) -> tuple[str, ...]:
    """A labelled PNG folder's class names, label k's at index k; () for an .npz file or unlabelled folder."""
    path = pathlib.Path(path)
    if not path.is_dir():
        return ()
    files = _png_files(path)
    return _classes(files)[0] if files and _labelled_in(path, files) else ()


# --- .npz ----------------------------------------------------------------------------------------------------

def _load_npz(path: pathlib.Path) -> ImageData:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path} cannot be read as an .npz file ({_reason(e)}); {NPZ_HINT}") from None
    if "images" not in arrays:
        raise DataError(f"{path} has no `images` array (it has: {', '.join(sorted(arrays)) or 'nothing'}); "
                        f"{NPZ_HINT}")
    images = _check_images(path, arrays["images"])
    labels = None if "labels" not in arrays else _check_labels(path, arrays["labels"], len(images))
    return ImageData(images, labels)


def _check_images(path: pathlib.Path, images: np.ndarray) -> np.ndarray:
    """uint8 [n, h, w, c], n, h, w, c >= 1 ([n, h, w] gets c = 1), or one DataError line."""
    if images.dtype != np.uint8:
        raise DataError(f"{path}: `images` has dtype {images.dtype}, expected uint8 pixels 0-255; convert them, "
                        "e.g. numpy.round(x * 255).astype(numpy.uint8) for floats in [0, 1]")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise DataError(f"{path}: `images` has shape {images.shape}, expected 4-D [N, H, W, C] (or 3-D [N, H, W] "
                        "for grayscale); reshape it")
    if 0 in images.shape:
        raise DataError(f"{path}: `images` has shape {images.shape}, which holds no pixels; save at least one image")
    return images


def _check_labels(path: pathlib.Path, labels: np.ndarray, n: int) -> np.ndarray:
    """int32 [n], every label >= 0, or one DataError line."""
    if labels.ndim != 1 or len(labels) != n:
        raise DataError(f"{path}: `labels` has shape {labels.shape}, expected [{n}], one per image; save one "
                        "integer class per image")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: `labels` has dtype {labels.dtype}, expected integers; save integer class "
                        "indices 0..K-1, e.g. labels.astype(numpy.int64)")
    if n and (labels.min() < 0 or labels.max() > np.iinfo(np.int32).max):
        bad = labels.min() if labels.min() < 0 else labels.max()
        raise DataError(f"{path}: `labels` holds {bad}; class indices must be in 0..{np.iinfo(np.int32).max}, "
                        "number the classes 0..K-1")
    return labels.astype(np.int32)


# --- PNG folders ---------------------------------------------------------------------------------------------

def _png_files(folder: pathlib.Path) -> list[pathlib.Path]:
    """The folder's PNG files and those of its immediate subfolders (not hidden), sorted by relative path."""
    visible = lambda p: not p.name.startswith(".")  # noqa: E731  (.DS_Store, ._x.png, .ipynb_checkpoints)
    subfolders = [d for d in folder.iterdir() if d.is_dir() and visible(d)]
    candidates = [p for d in [folder, *subfolders] for p in d.iterdir()]
    files = [p for p in candidates if p.is_file() and visible(p) and p.suffix.lower() == ".png"]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def _classes(files: list[pathlib.Path]) -> tuple[tuple[str, ...], np.ndarray]:
    """(sorted class names, int32 label of each file) from the files' subfolder names."""
    names = tuple(sorted({p.parent.name for p in files}))
    index = {name: k for k, name in enumerate(names)}
    return names, np.array([index[p.parent.name] for p in files], np.int32)


def _load_folder(folder: pathlib.Path) -> ImageData:
    files = _png_files(folder)
    if not files:
        raise DataError(f"{folder} holds no .png files (looked in it and its immediate subfolders); put the "
                        "images there as PNG files, or give an .npz file")
    headers = [_header(p) for p in files]
    _check_same(headers, 1, "is {}x{}", "resize every image to one size (shown as width x height)")
    _check_same(headers, 2, "has {} channel(s)", "convert them all to grayscale or all to RGB")
    width, height = headers[0][1]
    images = np.empty((len(files), height, width, headers[0][2]), np.uint8)
    for i, p in enumerate(files):
        images[i] = _pixels(p)
    labels = _classes(files)[1] if _labelled_in(folder, files) else None
    return ImageData(images, labels)


def _labelled_in(folder: pathlib.Path, files: list[pathlib.Path]) -> bool:
    """True when every PNG is in a subfolder of `folder` (none directly in it)."""
    return all(p.parent != folder for p in files)


def _header(path: pathlib.Path) -> tuple[pathlib.Path, tuple[int, int], int]:
    """(path, (width, height), channels once read) from the PNG's header alone: no pixel is decoded."""
    try:
        with Image.open(path) as image:
            fmt, size, mode = image.format, image.size, image.mode
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError
        raise DataError(f"{path} cannot be read as a PNG image ({_reason(e)}); replace or remove it") from None
    if fmt != "PNG":
        raise DataError(f"{path} is a {fmt} file named .png; convert it to PNG or remove it")
    if mode not in MODE_CHANNELS:
        raise DataError(f"{path} has PNG mode {mode} (e.g. 16-bit), which is not read; save 8-bit grayscale (L) "
                        "or RGB images")
    return path, size, MODE_CHANNELS[mode]


def _check_same(headers: list, field: int, says: str, fix: str) -> None:
    """One DataError naming the first two files whose `field` of the header differs."""
    first = headers[0]
    for other in headers[1:]:
        if other[field] != first[field]:
            describe = lambda h: says.format(*np.atleast_1d(h[field]))  # noqa: E731
            raise DataError(f"{first[0]} {describe(first)} but {other[0]} {describe(other)}; {fix}")


def _pixels(path: pathlib.Path) -> np.ndarray:
    """uint8 [h, w, c]; an alpha channel is dropped when fully opaque, else refused."""
    try:
        with Image.open(path) as image:
            image.load()
            image = image.convert({"1": "L", "P": "RGBA", "PA": "RGBA"}.get(image.mode, image.mode))
    except Exception as e:  # truncated or corrupt data past the header
        raise DataError(f"{path} cannot be read as a PNG image ({_reason(e)}); replace or remove it") from None
    if image.mode in ("RGBA", "LA"):
        alpha = np.asarray(image.getchannel("A"))
        if alpha.min() < 255:
            raise DataError(f"{path} has transparent pixels ({np.mean(alpha < 255):.1%} of them); flatten it onto "
                            "a background first, e.g. Image.alpha_composite(background, image).convert('RGB')")
        image = image.convert(image.mode[:-1])
    pixels = np.asarray(image, np.uint8)
    return pixels.reshape(pixels.shape[:2] + (-1,))


def _reason(e: Exception) -> str:
    """An exception as one line: its type and the first line of its message."""
    lines = str(e).splitlines()
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
